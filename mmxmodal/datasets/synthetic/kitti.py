"""Synthetic driving scenes written as a KITTI 3D-object root, and a validator for KITTI roots.

Layout written under ``out_dir`` (byte-identical for the same arguments)::

    ImageSets/{train,val,trainval,test}.txt     # 6-digit frame ids, one per line
    training/velodyne/NNNNNN.bin               # float32 (N, 4): x y z reflectance, velodyne frame (x fwd, y left)
    training/image_2/NNNNNN.png                # left colour camera, RGB
    training/calib/NNNNNN.txt                  # P0-P3 (3x4), R0_rect (3x3), Tr_velo_to_cam, Tr_imu_to_velo (3x4)
    training/label_2/NNNNNN.txt                # KITTI labels in rectified camera-0 coordinates
    testing/{velodyne,image_2,calib}/NNNNNN.txt|bin|png   # unlabelled frames (``test_scenes`` extra scenes)

The sensors are KITTI's: a 64-beam velodyne (HDL-64E elevations, 120 m) at 1.73 m and camera 2 (1242 x 375 by
default; the intrinsics are scaled to ``image_size``). Every frame is one LiDAR revolution centred on the camera
trigger (the beam faces forward when the image is taken); points are motion-compensated to that instant.

Labels (``Car``, ``Truck``, ``Misc`` (buses), ``Pedestrian``, ``Cyclist``) are written for objects seen in the image:
``truncated`` is the fraction of the projected 3D box outside the image, ``occluded`` comes from the fraction of
the object's silhouette that is visible (>= 80%: 0, >= 40%: 1, else 2), the 2D box is the object's silhouette box,
``dimensions`` are h w l, ``location`` the bottom centre in camera-0 coordinates and ``rotation_y`` the yaw around
the camera's y axis.

Usage::

    python tools/create_synthetic_data.py kitti --out-dir data/synthetic-kitti --num-scenes 10 --samples-per-scene 4
"""
from __future__ import annotations

import argparse
import math
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .nuscenes import _write, parse_image_size
from .scene import (KITTI_CAM_OFFSETS, KITTI_IMU_TO_VELO, KITTI_VELO_IN_EGO, KITTI_VELO_TO_CAM, StreetScene,
                    generate_street_scene, kitti_rig, wrap_angle)

FRAME_INTERVAL = 1.0  # s between the frames taken from one scene
LABEL_RANGE = 80.0  # m


@dataclass
class _Config:
    out_dir: str
    seed: int
    samples_per_scene: int
    image_size: Tuple[int, int]
    num_azimuths: int
    keep_gt: bool


def _fmt(values) -> str:
    return ' '.join(f'{float(v):.12e}' for v in np.ravel(values))


def calib_text(K: np.ndarray) -> str:
    """KITTI calib file for rectified intrinsics K (3, 3) (P_i = K [I | (t_i, 0, 0)], R0_rect = I)."""
    lines = []
    for i, off in enumerate(KITTI_CAM_OFFSETS):
        P = np.concatenate([K, (K @ np.array([off, 0.0, 0.0]))[:, None]], 1)
        lines.append(f'P{i}: {_fmt(P)}')
    lines.append(f'R0_rect: {_fmt(np.eye(3))}')
    lines.append(f'Tr_velo_to_cam: {_fmt(KITTI_VELO_TO_CAM)}')
    lines.append(f'Tr_imu_to_velo: {_fmt(KITTI_IMU_TO_VELO)}')
    return '\n'.join(lines) + '\n'


