"""Step ``crosspoint``: CrossPoint pretraining of a DGCNN point encoder + ResNet-18 image encoder, no labels."""
from __future__ import annotations

import os.path as osp
from typing import TYPE_CHECKING, Dict

from mmxmodal_bench.report import first_last, last_val, load_scalars, plot_curves, train_series, val_series

from ..runner import cmd_text, last_checkpoint, rel, train_cmd
from ..settings import CONFIGS

if TYPE_CHECKING:
    from ..demo import Demo


def options(demo: Demo) -> Dict[str, object]:
    s = demo.sched['crosspoint']
    root = rel(demo.root('objects')) + '/'
    probe = root + 'modelnet40_ply_hdf5_2048/'
    opts = {'train_dataloader.dataset.data_root': root,
            'val_dataloader.dataset.datasets.0.data_root': probe,
            'val_dataloader.dataset.datasets.1.data_root': probe,
            'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
            'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
            'train_cfg.val_interval': s['val_interval']}
    if s.get('epochs'):
        opts.update({'train_cfg.max_epochs': s['epochs'], 'param_scheduler.0.T_max': s['epochs'],
                     'param_scheduler.0.end': s['epochs'], 'default_hooks.checkpoint.interval': s['epochs']})
    if demo.args.quick:
        opts['model.point_encoder.k'] = 8
    return opts


def run(demo: Demo) -> bool:
    wd = osp.join(demo.work, 'crosspoint')
    opts = options(demo)
    cmd = train_cmd(CONFIGS['crosspoint'], wd, opts)
    reused = demo.train('crosspoint', cmd, wd, 'CrossPoint pretraining (point + image encoders, no labels)')
    recs = load_scalars(wd)
    demo.results['crosspoint'] = dict(ckpt=last_checkpoint(wd), cmd=cmd_text(cmd), opts=opts)
    epochs = int(max(r.get('epoch', 1) for r in recs if 'loss' in r))
    per_epoch = max(1, len(train_series(recs, 'loss')[1]) // epochs)
    text = cmd_text(cmd)
    for key, what in (('loss_intra', 'NT-Xent between two augmented point views'),
                      ('loss_cross', 'NT-Xent between the points and their rendered image')):
        a, b = first_last(recs, key, window=per_epoch)
        demo.add('crosspoint', 'CrossPoint pretraining', f'{what}, first epoch', a, command=text)
        demo.add('crosspoint', 'CrossPoint pretraining', f'{what}, last epoch', b, command=text,
                 note=f'{epochs} epochs')
    acc_keys = sorted({k for r in recs for k in r if k.endswith('/accuracy')})
    demo.results['crosspoint']['val_acc'] = {k.split('/')[0]: last_val(recs, k) for k in acc_keys}
    for k in acc_keys:
        demo.add('crosspoint', 'CrossPoint pretraining', f'linear-SVM accuracy ({k.split("/")[0]}) logged by the '
                 'val loop, last epoch', last_val(recs, k), '%', command=text,
                 note='LinearSVMMetric, train split -> test split')
    if not acc_keys:
        demo.add('crosspoint', 'CrossPoint pretraining', 'linear-SVM accuracy logged by the val loop', None,
                 note='no */accuracy key in the val records')
    out = demo.fig('crosspoint_pretraining.png')
    plot_curves([dict(title='loss_intra (point-point NT-Xent)', series=[('loss_intra',
                                                                         *train_series(recs, 'loss_intra'))]),
                 dict(title='loss_cross (point-image NT-Xent)', series=[('loss_cross',
                                                                         *train_series(recs, 'loss_cross'))]),
                 dict(title='linear-SVM probe accuracy (%) per epoch', xlabel='epoch', markers=True,
                      series=[(k, *val_series(recs, k)) for k in acc_keys])],
                out, title='CrossPoint pretraining on the embedded objects (no labels)', smooth_window=3)
    demo.add_figure('crosspoint', 'CrossPoint pretraining: both NT-Xent losses and the linear-SVM probe of '
                    'the val loop', out)
    return reused
