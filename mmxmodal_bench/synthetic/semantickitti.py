"""Synthetic street scenes written as a SemanticKITTI root.

Layout written under ``out_dir`` (byte-identical for the same arguments)::

    sequences/NN/velodyne/NNNNNN.bin     # float32 (N, 4): x y z remission, velodyne frame (x fwd, y left, z up)
    sequences/NN/labels/NNNNNN.label     # uint32 (N,): lower 16 bits raw SemanticKITTI class, upper 16 instance id
    sequences/NN/image_2/NNNNNN.png      # left colour camera, RGB
    sequences/NN/calib.txt               # P0: P1: P2: P3: Tr: (3x4 each, KITTI odometry format)
    sequences/NN/poses.txt               # camera-0 pose of each frame in camera 0 of frame 0 (3x4 per line)
    sequences/NN/times.txt               # seconds since the first frame, one line per frame
    splits.json                          # {"train": [0, 1, 2], "val": [8], "test": [11]} (sequence numbers)

Every label comes from what the point's ray hit (:mod:`mmxmodal_bench.synthetic.scene`): road, lane marking,
parking, sidewalk and terrain regions of the ground, buildings, fences, vegetation, trunks, poles, traffic signs,
cars, trucks, buses, persons, bicyclists, bicycles, traffic cones (``other-object``) and barriers (``fence``);
moving vehicles, persons and bicyclists get SemanticKITTI's ``moving-*`` ids. Things (vehicles, persons,
bicyclists, bicycles) carry their instance id in the upper 16 bits, everything else 0. Learning ids follow
``LEARNING_MAP`` of :mod:`mmxmodal.datasets.converters.semantickitti` (the ``labels_map`` of mmdet3d's
``configs/_base_/datasets/semantickitti.py``).

Sequence numbers: mmdet3d's ``create_data.py semantickitti`` hard-codes train 00-07, 09, 10 / val 08 / test 11-21
(and the frame count of every real sequence). The default sequences (train 00, 01, 02, val 08, test 11) follow
those lists, so the stock converter's splits hold the generated frames. The info pkls are written by the
writers for real roots in :mod:`mmxmodal.datasets.converters.semantickitti`: ``create_semantickitti_infos`` (the
sequences of ``splits.json``, test split with labels, camera ``images['CAM2']``) or ``stock_semantickitti_infos``
(mmdet3d's own converter).

Usage::

    python tools/create_synthetic_data.py semantickitti --out-dir data/synthetic-semantickitti
"""
from __future__ import annotations

import json
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from mmxmodal.datasets.converters.semantickitti import check_sequences

from .files import write_file
from .kitti import calib_text as kitti_calib_text
from .scene import (FIRST_OBJECT_ID, KITTI_VELO_IN_EGO, KITTI_VELO_TO_CAM, SEMANTIC_CLASSES, StreetScene,
                    generate_street_scene, kitti_rig)

FRAME_INTERVAL = 0.5  # s between the frames of a sequence (every 5th scan of a 10 Hz velodyne)
DEFAULT_SEQUENCES = {'train': (0, 1, 2), 'val': (8,), 'test': (11,)}
MOVING_SPEED = 0.2  # m/s; faster objects get SemanticKITTI's moving-* raw ids


# generator class -> (raw id, raw id when moving)
_RAW_OF_CLASS = {
    'unlabeled': (0, 0), 'road': (40, 40), 'lane_marking': (60, 60), 'parking': (44, 44), 'sidewalk': (48, 48),
    'terrain': (72, 72), 'building': (50, 50), 'fence': (51, 51), 'vegetation': (70, 70), 'trunk': (71, 71),
    'pole': (80, 80), 'traffic_sign': (81, 81), 'car': (10, 252), 'truck': (18, 258), 'bus': (13, 257),
    'person': (30, 254), 'bicyclist': (31, 253), 'bicycle': (11, 11), 'traffic_cone': (99, 99),
    'barrier': (51, 51)}
