"""Reading mmengine's ``scalars.json``, plotting training curves and t-SNE maps, and writing a markdown report.

Used by the demo (:mod:`mmxmodal_bench.demo`); every function also works on its own (e.g. on any mmengine work
dir)::

    from mmxmodal_bench.report import load_scalars, train_series, plot_curves
    recs = load_scalars('work_dirs/my_run')            # newest <work_dir>/<timestamp>/vis_data/scalars.json
    it, loss = train_series(recs, 'loss')               # train records: x = global iteration
    plot_curves([dict(title='loss', series=[('loss', it, loss)])], 'loss.png')

``scalars.json`` (mmengine's ``LocalVisBackend``) holds one JSON object per line. Train records carry ``iter``
(the iteration inside the epoch for epoch-based loops, the global one for iteration-based loops), ``epoch``
(epoch-based loops), ``lr``, the losses and ``step`` (the global iteration). Val / test records carry the metric
keys (``svm/accuracy``, ``NuScenes metric/.../NDS``) and ``step`` (the epoch for epoch-based loops, the iteration
for iteration-based loops), and neither ``iter`` nor ``lr``.

Figures use matplotlib's Agg backend (no display needed). Nothing here imports torch.
"""
import glob
import json
import math
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

Records = List[dict]
Series = Tuple[str, Sequence[float], Sequence[float]]  # (label, xs, ys)


# ----------------------------------------------------------------------------------------------- scalars.json
def find_scalars_files(work_dir: str) -> List[str]:
    """All ``<work_dir>/<timestamp>/vis_data/scalars.json`` (oldest first), or ``[work_dir]`` if it is a file."""
    if osp.isfile(work_dir):
        return [work_dir]
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    return sorted(files, key=lambda p: (osp.basename(osp.dirname(osp.dirname(p))), p))


def load_scalars(path: str, run: Union[str, int] = 'train') -> Records:
    """Records of a ``scalars.json`` file, or of one run of a work dir.

    Args:
        path: a ``scalars.json`` file, or an mmengine work dir (``<work_dir>/<timestamp>/vis_data/scalars.json``).
        run: for a work dir: ``'train'`` = the newest run that holds train records (a later ``tools/test.py`` run
            in the same work dir writes its own timestamp folder, which is skipped), ``'last'`` = the newest run,
            ``'all'`` = all runs concatenated (oldest first, e.g. a resumed training), or an index into
            :func:`find_scalars_files`.

    Raises:
        FileNotFoundError: no ``scalars.json`` (names the work dir).
        ValueError: a line that is not JSON (names the file and line; a truncated *last* line, as left by a killed
            run, is dropped instead).
    """
    files = find_scalars_files(path)
    if not files:
        raise FileNotFoundError(f'no scalars.json under {path} (expected {path}/<timestamp>/vis_data/scalars.json)')
    if run == 'all':
        return [r for f in files for r in _read_scalars_file(f)]
    if isinstance(run, int):
        return _read_scalars_file(files[run])
    if run == 'last':
        return _read_scalars_file(files[-1])
    if run != 'train':
        raise ValueError(f"run must be 'train', 'last', 'all' or an int, not {run!r}")
    for f in reversed(files):
        recs = _read_scalars_file(f)
        if any(is_train_record(r) for r in recs):
            return recs
    raise FileNotFoundError(f'no scalars.json with train records under {path} ({len(files)} run(s) found)')


def _read_scalars_file(path: str) -> Records:
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    out = []
    for i, ln in enumerate(lines):
        try:
            rec = json.loads(ln)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # a run killed while writing its last line
                break
            raise ValueError(f'{path}:{i + 1}: not a JSON line ({e})') from e
        if not isinstance(rec, dict):
            raise ValueError(f'{path}:{i + 1}: expected a JSON object, got {type(rec).__name__}')
        out.append(rec)
    return out


def is_train_record(rec: dict) -> bool:
    return 'iter' in rec or 'lr' in rec


