"""Step ``crossmost``: Cross-MoST label-free self-training from its weak start (``tools/crossmost_synthetic_acceptance.py``)."""
from __future__ import annotations

import os
import os.path as osp
from typing import TYPE_CHECKING

from mmxmodal_bench.report import load_scalars, plot_bars, plot_curves, train_series

from ..runner import PY, StepFailed, cmd_text, load_json, rel, run_logged, say

if TYPE_CHECKING:
    from ..demo import Demo


def run(demo: Demo) -> bool:
    s = demo.sched['crossmost']
    wd = osp.join(demo.work, 'crossmost')
    cmd = [PY, 'tools/crossmost_synthetic_acceptance.py', '--work-dir', rel(wd), '--data-dir',
           rel(demo.root('crossmost')), '--threads', str(demo.threads)]
    if s.get('warmup_epochs') is not None:
        cmd += ['--warmup-epochs', str(s['warmup_epochs'])]
    if s.get('epochs'):
        cmd += ['--epochs', str(s['epochs'])]
    out_json = osp.join(wd, 'acceptance.json')
    reused = demo.reuse_ok('crossmost') and osp.isfile(out_json)
    if not reused:
        demo.may_run('crossmost', rel(out_json))
        if osp.isfile(out_json):
            os.remove(out_json)
        run_logged(cmd, osp.join(demo.logs, 'crossmost.log'), 'Cross-MoST: label-free image-point warm-up, '
                   '1-shot start classifier, then self-training with an EMA teacher (no labels)', tag='crossmost',
                   env=demo.env)
    res = load_json(out_json)
    if not res.get('a0') or not res.get('final'):
        raise StepFailed(f'{rel(out_json)} not written or incomplete', rel(osp.join(demo.logs, 'crossmost.log')))
    text = cmd_text(cmd)
    names = dict(pts_acc='point branch', img_acc='image branch', combined_acc='combined')
    for k, what in names.items():
        demo.add('crossmost', 'Cross-MoST', f'held-out accuracy, {what}, weak start a0', res['a0'][k], '%',
                 command=text, note=res.get('start', ''))
        demo.add('crossmost', 'Cross-MoST', f'held-out accuracy, {what}, after self-training (EMA teacher)',
                 res['final'][k], '%', command=text,
                 note=f'{res.get("selftrain_epochs")} epochs on unlabelled train objects')
        demo.add('crossmost', 'Cross-MoST', f'gain of the EMA teacher, {what}', res['final'][k] - res['a0'][k],
                 'points')
        if k in res.get('final_student', {}):
            demo.add('crossmost', 'Cross-MoST', f'held-out accuracy, {what}, after self-training (student)',
                     res['final_student'][k], '%', command=text)
    out = demo.fig('crossmost.png')
    bars = {'weak start (a0)': [res['a0'][k] for k in names],
            'self-trained EMA teacher': [res['final'][k] for k in names]}
    if all(k in res.get('final_student', {}) for k in names):
        bars['self-trained student'] = [res['final_student'][k] for k in names]
    plot_bars(bars, list(names.values()), out,
              ylabel='held-out accuracy (%)', title='Cross-MoST on the embedded objects (no labels in training)')
    demo.add_figure('crossmost', 'Cross-MoST: held-out accuracy of the weak start and after label-free '
                    'self-training', out)
    try:  # self-training curves
        recs = load_scalars(osp.join(wd, 'selftrain'))
        keys = sorted({k for rr in recs if 'iter' in rr for k in rr})

        def series(names, scale=1.0):
            return [(k, *[v * m for v, m in zip(train_series(recs, k), (1.0, scale))]) for k in names
                    if k in keys]

        panels = [dict(title='pseudo-label and fairness losses', ylabel='loss',
                       series=series([k for k in keys if k.startswith(('loss_pl', 'loss_fair'))])),
                  dict(title='alignment and masked-modelling losses', ylabel='loss',
                       series=series([k for k in keys if k.startswith(('loss_align', 'loss_mim', 'loss_mpm'))])),
                  dict(title='pseudo-label accuracy (%, monitor only)', ylabel='%',
                       series=series([k for k in keys if k.startswith(('pl_acc', 'teacher_acc'))], 100.0))]
        panels = [p for p in panels if p['series']]
        if panels:
            out2 = demo.fig('crossmost_selftraining.png')
            plot_curves(panels, out2, title='Cross-MoST self-training on the unlabelled train objects',
                        smooth_window=5)
            demo.add_figure('crossmost', 'Cross-MoST self-training curves (labels are read only by the monitor)',
                            out2)
    except (FileNotFoundError, KeyError, ValueError) as e:
        say('crossmost', f'(no self-training curves: {e})')
    return reused
