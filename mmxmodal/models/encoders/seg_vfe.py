"""Dynamic scatter (points -> voxels) on any device, and Cylinder3D's ``SegVFE`` built on it.

mmcv 2.1's ``dynamic_point_to_voxel`` (used by mmcv's ``DynamicScatter`` and mmdet3d's ``dynamic_scatter_3d``) has
no CPU kernel. :func:`dynamic_scatter` computes the same result with PyTorch ops (on CUDA tensors it calls mmcv's
kernel): voxels are the distinct coordinate rows in lexicographic order (``torch.unique(dim=0)``, as mmcv's kernel),
points with a negative coordinate belong to no voxel (map ``-1``), ``max`` / ``mean`` / ``sum`` reductions with
gradients through ``scatter_reduce``.

:class:`SegVFEAnyDevice` is mmdet3d's ``SegVFE`` with that scatter: the same parameters and state-dict keys, so
its weights load into the stock ``SegVFE`` of ``Cylinder3D`` and back.
"""
from typing import Optional, Tuple

import torch
from mmdet3d.models.voxel_encoders import SegVFE
from mmdet3d.registry import MODELS
from torch import Tensor, nn


def dynamic_scatter(feats: Tensor, coors: Tensor, reduce: str = 'max') -> Tuple[Tensor, Tensor, Tensor]:
    """Reduce the points of every voxel.

    Args:
        feats: (N, C) point features.
        coors: (N, D) int voxel coordinates (any negative entry: the point is dropped).
        reduce: ``'max'``, ``'mean'`` or ``'sum'``.

    Returns:
        voxel features (M, C), voxel coordinates (M, D) (same dtype as ``coors``, lexicographic order) and the
        point-to-voxel map (N,) int64 (-1 for dropped points).
    """
    if reduce not in ('max', 'mean', 'sum'):
        raise ValueError(f"reduce must be 'max', 'mean' or 'sum', got {reduce!r}")
    n = coors.shape[0]
    keep = (coors >= 0).all(1) if n else torch.zeros(0, dtype=torch.bool, device=coors.device)
    p2v = torch.full((n, ), -1, dtype=torch.long, device=coors.device)
    if not bool(keep.any()):
        return feats.new_zeros((0, feats.shape[1])), coors.new_zeros((0, coors.shape[1])), p2v
    vcoors, inv = torch.unique(coors[keep], dim=0, return_inverse=True)
    p2v[keep] = inv
    m = vcoors.shape[0]
    src = feats[keep]
    index = inv[:, None].expand(-1, feats.shape[1])
    init = feats.new_zeros((m, feats.shape[1]))
    if reduce == 'sum':
        out = init.scatter_add(0, index, src)
    else:
        out = init.scatter_reduce(0, index, src, reduce='amax' if reduce == 'max' else 'mean', include_self=False)
    return out, vcoors, p2v


class AnyDeviceDynamicScatter(nn.Module):
    """Drop-in for mmcv's ``DynamicScatter`` (same arguments and outputs) that also runs on the CPU."""

    def __init__(self, voxel_size, point_cloud_range, average_points: bool) -> None:
        super().__init__()
        self.voxel_size = voxel_size
        self.point_cloud_range = point_cloud_range
        self.average_points = average_points

    def forward(self, points: Tensor, coors: Tensor) -> Tuple[Tensor, Tensor]:
        if points.is_cuda:
            from mmcv.ops import dynamic_scatter as mmcv_dynamic_scatter
            return mmcv_dynamic_scatter(points.contiguous(), coors.contiguous(),
                                        'mean' if self.average_points else 'max')
        feats, vcoors, _ = dynamic_scatter(points, coors, 'mean' if self.average_points else 'max')
        return feats, vcoors


@MODELS.register_module()
class SegVFEAnyDevice(SegVFE):
    """mmdet3d's ``SegVFE`` (Cylinder3D) whose scatter also runs on the CPU; identical parameters and keys."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        old = self.vfe_scatter
        self.vfe_scatter = AnyDeviceDynamicScatter(old.voxel_size, old.point_cloud_range, old.average_points)
