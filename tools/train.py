# Copyright (c) mmxmodal contributors. Arguments and behaviour follow mmdet3d 1.4's tools/train.py.
"""Train (or pretrain) a model from an mmengine config.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--auto-scale-lr] [--resume [CKPT]]
                          [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmdet3d.utils import replace_ceph_backend  # noqa: E402
# imported here, not first while the runner builds its visualizer: an optional import that fails in there (trimesh
# keeps such ImportErrors, tracebacks and all) would hold the runner's frames, and with them the runner and its
# process group, until interpreter exit (see mmxmodal.utils.dist.close_process_group)
import mmdet3d.visualization  # noqa: E402,F401
from mmxmodal.utils.config_checks import check_config_paths  # noqa: E402
from mmxmodal.utils.checkpoint import add_plain_checkpoint_hook  # noqa: E402
from mmxmodal.utils.dist import close_process_group  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Train a 3D detector / pretrain encoders')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--sync_bn', choices=['none', 'torch', 'mmcv'], default='none',
                        help='convert all BatchNorm layers in the model to SyncBatchNorm (SyncBN) or '
                        'mmcv.ops.sync_bn.SyncBatchNorm (MMSyncBN) layers.')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='If specify checkpoint path, resume from it, while if not specify, try to auto '
                        'resume from the latest checkpoint in the work directory.')
    parser.add_argument('--ceph', action='store_true', help='Use ceph as data storage backend')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override some settings in the used config, the key-value pair in xxx=yyy format '
                        'will be merged into config file. If the value to be overwritten is a list, it should '
                        'be like key="[a,b]" or key=a,b It also allows nested list/tuple values, e.g. '
                        'key="[(a,b),(c,d)]" Note that the quotation marks are necessary and that no white '
                        'space is allowed.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # When using PyTorch version >= 2.0.0, the `torch.distributed.launch` will pass the `--local-rank`
    # parameter to `tools/train.py` instead of `--local_rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    # this tool runs on machines without a GPU too: install the opt-in CPU support explicitly (a no-op for CUDA
    # tensors; see mmxmodal/cpu/__init__.py for what it changes)
    import mmxmodal.cpu
    print_log(f'mmxmodal.cpu installed: {", ".join(mmxmodal.cpu.installed()) or "nothing"}', logger='current')
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')

    cfg = Config.fromfile(args.config)

    # TODO: We will unify the ceph support approach with other OpenMMLab repos
    if args.ceph:
        cfg = replace_ceph_backend(cfg)

    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    # enable automatic-mixed-precision training
    if args.amp is True:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    # convert BatchNorm layers
    if args.sync_bn != 'none':
        cfg.sync_bn = args.sync_bn

    # enable automatically scaling LR
    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and 'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or "auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your configuration file.')

    # resume is determined in this priority: resume from > auto_resume
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    # fail before building anything when a named file (data root, ann file, checkpoint) is missing; training
    # builds the train and val loops only, so the test split may live elsewhere (or not exist yet)
    check_config_paths(cfg, ignore=('test_dataloader', 'test_evaluator'))
    # checkpoints that stock mmengine loads weights-only (message hub as plain tensors; rebuilt on --resume)
    add_plain_checkpoint_hook(cfg)

    # build the runner from config
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    runner.train()
    del runner
    close_process_group()


if __name__ == '__main__':
    main()