def _frame(cfg: _Config, scene: StreetScene, lidar, cam, K, t: float, rng) -> Tuple[np.ndarray, np.ndarray, str,
                                                                                  dict]:
    """Simulate one frame at time ``t``: velodyne points (N, 4), image, label text and ground truth."""
    import cv2
    frame = scene.scan_lidar(lidar, t + lidar.period / 2, t, rng)
    pts = frame.points[:, :4].copy()
    pts[:, 3] = np.round(pts[:, 3] / 255.0, 2)
    cf = scene.render_camera(cam, t)
    W, H = cam.width, cam.height
    R_e, T_e = scene.ego_pose(t)
    ego_yaw = math.atan2(R_e[1, 0], R_e[0, 0])
    R_cv, t_cv = KITTI_VELO_TO_CAM[:, :3], KITTI_VELO_TO_CAM[:, 3]
    t2 = np.array([KITTI_CAM_OFFSETS[2], 0.0, 0.0])
    visible = cf.visible_pixels(scene.num_instances)
    lines, labelled = [], []
    for obj in scene.objects:
        name = obj.kitti_class
        sil = cf.silhouettes.get(obj.inst_id)
        if name is None or sil is None:
            continue
        c_velo = (obj.center_at(t) - T_e) @ R_e - KITTI_VELO_IN_EGO
        if np.hypot(c_velo[0], c_velo[1]) > LABEL_RANGE:
            continue
        l, w, h = obj.size
        loc = R_cv @ (c_velo - np.array([0.0, 0.0, h / 2])) + t_cv  # bottom centre, rectified camera 0
        if loc[2] <= 0.5:
            continue
        yaw_v = wrap_angle(obj.yaw - ego_yaw)
        ry = wrap_angle(-yaw_v - math.pi / 2)
        alpha = wrap_angle(ry - math.atan2(loc[0], loc[2]))
        corners = (obj.corners_at(t) - T_e) @ R_e - KITTI_VELO_IN_EGO
        cc = corners @ R_cv.T + t_cv + t2  # camera 2
        if (cc[:, 2] > 0.1).all():
            uv = cc[:, :2] / cc[:, 2:] @ K[:2, :2].T + K[:2, 2]
            lo, hi = uv.min(0), uv.max(0)
            area = np.prod(hi - lo)
            inside = np.prod(np.clip(np.minimum(hi, [W, H]) - np.maximum(lo, 0), 0, None))
            trunc = float(np.clip(1 - inside / max(area, 1e-9), 0, 1))
        else:
            trunc = 1.0
        frac = visible[obj.inst_id] / max(sil[0], 1)
        occ = 0 if frac >= 0.8 else 1 if frac >= 0.4 else 2
        x1, y1 = float(sil[1]), float(sil[2])
        x2, y2 = float(min(sil[3] + 1, W - 1)), float(min(sil[4] + 1, H - 1))
        lines.append(f'{name} {trunc:.2f} {occ:d} {alpha:.2f} {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} '
                     f'{h:.2f} {w:.2f} {l:.2f} {loc[0]:.2f} {loc[1]:.2f} {loc[2]:.2f} {ry:.2f}')
        labelled.append(obj.inst_id)
    gt = dict(instance_ids=frame.instance_ids, instance_mask=cf.instance_mask, depth=cf.depth,
              labelled_ids=np.array(labelled, dtype=np.int32)) if cfg.keep_gt else {}
    png = cv2.imencode('.png', np.ascontiguousarray(cf.image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 3])[1]
    return pts, png.tobytes(), ''.join(line + '\n' for line in lines), gt


def _scene_frames(cfg: _Config, scene_idx: int, split_dir: str, first_id: int, labels: bool) -> Dict[str, dict]:
    rng = np.random.default_rng([cfg.seed, scene_idx, 7])
    lidar, cam, K = kitti_rig(cfg.image_size, cfg.num_azimuths)
    n = cfg.samples_per_scene
    scene = generate_street_scene(rng, -lidar.period, (n - 1) * FRAME_INTERVAL + lidar.period)
    calib = calib_text(K).encode()
    gts = {}
    for k in range(n):
        fid = f'{first_id + k:06d}'
        pts, png, label, gt = _frame(cfg, scene, lidar, cam, K, k * FRAME_INTERVAL,
                                     np.random.default_rng([cfg.seed, scene_idx, k, 7]))
        base = osp.join(cfg.out_dir, split_dir)
        _write(osp.join(base, 'velodyne', f'{fid}.bin'), pts.astype('<f4').tobytes())
        _write(osp.join(base, 'image_2', f'{fid}.png'), png)
        _write(osp.join(base, 'calib', f'{fid}.txt'), calib)
        if labels:
            _write(osp.join(base, 'label_2', f'{fid}.txt'), label.encode())
        if cfg.keep_gt:
            gts[f'{split_dir}/{fid}'] = gt
    return gts


