"""LiDAR scan + every camera of a sample from mmdet3d v2 info pkls (nuScenes, KITTI), without labels.

The info pkls are the ones of mmdet3d's ``tools/create_data.py`` (``nuscenes_infos_train.pkl``,
``kitti_infos_train.pkl``): ``data_list[i]`` has ``lidar_points`` {lidar_path, num_pts_feats, lidar2ego},
``lidar_sweeps`` (nuScenes), and ``images`` {CAM_NAME: {img_path, cam2img, lidar2cam, ...}}. ``instances`` and
all other annotation fields are ignored, so the same pkls serve pretraining and the downstream detectors.
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmdet3d.datasets import Det3DDataset
from mmdet3d.registry import DATASETS

from .robust import RobustDatasetMixin, check_calibration, check_camera_calibration


class InfoKeyError(KeyError):
    """A ``KeyError`` whose message prints as written (names the sample token and the missing key)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


_MATRIX_SHAPES = dict(cam2img=((3, 3), (3, 4), (4, 4)), lidar2cam=((4, 4), (3, 4)))


def _as_matrix(value, key: str, token, cam: str) -> np.ndarray:
    """``value`` as float64 array with one of the allowed shapes of ``key`` (error names sample and key)."""
    try:
        mat = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f'sample {token}: images[{cam!r}][{key!r}] is not a numeric matrix') from err
    if mat.shape not in _MATRIX_SHAPES[key]:
        raise ValueError(f'sample {token}: images[{cam!r}][{key!r}] has shape {mat.shape}, expected one of '
                         f'{list(_MATRIX_SHAPES[key])}')
    if not np.isfinite(mat).all():
        raise ValueError(f'sample {token}: images[{cam!r}][{key!r}] has non-finite entries')
    out = np.eye(4)
    out[:mat.shape[0], :mat.shape[1]] = mat
    check_calibration(out, key, f'sample {token}: images[{cam!r}]')
    return out


