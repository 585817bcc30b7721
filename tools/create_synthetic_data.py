"""Generate the embedded synthetic data sets in real on-disk formats (and their mmdet3d info pkls).

    python tools/create_synthetic_data.py objects  --out-dir data/synthetic_objects --num-objects 200 --seed 0
    python tools/create_synthetic_data.py nuscenes --help
    python tools/create_synthetic_data.py kitti    --help
    python tools/create_synthetic_data.py semantickitti --help

The generators are the bench's (``mmxmodal_bench/synthetic/<name>.py``, each sub-command's help shows its module's
documentation); the info pkls are written by the same code as for real roots (``mmxmodal.datasets.converters``,
also behind ``tools/create_data.py``).
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import List, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

GENERATORS = ('objects', 'nuscenes', 'kitti', 'semantickitti')


def parse_image_size(text: str) -> Tuple[int, int]:
    """'640x360' -> (640, 360)."""
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'image size must look like 640x360, got {text!r}')
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f'image size {text!r} is too small')
    return w, h


def parse_sequences(text: str) -> List[int]:
    """'0,1,2' -> [0, 1, 2]."""
    try:
        return [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'sequence list must look like 0,1,2, got {text!r}')


class _NoSweeps(argparse.Action):
    """``kitti --sweeps``: refused with the reason (a KITTI frame is one velodyne revolution)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error('--sweeps does not apply to KITTI: a KITTI frame holds one velodyne sweep (mmdet3d\'s KITTI '
                     'infos have no lidar_sweeps); use the nuscenes sub-command for keyframes with previous sweeps')


def _sub(subparsers, name: str, help: str, module) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=help, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


# ---------------------------------------------------------------------------------------------------- objects
def add_objects_parser(subparsers) -> None:
    from mmxmodal_bench.synthetic import objects
    p = _sub(subparsers, 'objects', 'paired objects: ShapeNetRender + ModelNet40/ScanObjectNN h5 layouts', objects)
    p.add_argument('--out-dir', default='data/synthetic_objects', help='output root')
    p.add_argument('--num-objects', type=int, default=200, help='ShapeNetRender (pretraining) objects')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num-views', type=int, default=8, help='renders per ShapeNetRender object')
    p.add_argument('--image-size', type=int, default=144, help='square render size in pixels')
    p.add_argument('--num-points', type=int, default=2048, help='surface points per object')
    p.add_argument('--classes', nargs='+', default=None, choices=sorted(objects.ALL_CLASS_SYNSETS),
                   help='classes in label order (default: those of --class-set)')
    p.add_argument('--class-set', choices=sorted(objects.CLASS_SETS), default=None,
                   help="'basic' (default: %d distinct classes) or 'hard' (%d classes in confusable families)"
                   % (len(objects.OBJECT_CLASSES), len(objects.HARD_OBJECT_CLASSES)))
    p.add_argument('--scan-occlusion', type=float, default=0.0,
                   help='ScanObjectNN scans: hide up to this fraction of the visible points (occluder)')
    p.add_argument('--scan-background', type=float, default=0.0,
                   help='ScanObjectNN scans: this fraction of the points is background (floor, wall)')
    p.add_argument('--cls-train-per-class', type=int, default=10, help='labelled train objects per class')
    p.add_argument('--cls-test-per-class', type=int, default=5, help='labelled test objects per class')
    p.add_argument('--cls-views', type=int, default=None, help='views per labelled object (default: --num-views)')
    p.add_argument('--no-scanobjectnn', action='store_true', help='skip the ScanObjectNN-layout partial scans')
    p.add_argument('--ssaa', type=int, default=2, help='render supersampling factor (anti-aliasing)')
    p.add_argument('--workers', type=int, default=min(2, os.cpu_count() or 1),
                   help='processes (default: min(2, cores); the output is identical for any value)')
    p.set_defaults(func=run_objects)


def run_objects(args: argparse.Namespace) -> None:
    from mmxmodal_bench.synthetic.objects import generate_objects
    generate_objects(args.out_dir, num_objects=args.num_objects, seed=args.seed, num_views=args.num_views,
                     image_size=args.image_size, num_points=args.num_points, classes=args.classes,
                     cls_train_per_class=args.cls_train_per_class, cls_test_per_class=args.cls_test_per_class,
                     cls_views=args.cls_views, scanobjectnn=not args.no_scanobjectnn, ssaa=args.ssaa,
                     workers=args.workers, verbose=True, class_set=args.class_set,
                     scan_occlusion=args.scan_occlusion, scan_background=args.scan_background)