def generate_kitti_root(out_dir: str, num_scenes: int = 10, samples_per_scene: int = 4, seed: int = 0,
                        image_size: Tuple[int, int] = (1242, 375), num_azimuths: int = 1800, test_scenes: int = 1,
                        keep_gt: bool = False, workers: int = 1) -> dict:
    """Generate a synthetic KITTI 3D-object root.

    Args:
        out_dir: data root to write.
        num_scenes: labelled scenes (``training/``); the last ~20% (at least one of two or more) form ``val``.
        samples_per_scene: frames per scene, ``FRAME_INTERVAL`` s apart.
        seed: random seed; scene ``i`` depends only on (seed, i).
        image_size: (W, H) of image_2; KITTI's 1242 x 375 intrinsics are scaled to it.
        num_azimuths: velodyne columns per revolution.
        test_scenes: extra unlabelled scenes written to ``testing/``.
        keep_gt: return ``gt['training/NNNNNN']`` (and ``'testing/...'``) = dict(instance_ids (N,) int32 per
            velodyne point, instance_mask (H, W) int32 and depth (H, W) float32 of image_2, labelled_ids (L,) the
            instance id of each label line).
        workers: processes (output is identical for any value).

    Returns:
        dict(root, train, val, test (frame ids), gt (only with ``keep_gt``)).
    """
    if num_scenes < 1 or samples_per_scene < 1 or test_scenes < 0:
        raise ValueError('num_scenes and samples_per_scene must be >= 1 and test_scenes >= 0')
    out_dir = osp.abspath(out_dir)
    cfg = _Config(out_dir, seed, samples_per_scene, tuple(image_size), num_azimuths, keep_gt)
    n_val = 0 if num_scenes < 2 else max(1, int(round(0.2 * num_scenes)))
    n = samples_per_scene
    jobs = [(i, 'training', i * n, True) for i in range(num_scenes)]
    jobs += [(num_scenes + j, 'testing', j * n, False) for j in range(test_scenes)]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as ex:
            results = list(ex.map(_scene_frames, [cfg] * len(jobs), *zip(*jobs)))
    else:
        results = [_scene_frames(cfg, *job) for job in jobs]
    ids = [f'{i:06d}' for i in range(num_scenes * n)]
    train, val = ids[:(num_scenes - n_val) * n], ids[(num_scenes - n_val) * n:]
    test = [f'{i:06d}' for i in range(test_scenes * n)]
    for name, lst in (('train', train), ('val', val), ('trainval', train + val), ('test', test)):
        _write(osp.join(out_dir, 'ImageSets', f'{name}.txt'), ''.join(f'{i}\n' for i in lst).encode())
    out = dict(root=out_dir, train=train, val=val, test=test)
    if keep_gt:
        out['gt'] = {k: v for r in results for k, v in r.items()}
    return out


# ------------------------------------------------------------------------------------------------- validation
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
    from mmxmodal.datasets.robust import check_camera_calibration
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


# ------------------------------------------------------------------------------------------------------ CLI
def add_kitti_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``kitti`` sub-command of ``tools/create_synthetic_data.py``."""
    p = subparsers.add_parser('kitti', help='driving scenes as a KITTI 3D-object root (+ mmdet3d info pkls)',
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out-dir', default='data/synthetic-kitti', help='data root to write')
    p.add_argument('--num-scenes', type=int, default=10, help='labelled scenes (training/, split into train/val)')
    p.add_argument('--samples-per-scene', type=int, default=4, help='frames per scene (1 s apart)')
    p.add_argument('--sweeps', type=int, default=0,
                   help='accepted for symmetry with the nuscenes sub-command; KITTI frames hold one sweep')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--image-size', type=parse_image_size, default=(1242, 375), help='image_2 size WxH')
    p.add_argument('--test-scenes', type=int, default=1, help='unlabelled scenes written to testing/')
    p.add_argument('--num-azimuths', type=int, default=1800, help='velodyne columns per revolution')
    p.add_argument('--workers', type=int, default=1, help='processes (output is identical for any value)')
    p.add_argument('--no-infos', action='store_true', help='do not create the mmdet3d info pkls')
    p.add_argument('--gt-database', action='store_true',
                   help='also build mmdet3d\'s GT database (as create_data.py does) from the train infos')
    p.set_defaults(func=_run_kitti)
    return p


def _run_kitti(args: argparse.Namespace) -> None:
    import time
    t0 = time.time()
    out = generate_kitti_root(args.out_dir, args.num_scenes, args.samples_per_scene, args.seed, args.image_size,
                              args.num_azimuths, args.test_scenes, workers=args.workers)
    print(f'wrote {len(out["train"])} train, {len(out["val"])} val and {len(out["test"])} test frames to '
          f'{out["root"]} in {time.time() - t0:.1f} s')
    if not args.no_infos:
        from .infos import create_kitti_infos
        t1 = time.time()
        pkls = create_kitti_infos(out['root'], out['root'], gt_database=args.gt_database)
        print(f'info pkls ({time.time() - t1:.1f} s): ' + ', '.join(pkls))