@DATASETS.register_module()
class PairedSceneDataset(RobustDatasetMixin, Det3DDataset):
    """LiDAR sweep(s) and all camera images of each sample, with per-camera ``cam2img`` / ``lidar2cam`` /
    ``lidar2img`` (4x4, LiDAR frame -> original pixels), for label-free camera-LiDAR pretraining.

    Use it with the info pkls and ``data_prefix`` of the stock mmdet3d configs, e.g. nuScenes::

        dict(type='PairedSceneDataset', data_root='data/nuscenes/', ann_file='nuscenes_infos_train.pkl',
             data_prefix=dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP', CAM_FRONT='samples/CAM_FRONT',
                              ...), pipeline=[...])

    and KITTI (``cam_names=['CAM2']``, ``data_prefix=dict(pts='training/velodyne_reduced',
    img='training/image_2')``). A camera's image prefix is ``data_prefix[cam_name]`` if given, else
    ``data_prefix['img']``.

    Args:
        cam_names: cameras to load, in this order. None = every entry of ``images`` that has an ``img_path``
            (nuScenes: all six; KITTI: CAM2). A listed camera missing from a sample raises ``KeyError``.
        load_sweeps: keep ``lidar_sweeps`` (for ``LoadPointsFromMultiSweeps``).
        on_error: ``'raise'`` (default): a bad info entry (missing camera, calibration of the wrong shape or
            singular, intrinsics not well formed, ``lidar2cam`` not rigid) or sample (unreadable file, empty cloud,
            ...) raises an error naming the sample token and the
            key / file; ``'skip'`` (pretraining configs): drop / skip it with a logged warning and a counter (see
            :mod:`mmxmodal.datasets.robust`). An info pkl in the old v1 layout is always an error.
        rotation_tol: largest ``|R R^T - I|`` entry accepted for the rotation part of ``lidar2cam``.
        max_lidar2cam_translation: largest LiDAR-camera distance accepted (metres; None disables).
        **kwargs: passed to :class:`mmdet3d.datasets.Det3DDataset` (``data_root``, ``ann_file``,
            ``data_prefix``, ``pipeline``, ``indices``, ``test_mode`` ...). ``modality`` is always LiDAR +
            camera and no annotation is parsed.

    Each ``data_info`` has: ``sample_idx``, ``token``, ``timestamp`` (if present), ``lidar_points``,
    ``lidar_path``, ``num_pts_feats``, ``lidar_sweeps`` (if any), ``images`` (the selected cameras only, each
    with absolute ``img_path`` and 4x4 float64 ``cam2img``, ``lidar2cam``, ``lidar2img``), ``cam_names``,
    ``lidar2img`` (list, camera order), ``ego2global`` / ``lidar2ego`` when present.
    """

    METAINFO = dict(classes=(), dataset='paired_scene')

    def __init__(self, cam_names: Optional[Sequence[str]] = None, load_sweeps: bool = True, on_error: str = 'raise',
                 rotation_tol: float = 1e-2, max_lidar2cam_translation: Optional[float] = 20.0, **kwargs) -> None:
        self._init_robust(on_error)
        self.rotation_tol = rotation_tol
        self.max_lidar2cam_translation = max_lidar2cam_translation
        self.test_mode = kwargs.get('test_mode', False)
        self.cam_names = None if cam_names is None else list(cam_names)
        self.load_sweeps = load_sweeps
        kwargs['modality'] = dict(use_lidar=True, use_camera=True)
        kwargs.setdefault('filter_empty_gt', False)
        kwargs.setdefault('box_type_3d', 'LiDAR')
        kwargs.setdefault('data_prefix', dict(pts='', img='', sweeps=''))
        super().__init__(**kwargs)

    # ----------------------------------------------------------------------------------------------- parsing
    def _sweeps(self, info: dict) -> List[dict]:
        sweeps = copy.deepcopy(info.get('lidar_sweeps', []) or [])
        for sweep in sweeps:
            path = sweep['lidar_points']['lidar_path']
            name = osp.basename(path)
            # same rule as Det3DDataset: key-frame files live under ``pts``, the others under ``sweeps``
            prefix = self.data_prefix.get('pts', '') if 'samples' in path else self.data_prefix.get('sweeps', '')
            sweep['lidar_points']['lidar_path'] = osp.join(prefix, name)
        return sweeps

    def parse_data_info(self, info: dict) -> dict:
        """Build the label-free ``data_info`` of one sample (see the class docstring); with ``on_error='skip'`` a
        bad entry is dropped (``[]``) with a warning."""
        return self._robust_parse(info, self._parse_data_info)

    def _parse_data_info(self, info: dict) -> dict:
        token = info.get('token', info.get('sample_idx', '?'))
        if 'lidar_points' not in info or 'lidar_path' not in info['lidar_points']:
            raise InfoKeyError(f'sample {token}: info has no lidar_points.lidar_path')
        if 'images' not in info or not isinstance(info['images'], dict):
            raise InfoKeyError(f'sample {token}: info has no "images" dict (camera entries)')
        lidar_points = dict(info['lidar_points'])
        lidar_points['lidar_path'] = osp.join(self.data_prefix.get('pts', ''), lidar_points['lidar_path'])
        out = dict(sample_idx=info.get('sample_idx'), token=token, lidar_points=lidar_points,
                   lidar_path=lidar_points['lidar_path'], num_pts_feats=lidar_points.get('num_pts_feats'))
        for key in ('timestamp', 'ego2global'):
            if key in info:
                out[key] = info[key]
        if 'lidar2ego' in lidar_points:
            out['lidar2ego'] = np.asarray(lidar_points['lidar2ego'], dtype=np.float64)
        if self.load_sweeps and info.get('lidar_sweeps'):
            out['lidar_sweeps'] = self._sweeps(info)

        cams = self.cam_names
        if cams is None:
            cams = [c for c, v in info['images'].items() if isinstance(v, dict) and 'img_path' in v]
            if not cams:
                raise InfoKeyError(f'sample {token}: no camera entry with an img_path in info["images"] '
                               f'(keys: {sorted(info["images"])})')
        images = {}
        for cam in cams:
            entry = info['images'].get(cam)
            if not isinstance(entry, dict):
                raise InfoKeyError(f'sample {token}: camera {cam!r} missing from info["images"] '
                               f'(available: {sorted(info["images"])})')
            for key in ('img_path', 'cam2img', 'lidar2cam'):
                if entry.get(key) is None:
                    raise InfoKeyError(f'sample {token}: images[{cam!r}] has no {key!r}')
            cam2img = _as_matrix(entry['cam2img'], 'cam2img', token, cam)
            lidar2cam = _as_matrix(entry['lidar2cam'], 'lidar2cam', token, cam)
            prefix = self.data_prefix.get(cam, self.data_prefix.get('img', ''))
            check_camera_calibration(cam2img, lidar2cam, f'sample {token}: camera {cam} '
                                     f'({osp.join(prefix, entry["img_path"])})', self.rotation_tol,
                                     self.max_lidar2cam_translation)
            item = {k: v for k, v in entry.items() if k not in ('cam2img', 'lidar2cam', 'lidar2img')}
            item.update(img_path=osp.join(prefix, entry['img_path']), cam2img=cam2img, lidar2cam=lidar2cam,
                        lidar2img=cam2img @ lidar2cam)
            images[cam] = item
        out['images'] = images
        out['cam_names'] = list(cams)
        out['lidar2img'] = [images[c]['lidar2img'] for c in cams]
        return out

    def parse_ann_info(self, info: dict) -> None:
        """Label-free: annotations are never read."""
        return None

    def prepare_data(self, index: int) -> Optional[dict]:
        """Run the pipeline on a copy of the data info (no empty-GT filtering: there are no labels); errors are
        raised naming the sample, or the sample is skipped (``on_error``)."""
        return self._robust_prepare(index, self._prepare_data)

    def _prepare_data(self, index: int) -> Optional[dict]:
        input_dict = copy.deepcopy(self.get_data_info(index))
        input_dict['box_type_3d'] = self.box_type_3d
        input_dict['box_mode_3d'] = self.box_mode_3d
        return self.pipeline(input_dict)
