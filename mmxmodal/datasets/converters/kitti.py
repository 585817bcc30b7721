"""KITTI 3D-object roots (real or generated): a validator and the info writer (mmdet3d's ``create_data.py kitti``).

:func:`validate_kitti_root` checks the ImageSets, velodyne, image, calib and label files of every listed frame and
reports every problem with the file it concerns; :func:`create_kitti_infos` runs mmdet3d's own converter
(``create_kitti_info_file`` + ``create_reduced_point_cloud``, then ``update_pkl_infos`` v1 -> v2) and writes
``kitti_infos_{train,val,trainval,test}.pkl`` as ``python tools/create_data.py kitti`` does.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from .mmdet3d_tools import create_gt_database, load_converter, quiet, temporary_workdir


class KittiRootError(ValueError):
    """A KITTI root is unusable; ``problems`` lists every problem found (each names the file)."""

    def __init__(self, root: str, problems: List[str]):
        self.root, self.problems = root, problems
        more = f'\n  ... and {len(problems) - 20} more' if len(problems) > 20 else ''
        super().__init__(f'invalid KITTI root {root}: {len(problems)} problem(s):\n  ' + '\n  '.join(problems[:20])
                         + more)


_CALIB_KEYS = ('P0', 'P1', 'P2', 'P3', 'R0_rect', 'Tr_velo_to_cam', 'Tr_imu_to_velo')


def _calib_geometry_problem(calib: str) -> Optional[str]:
    """Why the ``P2`` / ``R0_rect`` / ``Tr_velo_to_cam`` of a KITTI calib file are not a camera (None if fine): P2's
    intrinsics well formed, ``R0_rect @ Tr_velo_to_cam`` rigid with a translation in metres."""
    from ..robust import check_camera_calibration
    vals = {}
    with open(calib) as f:
        for line in f.read().splitlines():
            if ':' in line:
                k, v = line.split(':', 1)
                try:
                    vals[k.strip()] = np.array([float(x) for x in v.split()], dtype=np.float64)
                except ValueError:
                    return f'line {k.strip()} holds a non-number'
    sizes = dict(P2=12, R0_rect=9, Tr_velo_to_cam=12)
    for k, n in sizes.items():
        if vals.get(k) is None or vals[k].size != n or not np.isfinite(vals[k]).all():
            return f'{k} must hold {n} finite numbers'
    p2 = np.eye(4)
    p2[:3, :4] = vals['P2'].reshape(3, 4)
    rect, velo = np.eye(4), np.eye(4)
    rect[:3, :3] = vals['R0_rect'].reshape(3, 3)
    velo[:3, :4] = vals['Tr_velo_to_cam'].reshape(3, 4)
    try:
        check_camera_calibration(p2, rect @ velo, '@')
    except ValueError as e:
        return str(e)[len('@: '):].replace('lidar2cam', 'R0_rect @ Tr_velo_to_cam').replace('cam2img', 'P2')
    return None


def validate_kitti_root(root: str) -> Dict[str, List[int]]:
    """Check a KITTI root (real or generated) before conversion.

    Checks the ImageSets files, and for every listed frame that its velodyne ``.bin`` exists and holds whole
    4-float points, its image and calib exist, the calib has the 7 KITTI lines in order with a well-formed ``P2`` and a
    rigid ``R0_rect @ Tr_velo_to_cam`` (translation in metres), and (train/val) its label
    file exists with 15 or 16 fields per line.

    Returns:
        Frame ids per split (train, val, test).

    Raises:
        KittiRootError: listing every problem found (each names the file).
    """
    problems: List[str] = []
    splits: Dict[str, List[int]] = {}
    for split in ('train', 'val', 'test'):
        path = osp.join(root, 'ImageSets', f'{split}.txt')
        if not osp.isfile(path):
            problems.append(f'split file {path} is missing')
            continue
        try:
            with open(path) as f:
                splits[split] = [int(line) for line in f.read().split()]
        except ValueError as e:
            problems.append(f'split file {path} holds a non-integer frame id: {e}')
    for split, frame_ids in splits.items():
        folder = 'testing' if split == 'test' else 'training'
        for i in frame_ids:
            fid = f'{i:06d}'
            velo = osp.join(root, folder, 'velodyne', f'{fid}.bin')
            if not osp.isfile(velo):
                problems.append(f'{split} frame {fid}: file {velo} is missing')
            elif osp.getsize(velo) % 16:
                problems.append(f'{split} frame {fid}: file {velo} is truncated ({osp.getsize(velo)} bytes is '
                                f'not a multiple of 16 = 4 float32 per point)')
            img = osp.join(root, folder, 'image_2', f'{fid}.png')
            if not osp.isfile(img):
                problems.append(f'{split} frame {fid}: file {img} is missing')
            calib = osp.join(root, folder, 'calib', f'{fid}.txt')
            if not osp.isfile(calib):
                problems.append(f'{split} frame {fid}: file {calib} is missing')
            else:
                with open(calib) as f:
                    keys = [line.split(':')[0] for line in f.read().splitlines()[:7]]
                if tuple(keys) != _CALIB_KEYS:
                    problems.append(f'{split} frame {fid}: file {calib} must start with the lines '
                                    f'{", ".join(_CALIB_KEYS)}; found {", ".join(keys)}')
                else:
                    problem = _calib_geometry_problem(calib)
                    if problem:
                        problems.append(f'{split} frame {fid}: file {calib}: {problem}')
            if split != 'test':
                label = osp.join(root, folder, 'label_2', f'{fid}.txt')
                if not osp.isfile(label):
                    problems.append(f'{split} frame {fid}: file {label} is missing')
                else:
                    with open(label) as f:
                        for n, line in enumerate(f.read().splitlines(), 1):
                            if len(line.split(' ')) not in (15, 16):
                                problems.append(f'{split} frame {fid}: file {label} line {n} has '
                                                f'{len(line.split(" "))} fields, expected 15 (or 16 with a score)')
    if problems:
        raise KittiRootError(root, problems)
    return splits


def create_kitti_infos(root: str, out_dir: Optional[str] = None, info_prefix: str = 'kitti',
                       with_plane: bool = False, validate: bool = True, gt_database: bool = False,
                       verbose: bool = False) -> List[str]:
    """Run mmdet3d's KITTI converter (``create_data.py kitti``) on ``root``.

    Writes ``training/velodyne_reduced`` (and ``testing/velodyne_reduced``) into ``root`` like the converter.

    Returns:
        Paths of the v2 info pkls: train, val, trainval, test.
    """
    root = osp.abspath(root)
    out_dir = osp.abspath(out_dir or root)
    if validate:
        validate_kitti_root(root)
    os.makedirs(out_dir, exist_ok=True)
    kitti = load_converter('kitti_converter')
    upd = load_converter('update_infos_to_v2')
    outs = []
    with temporary_workdir({}) as tmp, quiet(verbose):
        os.makedirs('v1')
        v1 = osp.join(tmp, 'v1')
        kitti.create_kitti_info_file(root, info_prefix, with_plane, save_path=v1)
        kitti.create_reduced_point_cloud(root, info_prefix, *(osp.join(v1, f'{info_prefix}_infos_{s}.pkl')
                                                              for s in ('train', 'val', 'test')))
        for split in ('train', 'val', 'trainval', 'test'):
            name = f'{info_prefix}_infos_{split}.pkl'
            upd.update_pkl_infos('kitti', out_dir=out_dir, pkl_path=osp.join('v1', name))
            outs.append(osp.join(out_dir, name))
    if gt_database:
        create_gt_database('KittiDataset', root, info_prefix, outs[0], verbose, relative_path=False,
                     mask_anno_path='instances_train.json', with_mask=False)
    return outs
