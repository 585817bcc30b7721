"""nuScenes-lidarseg for LiDAR segmentation protocols (mmdet3d 1.4 ships no nuScenes segmentation dataset).

* :func:`add_lidarseg_to_infos` adds ``pts_semantic_mask_path`` (the keyframe's ``lidarseg/<version>/<token>_
  lidarseg.bin``, one uint8 category ``index`` per point) to mmdet3d's nuScenes v2 info pkls
  (``create_data.py nuscenes``), looked up through the root's ``lidarseg.json`` and ``sample_data.json``.
* :class:`NuScenesSegDataset` reads those infos with the 16-class nuScenes-lidarseg mapping (``LIDARSEG_16``, the
  benchmark's: barrier, bicycle, bus, car, construction vehicle, motorcycle, pedestrian, traffic cone, trailer,
  truck, driveable surface, other flat, sidewalk, terrain, manmade, vegetation; ignored: noise, animal, personal
  mobility, stroller, wheelchair, debris, pushable, bicycle rack, ambulance, police vehicle, static other, ego).

A stock-style segmentation pipeline (the loading part of mmdet3d's SemanticKITTI pipeline, with nuScenes' 5-float
points and uint8 masks)::

    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=4),
    dict(type='LoadAnnotations3D', with_bbox_3d=False, with_label_3d=False, with_seg_3d=True,
         seg_3d_dtype='np.uint8'),
    dict(type='CheckPointSegMask', raw_ids=list(range(32))),
    dict(type='PointSegClassMapping'),
    dict(type='Pack3DDetInputs', keys=['points', 'pts_semantic_mask'])
"""
import json
import logging
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from mmdet3d.datasets import Seg3DDataset
from mmdet3d.registry import DATASETS
from mmengine.logging import print_log

from .robust import RobustDatasetMixin, check_on_error

#: nuScenes category ``index`` (lidarseg release) -> name.
NUSCENES_LIDARSEG_CATEGORIES = (
    'noise', 'animal', 'human.pedestrian.adult', 'human.pedestrian.child', 'human.pedestrian.construction_worker',
    'human.pedestrian.personal_mobility', 'human.pedestrian.police_officer', 'human.pedestrian.stroller',
    'human.pedestrian.wheelchair', 'movable_object.barrier', 'movable_object.debris',
    'movable_object.pushable_pullable', 'movable_object.trafficcone', 'static_object.bicycle_rack',
    'vehicle.bicycle', 'vehicle.bus.bendy', 'vehicle.bus.rigid', 'vehicle.car', 'vehicle.construction',
    'vehicle.emergency.ambulance', 'vehicle.emergency.police', 'vehicle.motorcycle', 'vehicle.trailer',
    'vehicle.truck', 'flat.driveable_surface', 'flat.other', 'flat.sidewalk', 'flat.terrain', 'static.manmade',
    'static.other', 'static.vegetation', 'vehicle.ego')
#: the 16 classes of the nuScenes-lidarseg benchmark; learning id 16 is ignored.
LIDARSEG_16_CLASSES = ('barrier', 'bicycle', 'bus', 'car', 'construction_vehicle', 'motorcycle', 'pedestrian',
                       'traffic_cone', 'trailer', 'truck', 'driveable_surface', 'other_flat', 'sidewalk', 'terrain',
                       'manmade', 'vegetation')
IGNORE_INDEX = 16
_CATEGORY_TO_16 = {
    'movable_object.barrier': 'barrier', 'vehicle.bicycle': 'bicycle', 'vehicle.bus.bendy': 'bus',
    'vehicle.bus.rigid': 'bus', 'vehicle.car': 'car', 'vehicle.construction': 'construction_vehicle',
    'vehicle.motorcycle': 'motorcycle', 'human.pedestrian.adult': 'pedestrian', 'human.pedestrian.child': 'pedestrian',
    'human.pedestrian.construction_worker': 'pedestrian', 'human.pedestrian.police_officer': 'pedestrian',
    'movable_object.trafficcone': 'traffic_cone', 'vehicle.trailer': 'trailer', 'vehicle.truck': 'truck',
    'flat.driveable_surface': 'driveable_surface', 'flat.other': 'other_flat', 'flat.sidewalk': 'sidewalk',
    'flat.terrain': 'terrain', 'static.manmade': 'manmade', 'static.vegetation': 'vegetation'}