def train_series(records: Records, key: str, x: str = 'step') -> Tuple[np.ndarray, np.ndarray]:
    """``(xs, ys)`` of ``key`` over the train records that have it; ``x='step'`` is the global iteration,
    ``x='epoch'`` a fractional epoch (``epoch - 1 + iter / iters_per_epoch``, epoch-based runs)."""
    recs = [r for r in records if is_train_record(r) and key in r and _finite(r[key])]
    ys = np.array([float(r[key]) for r in recs], dtype=np.float64)
    if x == 'step':
        xs = np.array([float(r.get('step', r.get('iter', i + 1))) for i, r in enumerate(recs)])
    elif x == 'epoch':
        per_epoch = iters_per_epoch(records)
        xs = np.array([r['epoch'] - 1 + r['iter'] / per_epoch for r in recs], dtype=np.float64)
    else:
        raise ValueError(f"x must be 'step' or 'epoch', not {x!r}")
    return xs, ys


def add_sum_key(records: Records, suffix: str, new_key: Optional[str] = None) -> Records:
    """Copies of ``records`` where every record holding keys ending with ``suffix`` (e.g. CenterPoint's
    ``task0.loss_heatmap`` ... ``task5.loss_heatmap``) also holds their sum under ``new_key`` (default
    ``'sum.' + suffix``)."""
    new_key = new_key or 'sum.' + suffix
    out = []
    for r in records:
        vals = [v for k, v in r.items() if k.endswith(suffix) and k != new_key and _finite(v)]
        out.append(dict(r, **{new_key: float(sum(vals))}) if vals else r)
    return out


