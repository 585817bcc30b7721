# Copyright (c) mmxmodal contributors.
"""Create mmdet3d v2 info pkls for a nuScenes, KITTI or SemanticKITTI root (real or generated).

Same arguments as mmdet3d 1.4's ``tools/create_data.py`` (which ships inside the mmdet3d wheel but cannot be run
from there), e.g.::

    python tools/create_data.py nuscenes --root-path ./data/nuscenes --out-dir ./data/nuscenes \
        --extra-tag nuscenes --version v1.0-trainval --max-sweeps 10
    python tools/create_data.py kitti --root-path ./data/kitti --out-dir ./data/kitti --extra-tag kitti
    python tools/create_data.py semantickitti --root-path ./data/semantickitti --extra-tag semantickitti

SemanticKITTI: the infos of ``mmxmodal.datasets.converters.semantickitti.create_semantickitti_infos`` (the stock
converter's entries plus ``images['CAM2']`` from each sequence's calib.txt) for the sequences of ``splits.json``
(a generated root) or the stock splits (train 00-07, 09, 10 / val 08 / test 11-21, test unlabelled), or given with
``--train-seqs 0,1 --val-seqs 8 --test-seqs 11 --labelled-test``; ``--stock`` runs mmdet3d's own converter instead
(keeping the frames that exist). ``nuscenes --lidarseg`` adds ``pts_semantic_mask_path`` from ``lidarseg.json``.

The root is validated first (missing files, truncated point clouds and broken table links are reported with the
file or token), then the converter runs, then the v1 pkls are updated to the v2 format mmdet3d 1.x reads.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from mmxmodal.datasets.converters.kitti import create_kitti_infos  # noqa: E402
from mmxmodal.datasets.converters.nuscenes import create_nuscenes_infos  # noqa: E402


def _seqs(text):
    return [int(v) for v in text.split(',') if v.strip()]


def parse_args():
    parser = argparse.ArgumentParser(description='Data converter arg parser')
    parser.add_argument('dataset', choices=['nuscenes', 'kitti', 'semantickitti'], help='name of the dataset')
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
    parser.add_argument('--lidarseg', action='store_true', help='nuscenes: add the lidarseg label paths')
    for split in ('train', 'val', 'test'):
        parser.add_argument(f'--{split}-seqs', type=_seqs, default=None, help=f'semantickitti: {split} sequences')
    parser.add_argument('--labelled-test', action='store_true', help='semantickitti: the test sequences have labels')
    parser.add_argument('--stock', action='store_true', help='semantickitti: run mmdet3d\'s own converter')
    parser.add_argument('--no-camera', action='store_true',
                        help='semantickitti: no images[CAM2] (a root without image_2 / calib.txt)')
    parser.add_argument('--on-error', choices=['raise', 'skip'], default='raise',
                        help='semantickitti: bad frames raise (naming the file) or are left out and counted')
    return parser.parse_args()


def main():
    args = parse_args()
    tag = args.extra_tag or args.dataset
    common = dict(out_dir=args.out_dir, info_prefix=tag, validate=not args.no_validate,
                  gt_database=args.gt_database, verbose=True)
    if args.dataset == 'semantickitti':
        outs = _semantickitti(args, tag)
    elif args.dataset == 'kitti':
        outs = create_kitti_infos(args.root_path, with_plane=args.with_plane, **common)
    else:
        versions = ['v1.0-trainval', 'v1.0-test'] if args.version == 'v1.0' else [args.version]
        outs = []
        for version in versions:
            new = create_nuscenes_infos(args.root_path, version=version, max_sweeps=args.max_sweeps, **common)
            if args.lidarseg:
                from mmxmodal.datasets.nuscenes_seg import add_lidarseg_to_infos
                for pkl in new:
                    add_lidarseg_to_infos(args.root_path, pkl, version=version)
            outs += new
    print('wrote\n  ' + '\n  '.join(outs))


def _semantickitti(args, tag):
    from mmxmodal.datasets.converters import semantickitti as sk
    if args.stock:
        return list(sk.stock_semantickitti_infos(args.root_path, args.out_dir, info_prefix=tag,
                                                 verbose=True)['pkls'].values())
    given = {s: getattr(args, f'{s}_seqs') for s in ('train', 'val', 'test')}
    if any(v is not None for v in given.values()):
        seqs = {s: v for s, v in given.items() if v}
        labels = ('train', 'val', 'test') if args.labelled_test else ('train', 'val')
    elif osp.isfile(osp.join(args.root_path, 'splits.json')):
        seqs, labels = sk.read_splits(args.root_path), ('train', 'val', 'test')
    else:
        seqs = {k: list(v) for k, v in sk.STOCK_SPLITS.items()}
        labels = ('train', 'val', 'test') if args.labelled_test else ('train', 'val')
    res = sk.create_semantickitti_infos(args.root_path, args.out_dir, seqs, info_prefix=tag, labels=labels,
                                        camera=not args.no_camera, on_error=args.on_error)
    print('frames: ' + ', '.join(f'{k} {v} (skipped {res["skipped"][k]})' for k, v in res['counts'].items()))
    return list(res['pkls'].values())


if __name__ == '__main__':
    main()