#: raw category index -> learning id (0..15, 16 = ignore).
LIDARSEG_16 = {i: (LIDARSEG_16_CLASSES.index(_CATEGORY_TO_16[c]) if c in _CATEGORY_TO_16 else IGNORE_INDEX)
               for i, c in enumerate(NUSCENES_LIDARSEG_CATEGORIES)}
_PALETTE = [[255, 120, 50], [255, 192, 203], [255, 255, 0], [0, 150, 245], [0, 255, 255], [255, 127, 0],
            [255, 0, 0], [255, 240, 150], [135, 60, 0], [160, 32, 240], [255, 0, 255], [139, 137, 137],
            [75, 0, 75], [150, 240, 80], [230, 230, 250], [0, 175, 0]]


class LidarsegError(ValueError):
    """A nuScenes-lidarseg table or file that cannot be used (the message names it)."""


def _load_table(root: str, version: str, name: str) -> list:
    path = osp.join(root, version, f'{name}.json')
    if not osp.isfile(path):
        raise LidarsegError(f'nuScenes table {path} is missing')
    with open(path) as f:
        return json.load(f)


def add_lidarseg_to_infos(root: str, info_path: str, version: str = 'v1.0-mini', out_path: Optional[str] = None,
                          on_error: str = 'raise') -> dict:
    """Add ``pts_semantic_mask_path`` (relative to ``root``) and ``lidarseg_token`` to each sample of a v2 info pkl.

    The LiDAR file of an info entry (``lidar_points.lidar_path``, a basename in mmdet3d's v2 infos) is looked up in
    ``sample_data.json`` and its ``lidarseg.json`` record gives the label file, which must hold one uint8 per point
    of the LiDAR file (5 float32 per point).

    Args:
        root: nuScenes root. info_path: v2 info pkl. out_path: where to write (default: overwrite ``info_path``).
        on_error: ``'raise'``: a sample without lidarseg record, a missing label file or one whose length differs
            from the scan's point count raises :class:`LidarsegError` naming the sample and file; ``'skip'``: such
            samples are dropped from the pkl, logged and counted.

    Returns:
        dict(path, kept, skipped, problems).
    """
    import mmengine
    check_on_error(on_error)
    sd = _load_table(root, version, 'sample_data')
    seg = _load_table(root, version, 'lidarseg')
    by_file = {osp.basename(r['filename']): r for r in sd if r.get('is_key_frame')}
    seg_of = {r['sample_data_token']: r for r in seg}
    data = mmengine.load(info_path)
    kept, problems = [], []
    for info in data['data_list']:
        name = osp.basename(info['lidar_points']['lidar_path'])
        rec = by_file.get(name)
        where = f'sample {info.get("token", "?")} ({name})'
        try:
            if rec is None:
                raise LidarsegError(f'{where}: LiDAR file not in {version}/sample_data.json as a keyframe')
            srec = seg_of.get(rec['token'])
            if srec is None:
                raise LidarsegError(f'{where}: no lidarseg record for sample_data {rec["token"]} in '
                                    f'{osp.join(root, version, "lidarseg.json")}')
            label = osp.join(root, srec['filename'])
            scan = osp.join(root, rec['filename'])
            if not osp.isfile(label):
                raise LidarsegError(f'{where}: label file {label} is missing')
            if osp.isfile(scan) and osp.getsize(label) != osp.getsize(scan) // 20:
                raise LidarsegError(f'{where}: label file {label} has {osp.getsize(label)} labels but its scan '
                                    f'{scan} has {osp.getsize(scan) // 20} points')
        except LidarsegError as e:
            if on_error == 'raise':
                raise
            problems.append(str(e))
            print_log(f'add_lidarseg_to_infos: skipping {e}', logger='current', level=logging.WARNING)
            continue
        info['pts_semantic_mask_path'] = srec['filename']
        info['lidarseg_token'] = srec['token']
        kept.append(info)
    data['data_list'] = kept
    data.setdefault('metainfo', {})['lidarseg_skipped'] = len(problems)
    out_path = out_path or info_path
    mmengine.dump(data, out_path)
    return dict(path=out_path, kept=len(kept), skipped=len(problems), problems=problems)


