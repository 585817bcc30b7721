"""Steps ``transfer_crosspoint`` and ``transfer_segmentation``: the one evaluation tool, ``tools/eval_transfer.py``,
on its tiny setting (2 seeds, 1 with ``--quick``; a few iterations; settings in :data:`..settings.TRANSFER`).

The tool writes its results file, table and figure into ``<work-dir>/transfer/`` (never into
``benchmarks/results/``); the table goes into the demo report as it is, with the mean of every arm in the numbers.
The numbers of this tiny setting check that the pipeline runs end to end; they are not results.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import TYPE_CHECKING

from mmxmodal_bench import transfer

from ..runner import PY, StepFailed, cmd_text, rel, run_logged
from ..settings import TRANSFER

if TYPE_CHECKING:
    from ..demo import Demo

TITLES = dict(crosspoint='CrossPoint transfer (linear probe + few-shot, pretrained vs random init)',
              segmentation='segmentation transfer (SimIPU-seg: linear probe + 10 % fine-tuning vs random / scratch)')


def command(demo: Demo, method: str) -> list:
    """``tools/eval_transfer.py METHOD`` with the demo's tiny setting, writing into the demo's work dir."""
    s = TRANSFER[demo.mode][method]
    out = osp.join(demo.work, 'transfer', f'{method}_transfer.json')
    return [PY, 'tools/eval_transfer.py', method, '--seeds', *map(str, s['seeds']), '--out', rel(out),
            '--work-dir', rel(osp.join(demo.work, 'transfer', method)),
            '--data-root', rel(osp.join(demo.data_root, s['data_dir'])), *s['args']]


def run_method(demo: Demo, method: str) -> bool:
    step = f'transfer_{method}'
    cmd = command(demo, method)
    out = osp.join(demo.work, 'transfer', f'{method}_transfer.json')
    stem = osp.splitext(out)[0]
    log = osp.join(demo.logs, f'{step}.log')
    reused = demo.reuse_ok(step) and all(osp.isfile(stem + ext) for ext in ('.json', '.md', '.png'))
    if not reused:
        demo.may_run(step, rel(out))
        for ext in ('.json', '.md', '.png'):
            if osp.isfile(stem + ext):
                os.remove(stem + ext)
        run_logged(cmd, log, f'tools/eval_transfer.py {method}: {TITLES[method]}, tiny setting', tag=step,
                   env=demo.env)
    try:
        res = transfer.load_results(out)
    except (OSError, ValueError) as e:
        raise StepFailed(f'{rel(out)} not written or not in the common schema: {e}', rel(log))
    text = cmd_text(cmd)
    scale = res.get('scale', 1.0)
    unit = '%' if scale == 100 else ''
    seeds = ', '.join(map(str, res['seeds']))
    for arm, vals in res['arms'].items():
        done = [v for v in vals if v is not None]
        mean = sum(done) / len(done) * scale if len(done) == len(vals) and done else None
        demo.add(step, f'eval_transfer {method} (tiny)', f'{res["metric"]} on {res["split"]}, `{arm}`, mean', mean,
                 unit, command=text, note=f'seeds {seeds}; ' + ', '.join(
                     'n/a' if v is None else f'{v * scale:.1f}' for v in vals))
    with open(stem + '.md') as f:
        table = f.read()
    demo.add_section(step, f'tools/eval_transfer.py {method} (tiny setting)',
                     f'{TITLES[method]}. Written by the tool to `{osp.relpath(stem, demo.work)}.{{json,md,png}}`; '
                     'a tiny setting that checks the pipeline, not a result (the benchmarks are in '
                     '`benchmarks/results/`).\n\n' + table)
    demo.add_figure(step, f'tools/eval_transfer.py {method}: per-seed values and mean per arm (tiny setting)',
                    stem + '.png')
    return reused


def run_crosspoint(demo: Demo) -> bool:
    return run_method(demo, 'crosspoint')


def run_segmentation(demo: Demo) -> bool:
    return run_method(demo, 'segmentation')
