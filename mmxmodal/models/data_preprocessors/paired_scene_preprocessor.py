"""``Det3DDataPreprocessor`` that also carries (and voxelises) the second point-cloud view of SimIPU."""
from typing import Sequence

from mmdet3d.models.data_preprocessors import Det3DDataPreprocessor
from mmdet3d.registry import MODELS


@MODELS.register_module()
class PairedSceneDataPreprocessor(Det3DDataPreprocessor):
    """mmdet3d's ``Det3DDataPreprocessor`` (image normalisation / padding, voxelisation of ``points``) plus
    the extra point inputs of a paired scene.

    Every key of ``extra_point_keys`` present in ``data['inputs']`` (a list of (N_i, C) tensors per sample) is
    moved to the device and returned as is; with ``voxel=True`` it is also voxelised by the same voxel layer, the
    result stored under the key with ``points`` replaced by ``voxels`` (``points_view2`` -> ``voxels_view2``).

    Args:
        extra_point_keys: input keys holding additional point clouds.
        **kwargs: arguments of :class:`mmdet3d.models.Det3DDataPreprocessor`.
    """

    def __init__(self, extra_point_keys: Sequence[str] = ('points_view2', ), **kwargs) -> None:
        super().__init__(**kwargs)
        self.extra_point_keys = tuple(extra_point_keys)

    def simple_process(self, data: dict, training: bool = False) -> dict:
        inputs = dict(data['inputs'])
        extra = {k: inputs.pop(k) for k in self.extra_point_keys if k in inputs}
        out = super().simple_process(dict(data, inputs=inputs), training)
        for key, points in extra.items():
            points = self.cast_data(points)
            out['inputs'][key] = points
            if self.voxel:
                out['inputs'][key.replace('points', 'voxels', 1)] = self.voxelize(points, out['data_samples'])
        return out
