"""The transfer-evaluation protocol shared by every method (CrossPoint, SimIPU, Cross-MoST, segmentation).

A protocol is fixed before it runs: the seeds, the candidate settings and the split each choice is made on. Every
choice (an SVM's C, a number of epochs, a pseudo-label threshold) is made on ``val``; ``test`` is measured once,
with the chosen setting, and reported. Results go to ``benchmarks/results/<name>.json`` in one schema::

    {"metric": "mIoU", "split": "test", "seeds": [0, 1, 2],
     "arms": {"lp_pretrained": [v0, v1, v2], "lp_random": [...]},   # one value per seed, in seed order
     "command": "python tools/eval_transfer.py ...", "commit": "<git sha>", ...extra keys}

and the markdown table and figure of the README are made from that file (:func:`results_markdown`,
:func:`plot_results`).
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import shlex
import subprocess
import sys
from typing import Callable, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence

import numpy as np

SELECTION_SPLIT = 'val'
REPORT_SPLIT = 'test'
REQUIRED_KEYS = ('metric', 'split', 'seeds', 'arms', 'command', 'commit')


class ProtocolError(ValueError):
    """A protocol that would make a choice on the split it reports, or a malformed results file."""


def check_selection_split(split: str) -> str:
    """Refuse any choice made on another split than ``val`` (the test split is reported, never tuned on)."""
    if split != SELECTION_SPLIT:
        raise ProtocolError(
            f'choices (hyperparameters, epochs, thresholds) must be made on the {SELECTION_SPLIT!r} split, '
            f'not {split!r}: the {REPORT_SPLIT!r} split is measured once with the chosen setting and reported')
    return split


def select_on_val(scores: Mapping[Hashable, float], split: str = SELECTION_SPLIT) -> Hashable:
    """The candidate with the best validation score (the first one on ties, so the order is the tie-break).

    Args:
        scores: candidate -> score on ``split`` (higher is better), in the protocol's fixed order.
        split: the split the scores were measured on; anything but ``val`` is refused.
    """
    check_selection_split(split)
    if not scores:
        raise ProtocolError('no candidate to select from')
    best_key, best = None, -math.inf
    for key, value in scores.items():
        if value > best:
            best_key, best = key, value
    return best_key if best_key is not None else next(iter(scores))


def summarize(values: Sequence[float]) -> Dict[str, float]:
    """Mean, sample std (ddof=1; 0 for one value), min, max and count of per-seed values."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return dict(mean=math.nan, std=math.nan, min=math.nan, max=math.nan, n=0)
    return dict(mean=float(v.mean()), std=float(v.std(ddof=1)) if v.size > 1 else 0.0,
                min=float(v.min()), max=float(v.max()), n=int(v.size))


