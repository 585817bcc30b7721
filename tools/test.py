# Copyright (c) mmxmodal contributors. Arguments and behaviour follow mmdet3d 1.4's tools/test.py.
"""Evaluate a checkpoint with the config's test loop.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] [--launcher ...] [--tta]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmdet3d.utils import replace_ceph_backend  # noqa: E402
# imported before any runner exists (see tools/train.py and mmxmodal.utils.dist.close_process_group)
import mmdet3d.visualization  # noqa: E402,F401
from mmxmodal.utils.config_checks import check_config_paths  # noqa: E402
from mmxmodal.utils.dist import close_process_group  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='MMDet3D test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--ceph', action='store_true', help='Use ceph as data storage backend')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved. If specified, it '
                        'will be automatically saved to the work_dir/timestamp/show_dir')
    parser.add_argument('--score-thr', type=float, default=0.1, help='bbox score threshold')
    parser.add_argument('--task', type=str, choices=['mono_det', 'multi-view_det', 'lidar_det', 'lidar_seg',
                                                     'multi-modality_det'],
                        help='Determine the visualization method depending on the task.')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override some settings in the used config, the key-value pair in xxx=yyy format '
                        'will be merged into config file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--tta', action='store_true', help='Test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' in default_hooks:
        visualization_hook = default_hooks['visualization']
        visualization_hook['draw'] = True
        if args.show:
            visualization_hook['show'] = True
            visualization_hook['wait_time'] = args.wait_time
        if args.show_dir:
            visualization_hook['test_out_dir'] = args.show_dir
        all_task_choices = ['mono_det', 'multi-view_det', 'lidar_det', 'lidar_seg', 'multi-modality_det']
        assert args.task in all_task_choices, 'You must set ' \
            f"'--task' in {all_task_choices} in the command if you want to use visualization hook"
        visualization_hook['vis_task'] = args.task
        visualization_hook['score_thr'] = args.score_thr
    else:
        raise RuntimeError('VisualizationHook must be included in default_hooks. refer to usage '
                           '"visualization=dict(type=\'VisualizationHook\')"')
    return cfg


def main():
    args = parse_args()
    # this tool runs on machines without a GPU too: install the opt-in CPU support explicitly (a no-op for CUDA
    # tensors; see mmxmodal/cpu/__init__.py for what it changes)
    import mmxmodal.cpu
    print_log(f'mmxmodal.cpu installed: {", ".join(mmxmodal.cpu.installed()) or "nothing"}', logger='current')
    for path, what in ((args.config, 'config file'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')

    cfg = Config.fromfile(args.config)
    if args.ceph:
        cfg = replace_ceph_backend(cfg)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        assert 'tta_model' in cfg, 'Cannot find ``tta_model`` in config.'
        assert 'tta_pipeline' in cfg, 'Cannot find ``tta_pipeline`` in config.'
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model

    # testing builds the test loop only
    check_config_paths(cfg, ignore=('train_dataloader', 'val_dataloader', 'val_evaluator'))

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    runner.test()
    del runner
    close_process_group()


if __name__ == '__main__':
    main()