# --------------------------------------------------------------------------------------------------- nuscenes
def add_nuscenes_parser(subparsers) -> None:
    from mmxmodal_bench.synthetic import nuscenes
    p = _sub(subparsers, 'nuscenes', 'driving scenes as a nuScenes root (+ mmdet3d info pkls)', nuscenes)
    p.add_argument('--out-dir', default='data/synthetic-nuscenes', help='data root to write')
    p.add_argument('--num-scenes', type=int, default=10, help='scenes (v1.0-mini: at most 10)')
    p.add_argument('--samples-per-scene', type=int, default=4, help='keyframes per scene (2 Hz)')
    p.add_argument('--sweeps', type=int, default=3, help='non-keyframe LiDAR sweeps before each keyframe')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--image-size', type=parse_image_size, default=(640, 360), help='camera images WxH')
    p.add_argument('--version', default='v1.0-mini', choices=['v1.0-mini', 'v1.0-trainval'])
    p.add_argument('--num-azimuths', type=int, default=1080, help='LiDAR columns per revolution')
    p.add_argument('--max-sweeps', type=int, default=10, help='sweeps per keyframe in the info pkls')
    p.add_argument('--workers', type=int, default=1, help='processes (output is identical for any value)')
    p.add_argument('--no-infos', action='store_true', help='do not create the mmdet3d info pkls')
    p.add_argument('--no-lidarseg', action='store_true', help='do not write nuScenes-lidarseg labels')
    p.add_argument('--extras', action='store_true', help='add trees, hedges, fences, traffic signs, grass strips')
    p.add_argument('--gt-database', action='store_true',
                   help='also build mmdet3d\'s GT database (as create_data.py does) from the train infos')
    p.set_defaults(func=run_nuscenes)


def run_nuscenes(args: argparse.Namespace) -> None:
    from mmxmodal_bench.synthetic.nuscenes import generate_nuscenes_root
    t0 = time.time()
    out = generate_nuscenes_root(args.out_dir, args.num_scenes, args.samples_per_scene, args.sweeps, args.seed,
                                 args.image_size, args.version, args.num_azimuths, workers=args.workers,
                                 lidarseg=not args.no_lidarseg, extras=args.extras)
    print(f'wrote {out["num_samples"]} samples ({out["num_sample_data"]} sample_data) in {len(out["scenes"])} '
          f'scenes to {out["root"]} in {time.time() - t0:.1f} s')
    if not args.no_infos:
        from mmxmodal.datasets.converters.nuscenes import create_nuscenes_infos
        t1 = time.time()
        pkls = create_nuscenes_infos(out['root'], out['root'], version=args.version, max_sweeps=args.max_sweeps,
                                     gt_database=args.gt_database)
        if not args.no_lidarseg:
            from mmxmodal.datasets.nuscenes_seg import add_lidarseg_to_infos
            for pkl in pkls:
                add_lidarseg_to_infos(out['root'], pkl, version=args.version)
        print(f'info pkls ({time.time() - t1:.1f} s): ' + ', '.join(pkls))


# ------------------------------------------------------------------------------------------------------ kitti
def add_kitti_parser(subparsers) -> None:
    from mmxmodal_bench.synthetic import kitti
    p = _sub(subparsers, 'kitti', 'driving scenes as a KITTI 3D-object root (+ mmdet3d info pkls)', kitti)
    p.add_argument('--out-dir', default='data/synthetic-kitti', help='data root to write')
    p.add_argument('--num-scenes', type=int, default=10, help='labelled scenes (training/, split into train/val)')
    p.add_argument('--samples-per-scene', type=int, default=4, help='frames per scene (1 s apart)')
    p.add_argument('--sweeps', nargs='?', action=_NoSweeps, help=argparse.SUPPRESS)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--image-size', type=parse_image_size, default=(1242, 375), help='image_2 size WxH')
    p.add_argument('--test-scenes', type=int, default=1, help='unlabelled scenes written to testing/')
    p.add_argument('--num-azimuths', type=int, default=1800, help='velodyne columns per revolution')
    p.add_argument('--workers', type=int, default=1, help='processes (output is identical for any value)')
    p.add_argument('--no-infos', action='store_true', help='do not create the mmdet3d info pkls')
    p.add_argument('--gt-database', action='store_true',
                   help='also build mmdet3d\'s GT database (as create_data.py does) from the train infos')
    p.set_defaults(func=run_kitti)


