"""The plugin (``mmxmodal``) and the bench it is tested on (``mmxmodal_bench``) form an acyclic import graph, the
plugin never imports the bench, no private name is imported across modules, and every module imports.

The graph is read statically from the sources: every ``import`` statement, at module level or inside a function
(a lazy import closes a cycle as well), from a module of either package to a module of either package.
``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
"""
import ast
import os.path as osp
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ('mmxmodal', 'mmxmodal_bench')


def _modules() -> Dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob('*.py')):
            parts = list(path.relative_to(ROOT).with_suffix('').parts)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            mods['.'.join(parts)] = path
    return mods


def _type_checking_only(tree: ast.AST) -> Set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, 'id', getattr(node.test, 'attr', None)) == 'TYPE_CHECKING':
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def _imports(name: str, path: Path, mods: Dict[str, Path]) -> List[Tuple[str, List[str], int]]:
    """(target module, imported names, line) of every import of ``name`` that targets one of ``mods``."""
    is_pkg = path.name == '__init__.py'
    out = []
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split('.')[0] in PACKAGES:
                    out.append((a.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split('.') if is_pkg else name.split('.')[:-1]
                base = base[:len(base) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ''
            if module.split('.')[0] not in PACKAGES:
                continue
            names = [a.name for a in node.names]
            subs = [f'{module}.{n}' for n in names if f'{module}.{n}' in mods]
            out.append((module, [n for n in names if f'{module}.{n}' not in mods], node.lineno))
            out += [(s, [], node.lineno) for s in subs]
    return [(t, ns, ln) for t, ns, ln in out if t in mods]


def _graph() -> Tuple[Dict[str, Set[str]], Dict[str, Path], list]:
    mods = _modules()
    graph, edges = {m: set() for m in mods}, []
    for name, path in mods.items():
        for target, names, line in _imports(name, path, mods):
            if target != name:
                graph[name].add(target)
            edges.append((name, target, names, line))
    return graph, mods, edges


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle (a list of modules, first == last), or []."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(m: str) -> List[str]:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return []

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return []


def test_cycle_finder_finds_a_cycle():
    assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == ['a', 'b', 'c', 'a']
    assert _cycle({'a': {'b'}, 'b': set()}) == []


def test_no_import_cycle():
    graph, _, _ = _graph()
    assert len(graph) > 100  # both packages were read
    assert 'mmxmodal_bench.synthetic.nuscenes' in graph and 'mmxmodal.datasets.converters.nuscenes' in graph
    cycle = _cycle(graph)
    assert not cycle, 'import cycle: ' + ' -> '.join(cycle)


def test_the_plugin_never_imports_the_bench():
    _, _, edges = _graph()
    bad = [f'{src} (line {line}) imports {dst}' for src, dst, _, line in edges
           if src.split('.')[0] == 'mmxmodal' and dst.split('.')[0] == 'mmxmodal_bench']
    assert not bad, bad


def test_no_private_name_is_imported_across_modules():
    _, mods, edges = _graph()
    found = {(src, n, dst) for src, dst, names, line in edges for n in names
             if n.startswith('_') and not n.startswith('__')}
    bad = sorted(found)
    assert not bad, [f'{src} imports {n} from {dst}' for src, n, dst in bad]


def test_every_module_imports_and_the_plugin_alone_loads_no_bench_module():
    mods = sorted(_modules())
    code = (
        'import importlib, sys\n'
        f'mods = {mods!r}\n'
        'plugin = [m for m in mods if m.split(".")[0] == "mmxmodal"]\n'
        'for m in plugin:\n'
        '    importlib.import_module(m)\n'
        'leaked = sorted(m for m in sys.modules if m.split(".")[0] == "mmxmodal_bench")\n'
        'assert not leaked, f"importing the plugin loaded bench modules: {leaked}"\n'
        'for m in mods:\n'
        '    importlib.import_module(m)\n'
        'print("imported", len(mods))\n')
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=dict(__import__('os').environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'imported {len(mods)}' in r.stdout
    assert osp.isdir(ROOT / 'mmxmodal_bench')