@DATASETS.register_module()
class NuScenesSegDataset(RobustDatasetMixin, Seg3DDataset):
    """nuScenes-lidarseg semantic segmentation (16 classes, ignore index 16) from v2 info pkls that carry
    ``pts_semantic_mask_path`` (see :func:`add_lidarseg_to_infos`).

    Paths: ``lidar_points.lidar_path`` is joined with ``data_prefix['pts']`` (``'samples/LIDAR_TOP'`` for mmdet3d's
    nuScenes infos, whose LiDAR paths are basenames), ``pts_semantic_mask_path`` with
    ``data_prefix['pts_semantic_mask']`` (``''``: relative to ``data_root``). The raw category ``index`` of each point
    is mapped by ``PointSegClassMapping`` through ``metainfo['seg_label_mapping']`` (default ``LIDARSEG_16``); ids
    above ``max_label`` or not in the mapping go to the ignore index, never to a class.

    Args:
        on_error: ``'raise'`` (default; always in ``test_mode``) or ``'skip'`` (skip and count bad samples, see
            :mod:`mmxmodal.datasets.robust`).
        **kwargs: passed to mmdet3d's ``Seg3DDataset`` (``data_root``, ``ann_file``, ``data_prefix``,
            ``pipeline``, ``metainfo``, ``test_mode``, ...).
    """
    METAINFO = {
        'classes': LIDARSEG_16_CLASSES,
        'palette': _PALETTE,
        'seg_valid_class_ids': tuple(range(16)),
        'seg_all_class_ids': tuple(range(16)),
    }

    def __init__(self, data_root: Optional[str] = None, ann_file: str = '', metainfo: Optional[dict] = None,
                 data_prefix: dict = dict(pts='samples/LIDAR_TOP', img='', pts_instance_mask='',
                                          pts_semantic_mask=''),
                 pipeline: List = [], modality: dict = dict(use_lidar=True, use_camera=False),
                 ignore_index: Optional[int] = IGNORE_INDEX, scene_idxs=None, test_mode: bool = False,
                 on_error: str = 'raise', **kwargs) -> None:
        self._init_robust(on_error)
        self.test_mode = test_mode
        metainfo = dict(metainfo or {})
        metainfo.setdefault('classes', LIDARSEG_16_CLASSES)
        if list(metainfo['classes']) == list(LIDARSEG_16_CLASSES):
            metainfo.setdefault('palette', _PALETTE)
        metainfo.setdefault('seg_label_mapping', dict(LIDARSEG_16))
        metainfo.setdefault('max_label', len(NUSCENES_LIDARSEG_CATEGORIES) - 1)
        super().__init__(data_root=data_root, ann_file=ann_file, metainfo=metainfo, data_prefix=data_prefix,
                         pipeline=pipeline, modality=modality, ignore_index=ignore_index, scene_idxs=scene_idxs,
                         test_mode=test_mode, **kwargs)

    def get_seg_label_mapping(self, metainfo: dict) -> np.ndarray:
        """(max_label + 1,) raw category index -> learning id; unlisted ids -> ``ignore_index``."""
        mapping: Dict[int, int] = metainfo['seg_label_mapping']
        lut = np.full(int(metainfo['max_label']) + 1, self.ignore_index, dtype=np.int64)
        for raw, learn in mapping.items():
            lut[int(raw)] = int(learn)
        return lut

    def get_data_info(self, idx: int) -> dict:
        """mmdet3d's data info plus a top-level ``lidar_path`` (so that error messages name the scan)."""
        info = super().get_data_info(idx)
        if 'lidar_path' not in info and isinstance(info.get('lidar_points'), dict):
            info['lidar_path'] = info['lidar_points'].get('lidar_path')
        return info
