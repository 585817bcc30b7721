"""Packing of a paired scene (two point views + multi-camera images) into model inputs and a data sample."""
from mmdet3d.datasets.transforms import Pack3DDetInputs
from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures.points import BasePoints

from ..robust import check_scene_pairing

PAIRED_SCENE_META_KEYS = ('sample_idx', 'token', 'lidar_path', 'img_path', 'cam_names', 'num_pts_feats',
                          'cam2img', 'lidar2cam', 'lidar2img', 'img_aug_mat', 'ori_cam2img', 'img_shape',
                          'pad_shape', 'valid_shape', 'scale_factor', 'crop_offset', 'flip', 'view_trans',
                          'proj_point_idx', 'proj_cam_idx', 'proj_uv', 'proj_depth', 'superpixels', 'box_type_3d',
                          'box_mode_3d')


@TRANSFORMS.register_module()
class PackPairedSceneInputs(Pack3DDetInputs):
    """``Pack3DDetInputs`` with ``points_view2`` as an input key and SimIPU's correspondence metas.

    ``inputs``: ``points`` (N, C) view 1, ``points_view2`` (N, C) view 2, ``img`` (num_cams, 3, H, W).
    ``data_sample.metainfo``: the ``meta_keys`` present, by default :data:`PAIRED_SCENE_META_KEYS` (the
    projections ``proj_*`` of :class:`ProjectPointsToCameras`, ``view_trans`` of :class:`GlobalTwoViews`, the
    per-camera matrices of :class:`MultiViewImageAug`).

    ``max_time_offset`` (seconds; None disables): the images and the LiDAR scan must be of the same sample
    (:func:`mmxmodal.datasets.robust.check_scene_pairing`), else a ``PairingError`` names the files.
    """

    INPUTS_KEYS = ['points', 'points_view2', 'img']

    def __init__(self, keys: tuple = ('points', 'points_view2', 'img'),
                 meta_keys: tuple = PAIRED_SCENE_META_KEYS, max_time_offset: float = 0.1) -> None:
        super().__init__(keys=keys, meta_keys=meta_keys)
        self.max_time_offset = max_time_offset

    def pack_single_results(self, results: dict) -> dict:
        if self.max_time_offset is not None:
            check_scene_pairing(results, self.max_time_offset)
        if isinstance(results.get('points_view2'), BasePoints):
            results['points_view2'] = results['points_view2'].tensor
        return super().pack_single_results(results)