def run_kitti(args: argparse.Namespace) -> None:
    from mmxmodal_bench.synthetic.kitti import generate_kitti_root
    t0 = time.time()
    out = generate_kitti_root(args.out_dir, args.num_scenes, args.samples_per_scene, args.seed, args.image_size,
                              args.num_azimuths, args.test_scenes, workers=args.workers)
    print(f'wrote {len(out["train"])} train, {len(out["val"])} val and {len(out["test"])} test frames to '
          f'{out["root"]} in {time.time() - t0:.1f} s')
    if not args.no_infos:
        from mmxmodal.datasets.converters.kitti import create_kitti_infos
        t1 = time.time()
        pkls = create_kitti_infos(out['root'], out['root'], gt_database=args.gt_database)
        print(f'info pkls ({time.time() - t1:.1f} s): ' + ', '.join(pkls))


# ---------------------------------------------------------------------------------------------- semantickitti
def add_semantickitti_parser(subparsers) -> None:
    from mmxmodal_bench.synthetic import semantickitti
    p = _sub(subparsers, 'semantickitti', 'labelled scans as a SemanticKITTI root (+ info pkls)', semantickitti)
    seqs = semantickitti.DEFAULT_SEQUENCES
    p.add_argument('--out-dir', default='data/synthetic-semantickitti', help='data root to write')
    p.add_argument('--train-seqs', type=parse_sequences, default=list(seqs['train']))
    p.add_argument('--val-seqs', type=parse_sequences, default=list(seqs['val']))
    p.add_argument('--test-seqs', type=parse_sequences, default=list(seqs['test']))
    p.add_argument('--frames-per-sequence', type=int, default=8,
                   help=f'frames per sequence ({semantickitti.FRAME_INTERVAL} s apart)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--image-size', type=parse_image_size, default=(621, 188), help='image_2 size WxH')
    p.add_argument('--num-azimuths', type=int, default=512, help='velodyne columns per revolution (64 beams)')
    p.add_argument('--no-extras', action='store_true', help='no trees, hedges, fences or traffic signs')
    p.add_argument('--workers', type=int, default=1, help='processes (output is identical for any value)')
    p.add_argument('--no-infos', action='store_true', help='do not write the info pkls')
    p.add_argument('--stock-infos', action='store_true',
                   help='write the info pkls with mmdet3d\'s own converter (stock splits, no labels or camera in '
                        'test) instead of this project\'s writer')
    p.set_defaults(func=run_semantickitti)


def run_semantickitti(args: argparse.Namespace) -> None:
    from mmxmodal.datasets.converters.semantickitti import create_semantickitti_infos, stock_semantickitti_infos
    from mmxmodal_bench.synthetic.semantickitti import generate_semantickitti_root
    t0 = time.time()
    seqs = dict(train=args.train_seqs, val=args.val_seqs, test=args.test_seqs)
    out = generate_semantickitti_root(args.out_dir, seqs, args.frames_per_sequence, args.seed, args.image_size,
                                      args.num_azimuths, not args.no_extras, workers=args.workers)
    print(f'wrote sequences {out["sequences"]} ({args.frames_per_sequence} frames each) to {out["root"]} in '
          f'{time.time() - t0:.1f} s')
    if args.no_infos:
        return
    t1 = time.time()
    if args.stock_infos:
        res = stock_semantickitti_infos(out['root'])
    else:
        res = create_semantickitti_infos(out['root'], sequences=seqs)
    print(f'info pkls ({time.time() - t1:.1f} s): ' + ', '.join(f'{k}: {res["counts"][k]} frames -> {v}'
                                                                for k, v in res['pkls'].items()))


# ---------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest='generator', metavar='{' + ','.join(GENERATORS) + '}')
    subparsers.required = True
    for name in GENERATORS:
        globals()[f'add_{name}_parser'](subparsers)
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == '__main__':
    main()