def git_commit(root: Optional[str] = None) -> str:
    """The checked-out commit (with ``+dirty`` when tracked files differ), or ``unknown`` outside git."""
    root = root or osp.dirname(osp.dirname(osp.abspath(__file__)))
    try:
        sha = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ('+dirty' if dirty else '')
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def command_line(argv: Optional[Sequence[str]] = None) -> str:
    """The command that is running, as a user would retype it (``python tools/x.py --flag ...``)."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        argv[0] = osp.relpath(argv[0]) if osp.isabs(argv[0]) else argv[0]
    return 'python ' + ' '.join(shlex.quote(a) for a in argv)


def validate_results(results: Mapping) -> None:
    """Check the common schema: required keys, one value per seed in every arm."""
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        raise ProtocolError(f'results miss {missing}')
    n = len(results['seeds'])
    for arm, values in results['arms'].items():
        if not isinstance(values, list) or len(values) != n:
            raise ProtocolError(f'arm {arm!r} has {len(values) if isinstance(values, list) else values!r} values '
                                f'for {n} seeds')


def make_results(metric: str, seeds: Sequence[int], arms: Mapping[str, Sequence[float]],
                 split: str = REPORT_SPLIT, command: Optional[str] = None, commit: Optional[str] = None,
                 **extra) -> dict:
    """A results dict in the common schema (values as plain floats, ``None`` for a run that produced none)."""
    res = dict(metric=metric, split=split, seeds=[int(s) for s in seeds],
               arms={k: [None if v is None else float(v) for v in vals] for k, vals in arms.items()},
               command=command if command is not None else command_line(),
               commit=commit if commit is not None else git_commit())
    res.update(extra)
    validate_results(res)
    return res


def write_results(path: str, results: Mapping) -> str:
    """Write ``results`` (validated) as JSON to ``path`` (atomically), return the path."""
    validate_results(results)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(results, f, indent=2)
        f.write('\n')
    os.replace(tmp, path)
    return path


def load_results(path: str) -> dict:
    with open(path) as f:
        res = json.load(f)
    validate_results(res)
    return res


def _fmt(x: float, scale: float, digits: int) -> str:
    return 'n/a' if x is None or not math.isfinite(x) else f'{x * scale:.{digits}f}'


def results_markdown(results: Mapping, baselines: Optional[Mapping[str, str]] = None,
                     chance: Optional[float] = None, scale: float = 1.0, digits: int = 1,
                     arms: Optional[Iterable[str]] = None) -> str:
    """A markdown table: one row per arm with mean +- std, min, max over seeds, and its baseline arm beside it.

    Args:
        baselines: arm -> baseline arm (random init, scratch, zero-shot start); the row shows the mean difference
            and whether every seed of the arm beats every seed of its baseline.
        chance: the chance level of the metric, printed under the table.
        scale: multiply values for display (100 for fractions shown as %).
    """
    baselines = dict(baselines or {})
    names = list(arms) if arms is not None else list(results['arms'])
    rows = ['| arm | mean +- std | min | max | vs baseline (mean diff; all seeds above?) |',
            '| --- | --- | --- | --- | --- |']
    for name in names:
        vals = [v for v in results['arms'][name] if v is not None]
        s = summarize(vals)
        cmp = ''
        base = baselines.get(name)
        if base is not None and base in results['arms']:
            bvals = [v for v in results['arms'][base] if v is not None]
            bs = summarize(bvals)
            above = bool(vals and bvals and min(vals) > max(bvals))
            cmp = f'{_fmt(s["mean"] - bs["mean"], scale, digits)} vs `{base}`; {"yes" if above else "no"}'
        rows.append(f'| `{name}` | {_fmt(s["mean"], scale, digits)} +- {_fmt(s["std"], scale, digits)} | '
                    f'{_fmt(s["min"], scale, digits)} | {_fmt(s["max"], scale, digits)} | {cmp} |')
    lines = [f'{results["metric"]} on the `{results["split"]}` split, seeds {results["seeds"]} '
             f'(commit `{str(results["commit"])[:12]}`)', '', *rows]
    if chance is not None:
        lines += ['', f'Chance: {_fmt(chance, scale, digits)}.']
    lines += ['', f'Command: `{results["command"]}`']
    return '\n'.join(lines) + '\n'


def plot_results(results: Mapping, out_png: str, arms: Optional[Sequence[str]] = None,
                 chance: Optional[float] = None, scale: float = 1.0, title: Optional[str] = None) -> str:
    """Per-seed values as dots and the mean as a bar, one column per arm (matplotlib Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(arms) if arms is not None else list(results['arms'])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 1.5), 3.6))
    for i, name in enumerate(names):
        vals = np.array([v for v in results['arms'][name] if v is not None], dtype=float) * scale
        if vals.size:
            ax.bar(i, vals.mean(), color='#9bb7d4', width=0.6)
            ax.scatter(np.full(vals.size, i), vals, color='#1f3b5c', s=14, zorder=3)
    if chance is not None:
        ax.axhline(chance * scale, color='grey', ls='--', lw=1, label='chance')
        ax.legend(loc='best', fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha='right', fontsize=8)
    ax.set_ylabel(f'{results["metric"]} ({results["split"]})')
    ax.set_title(title or f'seeds {results["seeds"]}', fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def run_seeds(seeds: Sequence[int], fn: Callable[[int], Mapping[str, float]]) -> Dict[str, List[Optional[float]]]:
    """Call ``fn(seed) -> {arm: value}`` for every seed and collect one list per arm, in seed order."""
    arms: Dict[str, List[Optional[float]]] = {}
    for i, seed in enumerate(seeds):
        out = fn(int(seed))
        for k, v in out.items():
            arms.setdefault(k, [None] * i).append(v)
        for k in arms:
            if len(arms[k]) < i + 1:
                arms[k].append(None)
    return arms
