"""Segmentation data preprocessors that run on any device (mmdet3d 1.4's ``minkunet`` voxelisation calls ``.cuda()``).

:class:`SegDet3DDataPreprocessor` is mmdet3d's ``Det3DDataPreprocessor`` with two changes, nothing else:

- ``voxel_type='minkunet'`` keeps every tensor on the device of the points (upstream moves the point-to-voxel map
  and the kept indices to CUDA, which fails on a CPU-only machine). The result is the same: ``voxels`` / ``coors``
  / ``data_sample.point2voxel_map`` / ``batch_idx`` / ``gt_pts_seg.voxel_semantic_mask`` as upstream.
- ``voxel_dict['point2voxel']`` (sum N_b,) int64: the row of ``voxels`` / ``coors`` of every input point, ``-1``
  when ``max_voxels`` dropped its voxel in training (upstream's ``point2voxel_map`` indexes the voxels *before*
  that drop, so it cannot be used for per-point features of a subsampled batch). Filled for ``minkunet`` and
  ``cylindrical`` voxelisation (for the latter each point's row is its own: ``voxels`` are per point).
- ``cylindrical``: the voxel labels and point-to-voxel map are computed with
  :func:`~mmxmodal.models.encoders.seg_vfe.dynamic_scatter` on the CPU (mmcv has no CPU kernel), and without
  ``gt_pts_seg`` (label-free pretraining) the training branch takes the map only, as upstream at test time.

:class:`PairedSegDataPreprocessor` adds the second point view of SimIPU (``points_view2`` -> ``voxels_view2``).
Stock segmentation configs keep their ``Det3DDataPreprocessor``; set ``type='SegDet3DDataPreprocessor'`` only to
run them on a CPU.
"""
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from mmdet3d.models.data_preprocessors import Det3DDataPreprocessor
from mmdet3d.registry import MODELS
from torch import Tensor

from mmxmodal.models.encoders.seg_vfe import dynamic_scatter

from .paired_scene_preprocessor import PairedSceneDataPreprocessor


def _has_seg_gt(data_sample) -> bool:
    return 'gt_pts_seg' in data_sample and hasattr(data_sample.gt_pts_seg, 'pts_semantic_mask')


@MODELS.register_module()
class SegDet3DDataPreprocessor(Det3DDataPreprocessor):
    """``Det3DDataPreprocessor`` whose ``minkunet`` voxelisation runs on the points' device (see module doc)."""

    @torch.no_grad()
    def voxelize(self, points: List[Tensor], data_samples: list) -> Dict[str, Tensor]:
        if self.voxel_type == 'minkunet':
            return self._voxelize_minkunet(points, data_samples)
        voxel_dict = super().voxelize(points, data_samples)
        if self.voxel_type == 'cylindrical':  # voxels are the points themselves
            voxel_dict['point2voxel'] = torch.arange(voxel_dict['voxels'].shape[0], device=voxel_dict['voxels'].device)
        return voxel_dict

    def get_voxel_seg(self, res_coors: Tensor, data_sample) -> None:
        """Upstream's voxel labels / point-to-voxel map, on any device; label-free samples get the map only."""
        if res_coors.is_cuda:
            if self.training and not _has_seg_gt(data_sample):
                was = self.training
                self.training = False  # upstream's label-free branch
                try:
                    super().get_voxel_seg(res_coors, data_sample)
                finally:
                    self.training = was
                return
            return super().get_voxel_seg(res_coors, data_sample)
        if self.training and _has_seg_gt(data_sample):
            mask = data_sample.gt_pts_seg.pts_semantic_mask
            voxel_mask, _, p2v = dynamic_scatter(F.one_hot(mask.long()).float(), res_coors, 'mean')
            data_sample.gt_pts_seg.voxel_semantic_mask = torch.argmax(voxel_mask, dim=-1)
        else:
            _, _, p2v = dynamic_scatter(res_coors.new_ones((res_coors.shape[0], 1)).float(), res_coors, 'mean')
        data_sample.point2voxel_map = p2v

    def _voxelize_minkunet(self, points: List[Tensor], data_samples: list) -> Dict[str, Tensor]:
        """Upstream's ``minkunet`` branch on the points' device, plus ``point2voxel`` (rows after max_voxels)."""
        voxels, coors, p2v_all = [], [], []
        voxel_size = points[0].new_tensor(self.voxel_layer.voxel_size)
        offset = 0
        for i, (res, data_sample) in enumerate(zip(points, data_samples)):
            dev = res.device
            res_coors = torch.round(res[:, :3] / voxel_size).int()
            res_coors -= res_coors.min(0)[0]
            inds, point2voxel_map = self.sparse_quantize(
                res_coors.cpu().numpy(), return_index=True, return_inverse=True)
            point2voxel_map = torch.from_numpy(np.asarray(point2voxel_map)).to(dev).long()
            num_unique = len(inds)
            keep_pos = None
            if self.training and self.max_voxels is not None and len(inds) > self.max_voxels:
                keep_pos = np.random.choice(len(inds), self.max_voxels, replace=False)
                inds = inds[keep_pos]
            inds = torch.from_numpy(np.asarray(inds)).to(dev).long()
            if _has_seg_gt(data_sample):
                data_sample.gt_pts_seg.voxel_semantic_mask = data_sample.gt_pts_seg.pts_semantic_mask[inds]
            res_voxel_coors = res_coors[inds]
            res_voxels = res[inds]
            if self.batch_first:
                res_voxel_coors = F.pad(res_voxel_coors, (1, 0), mode='constant', value=i)
                data_sample.batch_idx = res_voxel_coors[:, 0]
            else:
                res_voxel_coors = F.pad(res_voxel_coors, (0, 1), mode='constant', value=i)
                data_sample.batch_idx = res_voxel_coors[:, -1]
            data_sample.point2voxel_map = point2voxel_map
            if keep_pos is None:
                row = point2voxel_map
            else:  # unique voxel -> kept row or -1
                new_row = torch.full((num_unique, ), -1, dtype=torch.long, device=dev)
                new_row[torch.from_numpy(keep_pos).to(dev).long()] = torch.arange(len(keep_pos), device=dev)
                row = new_row[point2voxel_map]
            p2v_all.append(torch.where(row >= 0, row + offset, row))
            offset += res_voxels.shape[0]
            voxels.append(res_voxels)
            coors.append(res_voxel_coors)
        return dict(voxels=torch.cat(voxels, 0), coors=torch.cat(coors, 0), point2voxel=torch.cat(p2v_all, 0))


@MODELS.register_module()
class PairedSegDataPreprocessor(PairedSceneDataPreprocessor, SegDet3DDataPreprocessor):
    """:class:`PairedSceneDataPreprocessor` (second point view, images) with the device-independent segmentation
    voxelisation of :class:`SegDet3DDataPreprocessor`; each view's ``voxel_dict`` carries its own ``point2voxel``
    (the ``data_sample`` attributes are those of the last view voxelised and are not used in pretraining)."""