def val_series(records: Records, key: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of a metric over the val/test records (step = epoch for epoch-based runs)."""
    recs = [r for r in records if not is_train_record(r) and key in r and _finite(r[key])]
    return (np.array([float(r.get('step', i + 1)) for i, r in enumerate(recs)]),
            np.array([float(r[key]) for r in recs], dtype=np.float64))


def iters_per_epoch(records: Records) -> int:
    """Largest in-epoch ``iter`` of the first epoch (epoch-based runs log ``iter`` within the epoch)."""
    its = [r['iter'] for r in records if is_train_record(r) and r.get('epoch') == 1 and 'iter' in r]
    if not its:
        raise ValueError('no epoch-1 train records with `iter` (not an epoch-based run?)')
    # mmengine's logged `iter` is the in-epoch iteration only when it never exceeds the global step
    return int(max(its))


def epoch_means(records: Records, key: str) -> Dict[int, float]:
    """Mean of a train key per epoch (``{epoch: mean}``), over the logged records of that epoch."""
    acc: Dict[int, List[float]] = {}
    for r in records:
        if is_train_record(r) and key in r and 'epoch' in r and _finite(r[key]):
            acc.setdefault(int(r['epoch']), []).append(float(r[key]))
    return {e: float(np.mean(v)) for e, v in sorted(acc.items())}


def first_last(records: Records, key: str, window: int = 1) -> Tuple[float, float]:
    """Mean of ``key`` over the first and over the last ``window`` logged train records."""
    _, ys = train_series(records, key)
    if len(ys) == 0:
        raise KeyError(f'no train records with {key!r}')
    w = max(1, min(window, len(ys)))
    return float(ys[:w].mean()), float(ys[-w:].mean())


def last_val(records: Records, key: str) -> float:
    """Value of a metric in the last val/test record that has it."""
    _, ys = val_series(records, key)
    if len(ys) == 0:
        raise KeyError(f'no val/test records with {key!r}')
    return float(ys[-1])


def find_key(records: Records, suffix: str) -> str:
    """The one key of ``records`` equal to or ending with ``/suffix`` (e.g. ``'NDS'`` ->
    ``'NuScenes metric/pred_instances_3d_NuScenes/NDS'``)."""
    keys = sorted({k for r in records for k in r if k == suffix or k.endswith('/' + suffix)})
    if len(keys) != 1:
        raise KeyError(f'{len(keys)} keys match {suffix!r}: {keys[:5]}')
    return keys[0]


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def smooth(ys: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (window shrinks at the start), same length as ``ys``."""
    ys = np.asarray(ys, dtype=np.float64)
    if window <= 1 or len(ys) == 0:
        return ys
    c = np.cumsum(np.insert(ys, 0, 0.0))
    idx = np.arange(1, len(ys) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


# ----------------------------------------------------------------------------------------------------- figures
def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out_png: str, dpi: int = 110) -> str:
    d = osp.dirname(osp.abspath(out_png))
    os.makedirs(d, exist_ok=True)
    fig.savefig(out_png, dpi=dpi)
    _plt().close(fig)
    if not osp.isfile(out_png) or osp.getsize(out_png) == 0:
        raise RuntimeError(f'figure not written: {out_png}')
    return out_png


def plot_curves(panels: Sequence[dict], out_png: str, title: Optional[str] = None, ncols: Optional[int] = None,
                smooth_window: int = 1) -> str:
    """Line plots, one panel per dict: ``dict(title, series=[(label, xs, ys), ...], xlabel='iteration',
    ylabel='', logy=False, markers=False)``. With ``smooth_window > 1`` each series is drawn raw (faint) and
    smoothed. Empty series are listed in the panel as "(no data)". Returns ``out_png``."""
    plt = _plt()
    n = len(panels)
    if n == 0:
        raise ValueError('plot_curves: no panels')
    ncols = ncols or min(n, 3)
    nrows = int(math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    for ax, p in zip(axes.ravel(), panels):
        empty = []
        for i, (label, xs, ys) in enumerate(p.get('series', [])):
            xs, ys = np.asarray(xs, float), np.asarray(ys, float)
            if len(ys) == 0:
                empty.append(label)
                continue
            color = p.get('colors', {}).get(label, f'C{i}')
            style = dict(marker='o', ms=3) if p.get('markers') or len(ys) < 8 else {}
            if smooth_window > 1 and len(ys) > smooth_window:
                ax.plot(xs, ys, color=color, alpha=0.25, lw=1)
                ax.plot(xs, smooth(ys, smooth_window), color=color, lw=1.8, label=label, **style)
            else:
                ax.plot(xs, ys, color=color, lw=1.6, label=label, **style)
        if empty:
            ax.text(0.5, 0.5, '(no data: ' + ', '.join(empty) + ')', ha='center', va='center',
                    transform=ax.transAxes, fontsize=8, color='grey')
        ax.set_title(p.get('title', ''), fontsize=10)
        ax.set_xlabel(p.get('xlabel', 'iteration'), fontsize=9)
        ax.set_ylabel(p.get('ylabel', ''), fontsize=9)
        if p.get('logy'):
            ax.set_yscale('log')
        if p.get('xlabel') == 'epoch':
            from matplotlib.ticker import MaxNLocator
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.axis('off')
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_training_curves(records: Records, keys: Sequence[Union[str, Tuple[str, str]]], out_png: str,
                         title: Optional[str] = None, val_keys: Sequence[Union[str, Tuple[str, str]]] = (),
                         smooth_window: int = 1) -> str:
    """One panel per train key (x = global iteration) and per val key (x = epoch). A key may be
    ``(key, panel title)``."""
    panels = []
    for k in keys:
        k, t = (k, k) if isinstance(k, str) else k
        xs, ys = train_series(records, k)
        panels.append(dict(title=t, series=[(k, xs, ys)], xlabel='iteration'))
    for k in val_keys:
        k, t = (k, k) if isinstance(k, str) else k
        xs, ys = val_series(records, k)
        panels.append(dict(title=t, series=[(k, xs, ys)], xlabel='epoch', markers=True))
    return plot_curves(panels, out_png, title=title, smooth_window=smooth_window)


def plot_runs_comparison(runs: Dict[str, Records], train_keys: Sequence[Union[str, Tuple[str, str]]],
                         out_png: str, val_keys: Sequence[Union[str, Tuple[str, str]]] = (),
                         title: Optional[str] = None, smooth_window: int = 1, logy: bool = False) -> str:
    """Several runs (e.g. ``{'pretrained': recs, 'scratch': recs}``) on the same panels: one per train key
    (x = iteration, log scale with ``logy``) and one per val key (x = epoch); a val key may be a suffix (see
    :func:`find_key`)."""
    colors = {label: f'C{i}' for i, label in enumerate(runs)}
    panels = []
    for k in train_keys:
        k, t = (k, k) if isinstance(k, str) else k
        panels.append(dict(title=t, xlabel='iteration', colors=colors, logy=logy,
                           series=[(label, *train_series(recs, k)) for label, recs in runs.items()]))
    for k in val_keys:
        k, t = (k, k) if isinstance(k, str) else k
        series = []
        for label, recs in runs.items():
            try:
                full = find_key(recs, k)
            except KeyError:
                series.append((label, [], []))
                continue
            series.append((label, *val_series(recs, full)))
        panels.append(dict(title=t, xlabel='epoch', colors=colors, markers=True, series=series))
    return plot_curves(panels, out_png, title=title, smooth_window=smooth_window)


def plot_bars(groups: Dict[str, Sequence[float]], categories: Sequence[str], out_png: str, ylabel: str = '',
              title: Optional[str] = None, value_fmt: str = '{:.1f}') -> str:
    """Grouped bars: ``groups = {'start': [v per category], 'final': [...]}``, values written on the bars."""
    plt = _plt()
    n_groups, n_cat = len(groups), len(categories)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * n_cat * max(1, n_groups) / 2 + 2), 3.8))
    width = 0.8 / max(1, n_groups)
    x = np.arange(n_cat)
    for i, (label, values) in enumerate(groups.items()):
        values = [float('nan') if v is None else float(v) for v in values]
        if len(values) != n_cat:
            raise ValueError(f'group {label!r}: {len(values)} values for {n_cat} categories')
        bars = ax.bar(x + (i - (n_groups - 1) / 2) * width, values, width, label=label, color=f'C{i}')
        for b, v in zip(bars, values):
            if math.isfinite(v):
                ax.annotate(value_fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha='center',
                            va='bottom', fontsize=8, xytext=(0, 2), textcoords='offset points')
    ax.set_xticks(x)
    ax.set_xticklabels(categories, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(axis='y', alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


def tsne_embed(feats: np.ndarray, seed: int = 0, perplexity: Optional[float] = None) -> np.ndarray:
    """2-D t-SNE (sklearn, PCA init) of standardised features; perplexity defaults to min(30, (N - 1) / 3)."""
    from sklearn.manifold import TSNE
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f't-SNE needs (N >= 4, D) features, got {x.shape}')
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    perplexity = perplexity or max(2.0, min(30.0, (len(x) - 1) / 3.0))
    return TSNE(n_components=2, perplexity=perplexity, init='pca', random_state=seed).fit_transform(x)


def plot_tsne(panels: Sequence[dict], out_png: str, class_names: Optional[Sequence[str]] = None,
              title: Optional[str] = None, seed: int = 0) -> str:
    """Side-by-side t-SNE maps coloured by class: ``panels = [dict(title, feats (N, D), labels (N,))]``
    (``emb`` (N, 2) instead of ``feats`` skips the t-SNE)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.0), squeeze=False)
    all_labels = np.unique(np.concatenate([np.asarray(p['labels']).reshape(-1) for p in panels]))
    cmap = plt.get_cmap('tab20' if len(all_labels) > 10 else 'tab10')
    handles = {}
    for ax, p in zip(axes[0], panels):
        emb = p['emb'] if 'emb' in p else tsne_embed(p['feats'], seed=seed)
        labels = np.asarray(p['labels']).reshape(-1)
        for j, c in enumerate(all_labels):
            m = labels == c
            name = class_names[int(c)] if class_names is not None and 0 <= int(c) < len(class_names) else str(c)
            handles[name] = ax.scatter(emb[m, 0], emb[m, 1], s=12, color=cmap(j % cmap.N), label=name,
                                       linewidths=0)
        ax.set_title(p.get('title', ''), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(list(handles.values()), list(handles.keys()), loc='lower center', ncol=min(len(handles), 6),
               fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.03 + 0.035 * math.ceil(len(handles) / 6), 1, 1))
    return _save(fig, out_png)


# ------------------------------------------------------------------------------------------------------ report
def fmt(value, digits: int = 2) -> str:
    """Numbers as text for the report (``None`` -> ``'—'``): integers as they are, values >= 1 with ``digits``
    decimals, smaller ones with 3 significant digits (NDS 0.0371, accuracy 0.00977)."""
    if value is None:
        return '—'
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        if v == 0:
            return '0'
        if abs(v) >= 1e5:
            return f'{v:.3g}'
        if abs(v) >= 1:
            return f'{v:.{digits}f}'
        return f'{v:.3g}'
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A GitHub markdown table; cells are formatted with :func:`fmt`, ``|`` escaped."""

    def cell(v) -> str:
        return fmt(v).replace('|', '\\|').replace('\n', ' ')

    lines = ['| ' + ' | '.join(headers) + ' |', '| ' + ' | '.join('---' for _ in headers) + ' |']
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


@dataclass
class Number:
    section: str
    name: str
    value: Optional[Union[int, float]]
    unit: str = ''
    command: str = ''
    note: str = ''


@dataclass
class StepRecord:
    name: str
    seconds: Optional[float]  # wall clock
    status: str  # 'ok' | 'reused' | 'FAILED' | 'skipped'
    log: str = ''
    error: str = ''
    start: Optional[float] = None  # seconds after the start of the whole run
    cpu_seconds: Optional[float] = None  # CPU time (user + system) of the step's processes / thread


@dataclass
class Report:
    """Collects numbers, step timings, figures and free text; :meth:`render` writes markdown.

    A number whose value is ``None`` is *missing*: it is shown as ``MISSING`` in the table and listed under
    "Failures", and :attr:`complete` is False.
    """
    title: str
    intro: str = ''
    numbers: List[Number] = field(default_factory=list)
    steps: List[StepRecord] = field(default_factory=list)
    figures: List[Tuple[str, str]] = field(default_factory=list)  # (caption, path relative to the report)
    sections: List[Tuple[str, str]] = field(default_factory=list)  # (heading, markdown)
    failures: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)  # consistency checks that failed (not errors of the run)
    wall_seconds: Optional[float] = None  # of the whole run (steps may overlap)

    def add(self, section: str, name: str, value, unit: str = '', command: str = '', note: str = '') -> Number:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            value = int(value)  # counts stay integers in the table
        elif value is not None:
            value = float(value)
        n = Number(section, name, value, unit, command, note)
        self.numbers.append(n)
        return n

    @property
    def missing(self) -> List[Number]:
        return [n for n in self.numbers if n.value is None]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.failures and all(s.status in ('ok', 'reused') for s in self.steps)

    def render(self) -> str:
        out = [f'# {self.title}', '']
        if self.intro:
            out += [self.intro.strip(), '']
        bad = [s for s in self.steps if s.status not in ('ok', 'reused')]
        if bad or self.failures or self.missing:
            out += ['## Failures', '']
            for s in bad:
                out.append(f'- step **{s.name}**: {s.status}' + (f' — {s.error}' if s.error else '')
                           + (f' (log: `{s.log}`)' if s.log else ''))
            out += [f'- {f}' for f in self.failures]
            for n in self.missing:
                out.append(f'- number missing: {n.section} / {n.name}' + (f' ({n.note})' if n.note else ''))
            out.append('')
        if self.warnings:
            out += ['## Warnings', ''] + [f'- {w}' for w in self.warnings] + ['']
        if self.numbers:
            out += ['## Numbers', '']
            rows = []
            commands: Dict[str, int] = {}
            for n in self.numbers:
                ref = ''
                if n.command:
                    ref = f'[{commands.setdefault(n.command, len(commands) + 1)}]'
                value = 'MISSING' if n.value is None else fmt(n.value) + (f' {n.unit}' if n.unit else '')
                rows.append((n.section, n.name, value, n.note, ref))
            out += [markdown_table(['part', 'quantity', 'value', 'notes', 'cmd'], rows), '']
            if commands:
                out += ['Commands (run from the repository root):', '']
                out += [f'{i}. `{c}`' for c, i in commands.items()]
                out.append('')
        for heading, text in self.sections:
            out += [f'## {heading}', '', text.strip(), '']
        if self.figures:
            out += ['## Figures', '']
            for caption, path in self.figures:
                out += [f'**{caption}** (`{path}`)', '', f'![{caption}]({path})', '']
        if self.steps:
            out += ['## Steps and timings', '']

            def sec(v):
                return 'n/a' if v is None else f'{v:.1f}'

            rows = [(s.name, s.status, sec(s.start), sec(s.seconds), sec(s.cpu_seconds), s.error,
                     f'`{s.log}`' if s.log else '') for s in self.steps]
            if self.wall_seconds is not None:
                cpu = sum(s.cpu_seconds or 0.0 for s in self.steps)
                rows.append(('**total (wall clock)**', '', '', sec(self.wall_seconds), sec(cpu), '', ''))
            else:
                rows.append(('**sum of steps**', '', '', sec(sum(s.seconds or 0.0 for s in self.steps)), '', '', ''))
            out += [markdown_table(['step', 'status', 'started at (s)', 'wall (s)', 'CPU (s)', 'notes', 'log'], rows),
                    '']
        return '\n'.join(out).rstrip() + '\n'

    def write(self, path: str) -> str:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            f.write(self.render())
        return path