_THINGS = ('car', 'truck', 'bus', 'person', 'bicyclist', 'bicycle')


def raw_label_tables() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per generator class (index in ``SEMANTIC_CLASSES``): raw id, raw id when moving, thing flag (arrays)."""
    static = np.array([_RAW_OF_CLASS[c][0] for c in SEMANTIC_CLASSES], dtype=np.uint32)
    moving = np.array([_RAW_OF_CLASS[c][1] for c in SEMANTIC_CLASSES], dtype=np.uint32)
    thing = np.array([c in _THINGS for c in SEMANTIC_CLASSES])
    return static, moving, thing


def encode_labels(semantic: np.ndarray, instance_ids: np.ndarray, scene: StreetScene) -> np.ndarray:
    """(N,) uint32 SemanticKITTI labels from generator classes (N,) and instance ids (N,) of one scan."""
    static, moving, thing = raw_label_tables()
    speed = np.zeros(scene.num_instances)
    speed[FIRST_OBJECT_ID:] = np.linalg.norm(scene.obj_vel, axis=1)
    mov = speed[instance_ids] > MOVING_SPEED
    raw = np.where(mov, moving[semantic], static[semantic])
    inst = np.where(thing[semantic], instance_ids, 0).astype(np.uint32)
    return (raw | (inst << 16)).astype(np.uint32)


def calib_text(K: np.ndarray) -> str:
    """SemanticKITTI ``calib.txt`` (P0-P3 of the rectified cameras with intrinsics K, Tr = velodyne -> camera 0)."""
    lines = [ln for ln in kitti_calib_text(K).splitlines() if ln.split(':')[0] in ('P0', 'P1', 'P2', 'P3')]
    lines.append('Tr: ' + ' '.join(f'{float(v):.12e}' for v in KITTI_VELO_TO_CAM.ravel()))
    return '\n'.join(lines) + '\n'


def _fmt_row(m: np.ndarray) -> str:
    return ' '.join(f'{float(v):.12e}' for v in np.asarray(m)[:3].ravel())


@dataclass
class _Config:
    out_dir: str
    seed: int
    frames: int
    image_size: Tuple[int, int]
    num_azimuths: int
    extras: bool
    keep_gt: bool


def _sequence(cfg: _Config, seq: int) -> Dict[str, dict]:
    """Simulate sequence ``seq`` (its scene depends on (seed, seq) only) and write its files."""
    import cv2
    rng = np.random.default_rng([cfg.seed, seq, 13])
    lidar, cam, K = kitti_rig(cfg.image_size, cfg.num_azimuths)
    n = cfg.frames
    scene = generate_street_scene(rng, -lidar.period, (n - 1) * FRAME_INTERVAL + lidar.period, extras=cfg.extras)
    base = osp.join(cfg.out_dir, 'sequences', f'{seq:02d}')
    write_file(osp.join(base, 'calib.txt'), calib_text(K).encode())
    # camera 0 (rectified) in the velodyne frame: x_cam0 = Tr x_velo
    Tr = np.eye(4)
    Tr[:3] = KITTI_VELO_TO_CAM
    velo_in_ego = np.eye(4)
    velo_in_ego[:3, 3] = KITTI_VELO_IN_EGO
    cam0_in_ego = velo_in_ego @ np.linalg.inv(Tr)
    poses, times, gts = [], [], {}
    first = None
    for k in range(n):
        t = k * FRAME_INTERVAL
        frame = scene.scan_lidar(lidar, t + lidar.period / 2, t, np.random.default_rng([cfg.seed, seq, k, 13]),
                                 semantic=True)
        pts = frame.points[:, :4].copy()
        pts[:, 3] = np.round(pts[:, 3] / 255.0, 2)
        labels = encode_labels(frame.semantic, frame.instance_ids, scene)
        cf = scene.render_camera(cam, t)
        png = cv2.imencode('.png', np.ascontiguousarray(cf.image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 3])[1]
        fid = f'{k:06d}'
        write_file(osp.join(base, 'velodyne', f'{fid}.bin'), pts.astype('<f4').tobytes())
        write_file(osp.join(base, 'labels', f'{fid}.label'), labels.astype('<u4').tobytes())
        write_file(osp.join(base, 'image_2', f'{fid}.png'), png.tobytes())
        R, T = scene.ego_pose(t)
        ego = np.eye(4)
        ego[:3, :3], ego[:3, 3] = R, T
        world_cam0 = ego @ cam0_in_ego
        if first is None:
            first = np.linalg.inv(world_cam0)
        poses.append(_fmt_row(first @ world_cam0))
        times.append(f'{t:.6e}')
        if cfg.keep_gt:
            gts[f'{seq:02d}/{fid}'] = dict(semantic=frame.semantic, instance_ids=frame.instance_ids,
                                          instance_mask=cf.instance_mask, depth=cf.depth)
    write_file(osp.join(base, 'poses.txt'), ('\n'.join(poses) + '\n').encode())
    write_file(osp.join(base, 'times.txt'), ('\n'.join(times) + '\n').encode())
    return gts


def generate_semantickitti_root(out_dir: str, sequences: Optional[Dict[str, Sequence[int]]] = None,
                                frames_per_sequence: int = 8, seed: int = 0,
                                image_size: Tuple[int, int] = (621, 188), num_azimuths: int = 512,
                                extras: bool = True, keep_gt: bool = False, workers: int = 1) -> dict:
    """Generate a synthetic SemanticKITTI root (see the module doc for the layout).

    Args:
        out_dir: data root to write.
        sequences: split -> sequence numbers (default ``DEFAULT_SEQUENCES``: train 0, 1, 2 / val 8 / test 11, which
            the stock converter's hard-coded splits hold); splits must not share a sequence.
        frames_per_sequence: frames per sequence, ``FRAME_INTERVAL`` s apart.
        seed: random seed; sequence ``s`` depends only on (seed, s).
        image_size: (W, H) of image_2; KITTI's 1242 x 375 intrinsics are scaled to it.
        num_azimuths: velodyne columns per revolution (64 beams; 512 columns give ~30k points per scan).
        extras: add trees, hedges, fences and traffic signs to the streets.
        keep_gt: return ``gt['NN/NNNNNN']`` = dict(semantic (N,) generator class per point, instance_ids (N,),
            instance_mask (H, W) and depth (H, W) of image_2).
        workers: processes (output is identical for any value).

    Returns:
        dict(root, sequences (split -> list of numbers), frames (split -> list of 'NN/NNNNNN'), gt with keep_gt).
    """
    seqs = {k: [int(s) for s in v] for k, v in (sequences or DEFAULT_SEQUENCES).items()}
    check_sequences(seqs)
    if frames_per_sequence < 1:
        raise ValueError('frames_per_sequence must be >= 1')
    out_dir = osp.abspath(out_dir)
    cfg = _Config(out_dir, seed, frames_per_sequence, tuple(image_size), num_azimuths, extras, keep_gt)
    jobs = sorted(s for v in seqs.values() for s in v)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as ex:
            results = list(ex.map(_sequence, [cfg] * len(jobs), jobs))
    else:
        results = [_sequence(cfg, s) for s in jobs]
    write_file(osp.join(out_dir, 'splits.json'), (json.dumps(seqs, indent=1, sort_keys=True) + '\n').encode())
    out = dict(root=out_dir, sequences=seqs,
               frames={k: [f'{s:02d}/{i:06d}' for s in v for i in range(frames_per_sequence)]
                       for k, v in seqs.items()})
    if keep_gt:
        out['gt'] = {k: v for r in results for k, v in r.items()}
    return out
