# Copyright (c) mmxmodal contributors.
"""Create mmdet3d v2 info pkls for a nuScenes or KITTI root (real or generated), with mmdet3d's own converters.

Same arguments as mmdet3d 1.4's ``tools/create_data.py`` (which ships inside the mmdet3d wheel but cannot be run
from there), e.g.::

    python tools/create_data.py nuscenes --root-path ./data/nuscenes --out-dir ./data/nuscenes \
        --extra-tag nuscenes --version v1.0-trainval --max-sweeps 10
    python tools/create_data.py kitti --root-path ./data/kitti --out-dir ./data/kitti --extra-tag kitti

The root is validated first (missing files, truncated point clouds and broken table links are reported with the
file or token), then the converter runs, then the v1 pkls are updated to the v2 format mmdet3d 1.x reads.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from mmxmodal.datasets.synthetic.infos import create_kitti_infos, create_nuscenes_infos  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Data converter arg parser')
    parser.add_argument('dataset', choices=['nuscenes', 'kitti'], help='name of the dataset')
    parser.add_argument('--root-path', type=str, required=True, help='specify the root path of dataset')
    parser.add_argument('--version', type=str, default='v1.0', required=False,
                        help='specify the dataset version, no need for kitti (nuscenes: v1.0-trainval, '
                        'v1.0-mini, v1.0-test; v1.0 means trainval + test)')
    parser.add_argument('--max-sweeps', type=int, default=10, required=False,
                        help='specify sweeps of lidar per example')
    parser.add_argument('--with-plane', action='store_true', help='Whether to use plane information for kitti.')
    parser.add_argument('--out-dir', type=str, default=None, help='name of info pkl (default: the root)')
    parser.add_argument('--extra-tag', type=str, default=None, help='info pkl prefix (default: dataset name)')
    parser.add_argument('--gt-database', action='store_true', help='also build the GT database (ObjectSample aug)')
    parser.add_argument('--no-validate', action='store_true', help='skip the root validation')
    return parser.parse_args()


def main():
    args = parse_args()
    tag = args.extra_tag or args.dataset
    common = dict(out_dir=args.out_dir, info_prefix=tag, validate=not args.no_validate,
                  gt_database=args.gt_database, verbose=True)
    if args.dataset == 'kitti':
        outs = create_kitti_infos(args.root_path, with_plane=args.with_plane, **common)
    else:
        versions = ['v1.0-trainval', 'v1.0-test'] if args.version == 'v1.0' else [args.version]
        outs = []
        for version in versions:
            outs += create_nuscenes_infos(args.root_path, version=version, max_sweeps=args.max_sweeps, **common)
    print('wrote\n  ' + '\n  '.join(outs))


if __name__ == '__main__':
    main()
