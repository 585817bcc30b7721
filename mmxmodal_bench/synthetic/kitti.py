"""Synthetic driving scenes written as a KITTI 3D-object root.

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

import math
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from .files import write_file
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
        write_file(osp.join(base, 'velodyne', f'{fid}.bin'), pts.astype('<f4').tobytes())
        write_file(osp.join(base, 'image_2', f'{fid}.png'), png)
        write_file(osp.join(base, 'calib', f'{fid}.txt'), calib)
        if labels:
            write_file(osp.join(base, 'label_2', f'{fid}.txt'), label.encode())
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
        write_file(osp.join(out_dir, 'ImageSets', f'{name}.txt'), ''.join(f'{i}\n' for i in lst).encode())
    out = dict(root=out_dir, train=train, val=val, test=test)
    if keep_gt:
        out['gt'] = {k: v for r in results for k, v in r.items()}
    return out
