"""Synthetic driving scenes written as a nuScenes data root.

Layout written under ``out_dir`` (the ``v1.0-mini`` layout; every file is byte-identical for the same arguments)::

    v1.0-mini/{scene,sample,sample_data,calibrated_sensor,ego_pose,sensor,log,map,category,attribute,instance,
               sample_annotation,visibility}.json
    samples/LIDAR_TOP/<log>__LIDAR_TOP__<timestamp>.pcd.bin   # float32 (N, 5): x y z intensity ring, lidar frame
    samples/CAM_*/<log>__CAM_*__<timestamp>.jpg               # RGB JPEG, keyframes
    sweeps/LIDAR_TOP/<log>__LIDAR_TOP__<timestamp>.pcd.bin    # non-keyframe LiDAR sweeps before each keyframe
    maps/<token>.png                                          # one blank semantic-prior map per location
    v1.0-mini/lidarseg.json + lidarseg/v1.0-mini/<token>_lidarseg.bin   # (lidarseg=True) uint8 category index
                                                              # per point of each keyframe LiDAR file

Timing follows nuScenes: keyframes (samples) at 2 Hz, LiDAR revolutions of 50 ms (20 Hz), ``sweeps`` non-key
revolutions immediately before each keyframe, and every camera triggered when the spinning LiDAR beam crosses the
centre of its field of view (so ``CAM_BACK`` is ~50 ms before the keyframe). Timestamps are integers in
microseconds, LiDAR points are motion-compensated into the sensor frame at the sweep's timestamp.

nuScenes-lidarseg labels (``lidarseg=True``, the default): one ``lidarseg`` record per keyframe LiDAR
``sample_data`` (its token is the sample_data token, as in the release), a ``.bin`` of one uint8 per point holding
the ``index`` of the category the point's ray hit (``LIDARSEG_CATEGORY``: driveable surface for road, markings and
parking, sidewalk, terrain, manmade for buildings / fences / poles / signs, vegetation, and the object classes).
They are read by nuscenes-devkit's lidarseg API; every other file is the same as without them.

Scenes carry the real nuScenes split names (``v1.0-mini``: 8 ``mini_train`` + 2 ``mini_val`` names; for more
scenes use ``version='v1.0-trainval'``), so mmdet3d's converter splits them into train and val info files.

Usage::

    python tools/create_synthetic_data.py nuscenes --out-dir data/synthetic-nuscenes --num-scenes 10 \
        --samples-per-scene 4 --sweeps 3 --seed 0
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from mmxmodal.datasets.converters.nuscenes import TABLES
from mmxmodal.datasets.nuscenes_seg import NUSCENES_LIDARSEG_CATEGORIES

from .files import write_file
from .scene import (CAMERA_ORDER, FIRST_OBJECT_ID, SEMANTIC_CLASSES, CameraFrame, StreetScene,
                    generate_street_scene, nuscenes_rig, yaw_quaternion)

SWEEP_PERIOD_US = 50_000  # 20 Hz LiDAR
SAMPLE_PERIOD_US = 500_000  # 2 Hz keyframes
BASE_TIMESTAMP_US = 1_532_402_900_000_000  # 2018-07-24, like v1.0-mini
ANNOTATION_RANGE = 60.0  # m, objects farther from the ego are not annotated
LOCATIONS = (('singapore-onenorth', 'n015', '+0800'), ('boston-seaport', 'n008', '-0400'),
             ('singapore-queenstown', 'n015', '+0800'), ('singapore-hollandvillage', 'n015', '+0800'))

# nuScenes taxonomy (``index`` as in the lidarseg release of v1.0-mini): the plugin's table
CATEGORIES = NUSCENES_LIDARSEG_CATEGORIES
ATTRIBUTES = ('vehicle.moving', 'vehicle.stopped', 'vehicle.parked', 'cycle.with_rider', 'cycle.without_rider',
              'pedestrian.sitting_lying_down', 'pedestrian.standing', 'pedestrian.moving')
VISIBILITY = (('1', 'v0-40', 'visibility of whole object is between 0 and 40%'),
              ('2', 'v40-60', 'visibility of whole object is between 40 and 60%'),
              ('3', 'v60-80', 'visibility of whole object is between 60 and 80%'),
              ('4', 'v80-100', 'visibility of whole object is between 80 and 100%'))
CHANNELS = ('LIDAR_TOP',) + CAMERA_ORDER
# generator class (scene.SEMANTIC_CLASSES) -> nuScenes lidarseg category; riders are part of vehicle.bicycle, as in
# the nuScenes boxes
LIDARSEG_CATEGORY = {
    'unlabeled': 'noise', 'road': 'flat.driveable_surface', 'lane_marking': 'flat.driveable_surface',
    'parking': 'flat.driveable_surface', 'sidewalk': 'flat.sidewalk', 'terrain': 'flat.terrain',
    'building': 'static.manmade', 'fence': 'static.manmade', 'vegetation': 'static.vegetation',
    'trunk': 'static.vegetation', 'pole': 'static.manmade', 'traffic_sign': 'static.manmade', 'car': 'vehicle.car',
    'truck': 'vehicle.truck', 'bus': 'vehicle.bus.rigid', 'person': 'human.pedestrian.adult',
    'bicyclist': 'vehicle.bicycle', 'bicycle': 'vehicle.bicycle', 'traffic_cone': 'movable_object.trafficcone',
    'barrier': 'movable_object.barrier'}


def lidarseg_lut() -> np.ndarray:
    """(len(SEMANTIC_CLASSES),) uint8: generator class -> nuScenes category ``index`` (position in CATEGORIES)."""
    return np.array([CATEGORIES.index(LIDARSEG_CATEGORY[c]) for c in SEMANTIC_CLASSES], dtype=np.uint8)


def token(*parts) -> str:
    """Deterministic 32-hex-digit token (nuScenes style) from ``parts``."""
    return hashlib.md5('/'.join(map(str, parts)).encode()).hexdigest()


def scene_names(num_scenes: int, version: str) -> List[str]:
    """Real nuScenes scene names for ``num_scenes`` generated scenes: train names first, then val names.

    ``v1.0-mini``: at most 8 ``mini_train`` + 2 ``mini_val``; ``v1.0-trainval``: ``train`` + ``val``
    (about 20% / 15% val, at least one val scene when there are two or more scenes).
    """
    from nuscenes.utils import splits
    if version == 'v1.0-mini':
        train, val, frac = splits.mini_train, splits.mini_val, 0.2
    elif version == 'v1.0-trainval':
        train, val, frac = splits.train, splits.val, 0.15
    else:
        raise ValueError(f'unsupported version {version!r}: use v1.0-mini or v1.0-trainval')
    n_val = 0 if num_scenes < 2 else max(1, int(round(num_scenes * frac)))
    n_train = num_scenes - n_val
    if n_train > len(train) or n_val > len(val):
        raise ValueError(f'{version} has {len(train)} train and {len(val)} val scenes; {num_scenes} scenes need '
                         f'{n_train} + {n_val}: use version="v1.0-trainval" for more scenes')
    return list(train[:n_train]) + list(val[:n_val])


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """RGB uint8 (H, W, 3) -> JPEG bytes (deterministic for a given OpenCV build)."""
    import cv2
    ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return buf.tobytes()


def _visibility_token(visible: int, silhouette: int) -> str:
    frac = visible / silhouette if silhouette > 0 else 0.0
    return '1' if frac < 0.4 else '2' if frac < 0.6 else '3' if frac < 0.8 else '4'


@dataclass
class _Config:
    out_dir: str
    seed: int
    samples_per_scene: int
    sweeps: int
    image_size: Tuple[int, int]
    num_azimuths: int
    jpeg_quality: int
    keep_gt: bool
    lidarseg: bool = True
    version: str = 'v1.0-mini'
    extras: bool = False


def _scene_records(cfg: _Config, scene_idx: int, name: str) -> Tuple[Dict[str, list], Dict[str, dict]]:
    """Simulate one scene, write its sensor files and return its table records (and ground truth if kept)."""
    seed = cfg.seed
    rng = np.random.default_rng([seed, scene_idx])
    lidar, cams = nuscenes_rig(cfg.image_size, cfg.num_azimuths)
    n, S = cfg.samples_per_scene, cfg.sweeps
    t_min = -(S * SWEEP_PERIOD_US + SWEEP_PERIOD_US) * 1e-6
    t_max = (n - 1) * SAMPLE_PERIOD_US * 1e-6
    scene: StreetScene = generate_street_scene(rng, t_min, t_max, extras=cfg.extras)
    location, vehicle, tz = LOCATIONS[scene_idx % len(LOCATIONS)]
    day = 1 + scene_idx % 28
    logfile = f'{vehicle}-2018-{7 + (scene_idx // 28) % 5:02d}-{day:02d}-{10 + scene_idx % 8:02d}-' \
              f'{(7 * scene_idx) % 60:02d}-{(13 * scene_idx) % 60:02d}{tz}'
    t0_us = BASE_TIMESTAMP_US + scene_idx * 3_600_000_000
    rec: Dict[str, list] = {k: [] for k in TABLES + ('lidarseg',)}
    gt: Dict[str, dict] = {}
    lut = lidarseg_lut()

    log_tok = token(seed, 'log', scene_idx)
    rec['log'].append(dict(token=log_tok, logfile=logfile, vehicle=vehicle,
                           date_captured=logfile[5:15], location=location))
    calib = {}
    for ch in CHANNELS:
        calib[ch] = token(seed, 'calibrated_sensor', scene_idx, ch)
        if ch == 'LIDAR_TOP':
            R, t, K = lidar.rotation, lidar.translation, []
        else:
            cam = cams[CAMERA_ORDER.index(ch)]
            R, t, K = cam.rotation, cam.translation, cam.intrinsic.tolist()
        rec['calibrated_sensor'].append(dict(token=calib[ch], sensor_token=token('sensor', ch),
                                             translation=[float(v) for v in t],
                                             rotation=_matrix_quaternion(R), camera_intrinsic=K))

    sample_toks = [token(seed, 'sample', scene_idx, k) for k in range(n)]
    scene_tok = token(seed, 'scene', scene_idx)
    rec['scene'].append(dict(token=scene_tok, log_token=log_tok, nbr_samples=n, first_sample_token=sample_toks[0],
                             last_sample_token=sample_toks[-1], name=name,
                             description=f'Synthetic street, ego {scene.ego_speed:.1f} m/s, seed {seed}'))
    chains: Dict[str, list] = {ch: [] for ch in CHANNELS}
    ann_chain: Dict[int, list] = {}
    num_inst = scene.num_instances

    def add_sample_data(ch, sd_tok, sample_tok, ts, t_sec, key, filename, width, height):
        R, T = scene.ego_pose(t_sec)
        rec['ego_pose'].append(dict(token=sd_tok, timestamp=ts, rotation=_matrix_quaternion(R),
                                    translation=[float(v) for v in T]))
        rec['sample_data'].append(dict(token=sd_tok, sample_token=sample_tok, ego_pose_token=sd_tok,
                                       calibrated_sensor_token=calib[ch], timestamp=ts,
                                       fileformat='pcd' if ch == 'LIDAR_TOP' else 'jpg', is_key_frame=key,
                                       height=height, width=width, filename=filename, prev='', next=''))
        chains[ch].append(rec['sample_data'][-1])

    for k in range(n):
        ts_key = t0_us + k * SAMPLE_PERIOD_US
        for m in range(S, -1, -1):  # sweeps first, then the keyframe
            ts = ts_key - m * SWEEP_PERIOD_US
            t_sec = (ts - t0_us) * 1e-6
            key = m == 0
            frame = scene.scan_lidar(lidar, t_sec, t_sec, np.random.default_rng([seed, scene_idx, k, m]),
                                     semantic=key and cfg.lidarseg)
            folder = 'samples' if key else 'sweeps'
            filename = f'{folder}/LIDAR_TOP/{logfile}__LIDAR_TOP__{ts}.pcd.bin'
            write_file(osp.join(cfg.out_dir, filename), frame.points.astype('<f4').tobytes())
            sd_tok = token(seed, 'sample_data', scene_idx, 'LIDAR_TOP', ts)
            add_sample_data('LIDAR_TOP', sd_tok, sample_toks[k], ts, t_sec, key, filename, 0, 0)
            if frame.semantic is not None:
                seg_file = f'lidarseg/{cfg.version}/{sd_tok}_lidarseg.bin'
                write_file(osp.join(cfg.out_dir, seg_file), lut[frame.semantic].tobytes())
                rec['lidarseg'].append(dict(token=sd_tok, sample_data_token=sd_tok, filename=seg_file))
            if cfg.keep_gt:
                gt[sd_tok] = dict(instance_ids=frame.instance_ids)
                if frame.semantic is not None:
                    gt[sd_tok]['semantic'] = frame.semantic
        lidar_ids = frame.instance_ids
        t_key = (ts_key - t0_us) * 1e-6
        visible = np.zeros(num_inst, dtype=np.int64)
        silhouette = np.zeros(num_inst, dtype=np.int64)
        for cam in cams:
            t_cam = lidar.trigger_time(cam.yaw, t_key)
            ts = t0_us + int(round(t_cam * 1e6))
            cf: CameraFrame = scene.render_camera(cam, (ts - t0_us) * 1e-6)
            filename = f'samples/{cam.channel}/{logfile}__{cam.channel}__{ts}.jpg'
            write_file(osp.join(cfg.out_dir, filename), encode_jpeg(cf.image, cfg.jpeg_quality))
            sd_tok = token(seed, 'sample_data', scene_idx, cam.channel, ts)
            add_sample_data(cam.channel, sd_tok, sample_toks[k], ts, (ts - t0_us) * 1e-6, True, filename,
                            cam.width, cam.height)
            visible += cf.visible_pixels(num_inst)
            for inst, s in cf.silhouettes.items():
                silhouette[inst] += s[0]
            if cfg.keep_gt:
                gt[sd_tok] = dict(instance_mask=cf.instance_mask, depth=cf.depth)
        # annotations at the keyframe (LiDAR) time
        num_pts = np.bincount(lidar_ids, minlength=num_inst)
        _, ego_t = scene.ego_pose(t_key)
        for obj in scene.objects:
            if obj.category is None:
                continue
            centre = obj.center_at(t_key)
            i = obj.inst_id
            if np.hypot(*(centre[:2] - ego_t[:2])) > ANNOTATION_RANGE or (num_pts[i] == 0 and visible[i] == 0):
                continue
            ann = dict(token=token(seed, 'sample_annotation', scene_idx, k, i), sample_token=sample_toks[k],
                       instance_token=token(seed, 'instance', scene_idx, i),
                       visibility_token=_visibility_token(visible[i], silhouette[i]),
                       attribute_tokens=[token('attribute', obj.attribute)] if obj.attribute else [],
                       translation=[float(v) for v in centre],
                       size=[float(obj.size[1]), float(obj.size[0]), float(obj.size[2])],  # w, l, h
                       rotation=yaw_quaternion(obj.yaw), prev='', next='', num_lidar_pts=int(num_pts[i]),
                       num_radar_pts=0)
            rec['sample_annotation'].append(ann)
            ann_chain.setdefault(i, []).append(ann)
        rec['sample'].append(dict(token=sample_toks[k], timestamp=ts_key, prev=sample_toks[k - 1] if k else '',
                                  next=sample_toks[k + 1] if k + 1 < n else '', scene_token=scene_tok))
    for recs in list(chains.values()) + list(ann_chain.values()):
        for a, b in zip(recs[:-1], recs[1:]):
            a['next'], b['prev'] = b['token'], a['token']
    for i, anns in ann_chain.items():
        obj = scene.objects[i - FIRST_OBJECT_ID]
        if cfg.keep_gt:
            gt.setdefault('instances', {})[anns[0]['instance_token']] = i
        rec['instance'].append(dict(token=anns[0]['instance_token'], category_token=token('category', obj.category),
                                    nbr_annotations=len(anns), first_annotation_token=anns[0]['token'],
                                    last_annotation_token=anns[-1]['token']))
    return rec, gt


def _matrix_quaternion(R: np.ndarray) -> List[float]:
    """Quaternion [w, x, y, z] (w >= 0) of a rotation matrix (3, 3)."""
    from pyquaternion import Quaternion
    q = Quaternion(matrix=np.asarray(R, dtype=np.float64), rtol=1e-6, atol=1e-6).normalised
    q = -q if q.w < 0 else q
    return [float(v) for v in q.elements]


def _static_tables(seed: int, locations: Dict[str, List[str]]) -> Dict[str, list]:
    tabs: Dict[str, list] = {}
    tabs['category'] = [dict(token=token('category', c), name=c, description=f'nuScenes category {c}', index=i)
                        for i, c in enumerate(CATEGORIES)]
    tabs['attribute'] = [dict(token=token('attribute', a), name=a, description=f'nuScenes attribute {a}')
                         for a in ATTRIBUTES]
    tabs['visibility'] = [dict(token=t, level=lvl, description=d) for t, lvl, d in VISIBILITY]
    tabs['sensor'] = [dict(token=token('sensor', ch), channel=ch, modality='lidar' if ch == 'LIDAR_TOP' else
                           'camera') for ch in CHANNELS]
    tabs['map'] = [dict(token=token(seed, 'map', loc), log_tokens=logs, category='semantic_prior',
                        filename=f'maps/{token(seed, "map", loc)}.png') for loc, logs in locations.items()]
    return tabs


def generate_nuscenes_root(out_dir: str, num_scenes: int = 10, samples_per_scene: int = 4, sweeps: int = 3,
                           seed: int = 0, image_size: Tuple[int, int] = (640, 360), version: str = 'v1.0-mini',
                           num_azimuths: int = 1080, jpeg_quality: int = 90, keep_gt: bool = False,
                           workers: int = 1, lidarseg: bool = True, extras: bool = False) -> dict:
    """Generate a synthetic nuScenes root.

    Args:
        out_dir: data root to write (created; existing files with the same names are overwritten).
        num_scenes: scenes (at most 10 for ``v1.0-mini``).
        samples_per_scene: keyframes per scene (2 Hz).
        sweeps: non-keyframe LiDAR sweeps (20 Hz) before each keyframe.
        seed: random seed; scene ``i`` depends only on (seed, i).
        image_size: camera images (W, H); the nuScenes 1600 x 900 intrinsics are scaled to it.
        version: ``'v1.0-mini'`` or ``'v1.0-trainval'`` (table folder and split names).
        num_azimuths: LiDAR columns per revolution (1080: 1/3 deg, like the HDL-32E at 20 Hz).
        jpeg_quality: OpenCV JPEG quality.
        keep_gt: also return ground truth kept out of the tables: ``gt[sample_data_token]`` is
            ``dict(instance_ids=(N,) int32)`` for LiDAR files (aligned with the points in the file; keyframes with
            lidarseg also ``semantic`` (N,) uint8, the generator class of ``scene.SEMANTIC_CLASSES``) and
            ``dict(instance_mask=(H, W) int32, depth=(H, W) float32)`` for keyframe images; and
            ``instances[instance_token]`` is the instance id of each annotated object.
        workers: processes (output is identical for any value).
        lidarseg: write nuScenes-lidarseg labels of the keyframe scans (``lidarseg.json`` + ``lidarseg/``).
        extras: add trees, hedges, fences, traffic signs and grass strips (``static.vegetation``, ``flat.terrain``
            and more ``static.manmade`` points; changes the scenes, so off by default).

    Returns:
        dict(root, version, scenes (names), num_samples, num_sample_data, num_lidarseg, gt and instances (with
        ``keep_gt``)).
    """
    if samples_per_scene < 1 or num_scenes < 1 or sweeps < 0:
        raise ValueError('num_scenes and samples_per_scene must be >= 1 and sweeps >= 0')
    names = scene_names(num_scenes, version)
    out_dir = osp.abspath(out_dir)
    cfg = _Config(out_dir, seed, samples_per_scene, sweeps, tuple(image_size), num_azimuths, jpeg_quality, keep_gt,
                  lidarseg, version, extras)
    jobs = list(range(num_scenes))
    if workers > 1 and num_scenes > 1:
        with ProcessPoolExecutor(min(workers, num_scenes)) as ex:
            results = list(ex.map(_scene_records, [cfg] * num_scenes, jobs, names))
    else:
        results = [_scene_records(cfg, i, names[i]) for i in jobs]
    tables: Dict[str, list] = {k: [] for k in TABLES + ('lidarseg',)}
    gt: Dict[str, dict] = {}
    locations: Dict[str, List[str]] = {}
    instances: Dict[str, int] = {}
    for rec, g in results:
        for k, v in rec.items():
            tables[k].extend(v)
        instances.update(g.pop('instances', {}))
        gt.update(g)
        locations.setdefault(rec['log'][0]['location'], []).append(rec['log'][0]['token'])
    tables.update(_static_tables(seed, locations))
    import cv2
    blank = cv2.imencode('.png', np.zeros((64, 64), dtype=np.uint8))[1].tobytes()
    for m in tables['map']:
        write_file(osp.join(out_dir, m['filename']), blank)
    os.makedirs(osp.join(out_dir, version), exist_ok=True)
    for name in TABLES + (('lidarseg',) if lidarseg else ()):
        with open(osp.join(out_dir, version, f'{name}.json'), 'w') as f:
            json.dump(tables[name], f, indent=0, sort_keys=True)
    out = dict(root=out_dir, version=version, scenes=names, num_samples=len(tables['sample']),
               num_sample_data=len(tables['sample_data']), num_lidarseg=len(tables['lidarseg']))
    if keep_gt:
        out['gt'], out['instances'] = gt, instances
    return out
