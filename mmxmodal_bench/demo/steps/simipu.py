"""Step ``simipu``: SimIPU pretraining of a ResNet-18 image encoder + CenterPoint's sparse LiDAR encoder, no labels."""
from __future__ import annotations

import os.path as osp
from typing import TYPE_CHECKING

from mmxmodal_bench.report import first_last, load_scalars, plot_curves, train_series

from ..runner import cmd_text, last_checkpoint, rel, train_cmd
from ..settings import CONFIGS

if TYPE_CHECKING:
    from ..demo import Demo


def run(demo: Demo) -> bool:
    s = demo.sched['simipu']
    wd = osp.join(demo.work, 'simipu')
    opts = {'train_dataloader.dataset.data_root': rel(demo.root('nuscenes')) + '/',
            'train_cfg.max_epochs': s['epochs'], 'default_hooks.checkpoint.interval': s['epochs']}
    if s.get('samples'):
        opts['train_dataloader.dataset.indices'] = s['samples']
    cmd = train_cmd(CONFIGS['simipu'], wd, opts)
    reused = demo.train('simipu', cmd, wd, 'SimIPU pretraining (image + LiDAR encoders, no labels)')
    recs = load_scalars(wd)
    demo.results['simipu'] = dict(ckpt=last_checkpoint(wd), cmd=cmd_text(cmd))
    per_epoch = max(1, len(train_series(recs, 'loss')[1]) // max(1, s['epochs']))
    text = cmd_text(cmd)
    for key, what, scale, unit in (
            ('loss_intra', 'intra-modal InfoNCE (LiDAR view vs augmented view)', 1, ''),
            ('loss_inter', 'inter-modal InfoNCE (LiDAR point vs its pixel)', 1, ''),
            ('acc_intra', 'intra-modal contrastive top-1 accuracy (1024 pairs per batch)', 100, '%'),
            ('acc_inter', 'inter-modal contrastive top-1 accuracy (1024 pairs per batch)', 100, '%')):
        a, b = first_last(recs, key, window=per_epoch)
        demo.add('simipu', 'SimIPU pretraining', f'{what}, mean over the first epoch', a * scale, unit,
                 command=text)
        demo.add('simipu', 'SimIPU pretraining', f'{what}, mean over the last epoch', b * scale, unit,
                 command=text, note=f'{s["epochs"]} epochs x {per_epoch} iterations')
    out = demo.fig('simipu_pretraining.png')
    plot_curves([
        dict(title='SimIPU InfoNCE losses', ylabel='loss',
             series=[('loss_intra (LiDAR-LiDAR)', *train_series(recs, 'loss_intra')),
                     ('loss_inter (LiDAR-image)', *train_series(recs, 'loss_inter'))]),
        dict(title='contrastive top-1 accuracy', ylabel='accuracy',
             series=[('acc_intra', *train_series(recs, 'acc_intra')),
                     ('acc_inter', *train_series(recs, 'acc_inter'))]),
    ], out, title='SimIPU pretraining on the embedded nuScenes-format scenes (no labels)', smooth_window=3)
    demo.add_figure('simipu', 'SimIPU pretraining: both InfoNCE losses and their contrastive accuracies', out)
    return reused
