"""Step ``finetune``: CenterPoint with a fraction of the labels, from the SimIPU LiDAR encoder and from scratch."""
from __future__ import annotations

import os
import os.path as osp
from typing import TYPE_CHECKING

from mmxmodal_bench.report import add_sum_key, load_scalars, plot_bars, plot_runs_comparison

from ..runner import PY, StepFailed, cmd_text, load_json, rel, run_logged

if TYPE_CHECKING:
    from ..demo import Demo


def run(demo: Demo) -> bool:
    """``tools/label_efficiency.py`` with the demo's SimIPU checkpoint: CenterPoint from scratch and from the
    SimIPU LiDAR encoder, same labelled samples and schedule."""
    s = demo.sched['finetune']
    wd = osp.join(demo.work, 'finetune')
    out = osp.join(wd, 'label_efficiency')
    ckpt = demo.results['simipu']['ckpt']
    cmd = [PY, 'tools/label_efficiency.py', '--data-root', rel(demo.root('nuscenes')), '--ratio',
           str(s['label_ratio']), '--seeds', '0', '--checkpoint', rel(ckpt), '--finetune-epochs',
           str(s['epochs']), '--work-dir', rel(wd), '--out', rel(out)]
    reused = demo.reuse_ok('finetune') and osp.isfile(out + '.json')
    if not reused:
        demo.may_run('finetune', rel(out + '.json'))
        if osp.isfile(out + '.json'):
            os.remove(out + '.json')
        run_logged(cmd, osp.join(demo.logs, 'finetune.log'),
                   f'CenterPoint with {s["label_ratio"]:.0%} of the labels: from scratch, then from the SimIPU '
                   'LiDAR encoder', tag='finetune', env=demo.env, follow=[osp.join(wd, '*_seed0.log')])
    res = load_json(out + '.json')
    if not res.get('runs'):
        raise StepFailed(f'{rel(out)}.json not written or without runs', rel(osp.join(demo.logs, 'finetune.log')))
    runs = {r['init']: r for r in res['runs'] if r.get('seed', 0) == 0}
    text = cmd_text(cmd)
    note = f'{s["label_ratio"]:.0%} labels, {s["epochs"]} epochs, val split'
    labels = {'simipu': 'SimIPU-pretrained LiDAR encoder', 'scratch': 'from scratch'}
    for metric in ('NDS', 'mAP'):
        for init in ('simipu', 'scratch'):
            demo.add('finetune', 'CenterPoint fine-tuning', f'{metric}, {labels[init]}',
                     runs.get(init, {}).get(metric), command=text, note=note)
        if 'simipu' in runs and 'scratch' in runs:
            demo.add('finetune', 'CenterPoint fine-tuning', f'{metric} gain (pretrained - scratch)',
                     runs['simipu'][metric] - runs['scratch'][metric])
    for init in ('simipu', 'scratch'):
        demo.add('finetune', 'CenterPoint fine-tuning', f'final train loss, {labels[init]}',
                 runs.get(init, {}).get('final_train_loss'), command=text)
    curves = {}
    for init in ('simipu', 'scratch'):
        try:
            recs = load_scalars(osp.join(wd, f'{init}_seed0'))
        except FileNotFoundError as e:
            raise StepFailed(f'no training curves: {e}', rel(osp.join(wd, f'{init}_seed0.log')))
        # CenterPoint logs one heatmap / box loss per task head (task0.loss_heatmap, ...): plot their sums
        curves[labels[init]] = add_sum_key(add_sum_key(recs, 'loss_heatmap'), 'loss_bbox')
    fig = demo.fig('finetune_pretrained_vs_scratch.png')
    plot_runs_comparison(curves, [('loss', 'total loss'), ('sum.loss_heatmap', 'heatmap loss (all task heads)'),
                                  ('sum.loss_bbox', 'box regression loss (all task heads)')], fig,
                         smooth_window=5, logy=True,
                         title=f'CenterPoint with {s["label_ratio"]:.0%} of the labels, same schedule: SimIPU '
                         'init vs scratch')
    fig2 = demo.fig('finetune_metrics.png')
    plot_bars({labels[i]: [runs.get(i, {}).get('NDS'), runs.get(i, {}).get('mAP')] for i in ('simipu', 'scratch')},
              ['NDS', 'mAP'], fig2, ylabel='val', value_fmt='{:.4f}', title='CenterPoint on the val split')
    demo.add_figure('finetune', 'Fine-tuning CenterPoint on a labelled fraction: training losses from the '
                    'SimIPU-pretrained LiDAR encoder vs from scratch', fig)
    demo.add_figure('finetune', 'Fine-tuning CenterPoint: val NDS / mAP', fig2)
    return reused
