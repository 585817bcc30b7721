"""SimIPU with a LiDAR *segmentation* backbone: mmdet3d's ``MinkUNetBackbone`` or Cylinder3D's ``Asymm3DSpconv``.

The losses are SimIPU's (:class:`~mmxmodal.models.algorithms.simipu.SimIPU`): point-level InfoNCE between two
views of a scan and point-pixel InfoNCE against the image features at the projections. Only the LiDAR branch
differs: the U-Net returns one feature per voxel at the input resolution, and every point takes the feature of its
own voxel through the voxel map of the data preprocessor (as mmdet3d's ``MinkUNetHead.predict`` and
``Cylinder3DHead.predict`` do), so *every* point has a feature; points of one voxel share it and are treated as
duplicates by the pair sampler.

Sub-module names are those of the stock segmentors, so the weights drop into them with ``init_cfg``:
``backbone.*`` (``MinkUNet`` and ``Cylinder3D``) and ``voxel_encoder.*`` (``Cylinder3D``'s ``SegVFE``).

- MinkUNet: ``data_preprocessor=dict(type='PairedSegDataPreprocessor', voxel_type='minkunet', batch_first=True)``,
  rows from ``voxel_dict['point2voxel']``.
- Cylinder3D: ``voxel_type='cylindrical'``; the ``SegVFE`` pools the points into voxels and the backbone returns a
  sparse tensor whose sites are looked up by each point's (batch, rho, phi, z) voxel coordinate.

On CPU tensors spconv's layers run with ``ConvAlgo.Native`` (set per call on this model's own layers and
restored afterwards, see :func:`spconv_native_algo`); nothing outside the model is changed.
"""
import contextlib
from typing import Dict, List, Optional, Sequence

import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModel
from torch import Tensor, nn

from mmxmodal.models.encoders.voxel_point_features import lookup_sparse_sites
from .simipu import SimIPU, split_offsets, ViewPoints


@contextlib.contextmanager
def spconv_native_algo(module: nn.Module, enabled: bool = True):
    """Run ``module``'s spconv 2.x layers with ``ConvAlgo.Native`` inside the block (CPU), then restore.

    spconv 2.3's default algorithm (``MaskImplicitGemm``) calls CUDA even for CPU tensors; ``Native`` runs on both
    and uses the same weight layout. Only the ``algo`` attribute of this module's layers is changed.
    """
    saved = []
    if enabled:
        try:
            from spconv.core import ConvAlgo
            from spconv.pytorch.conv import SparseConvolution
        except ImportError:  # pragma: no cover - no spconv 2.x: mmcv's ops, nothing to choose
            SparseConvolution = None
        if SparseConvolution is not None:
            for m in module.modules():
                if isinstance(m, SparseConvolution) and m.algo != ConvAlgo.Native:
                    saved.append((m, m.algo))
                    m.algo = ConvAlgo.Native
    try:
        yield
    finally:
        for m, algo in saved:
            m.algo = algo


def voxel_features_to_points(voxel_feats: Tensor, point2voxel: Tensor) -> Tensor:
    """Per-point features from per-voxel ones: (K, C), (N,) rows or -1 -> (N, C) (zeros for -1)."""
    ok = point2voxel >= 0
    out = voxel_feats[point2voxel.clamp(min=0)]
    return out * ok[:, None].to(out.dtype)


@MODELS.register_module()
class SimIPUSeg(SimIPU):
    """SimIPU pretraining of a LiDAR segmentation backbone (``mode='loss'`` / ``'tensor'``).

    Args:
        img_backbone / img_neck / img_feat_levels / img_feat_channels: image branch, as :class:`SimIPU`.
        backbone: ``MinkUNetBackbone`` (``sparseconv_backend='spconv'``) or ``Asymm3DSpconv``.
        backbone_channels: feature size per voxel of ``backbone`` (MinkUNet: last decoder channel; Cylinder3D:
            ``4 * base_channels``, DDCM output concatenated with the last up block).
        voxel_encoder: ``SegVFE`` for Cylinder3D (None for MinkUNet).
        point_proj / inter_point_proj / img_proj / loss_intra / loss_inter / max_pairs_* / dedup /
            loss_superpixel: as :class:`SimIPU`.
        data_preprocessor: :class:`~mmxmodal.models.data_preprocessors.PairedSegDataPreprocessor`.
    """

    def __init__(self,
                 img_backbone: dict,
                 backbone: dict,
                 backbone_channels: int,
                 voxel_encoder: Optional[dict] = None,
                 img_neck: Optional[dict] = None,
                 img_feat_levels: Sequence[int] = (0, 1, 2, 3),
                 img_feat_channels: Sequence[int] = (256, 512, 1024, 2048),
                 point_proj: dict = dict(type='ContrastProjectionHead', hidden_channels=(256, ), out_channels=128),
                 inter_point_proj: Optional[dict] = None,
                 img_proj: Optional[dict] = None,
                 loss_intra: dict = dict(type='SampledInfoNCELoss', temperature=0.07),
                 loss_inter: dict = dict(type='SampledInfoNCELoss', temperature=0.07),
                 max_pairs_intra: Optional[int] = 4096,
                 max_pairs_inter: Optional[int] = 4096,
                 dedup: bool = True,
                 loss_superpixel: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        BaseModel.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        img_channels = self._build_image_branch(img_backbone, img_neck, img_feat_levels, img_feat_channels)
        self.voxel_encoder = MODELS.build(voxel_encoder) if voxel_encoder is not None else None
        self.backbone = MODELS.build(backbone)
        self.with_sparse = True
        self.backbone_channels = int(backbone_channels)
        self._build_contrast(self.backbone_channels, img_channels, point_proj, inter_point_proj, img_proj, loss_intra,
                             loss_inter, loss_superpixel, max_pairs_intra, max_pairs_inter, dedup)

    # ---------------------------------------------------------------------------------------- LiDAR branch
    def extract_voxel_feats(self, voxel_dict: Dict[str, Tensor], batch_size: int):
        """Backbone features per voxel and the voxel row of every input point.

        Returns:
            (K, C) voxel features and (sum N_b,) int64 rows (-1: the point's voxel was dropped).
        """
        voxels, coors = voxel_dict['voxels'], voxel_dict['coors']
        with spconv_native_algo(self, enabled=not voxels.is_cuda):
            if self.voxel_encoder is None:  # MinkUNet: voxels are the kept points, coors (b, x, y, z)
                if 'point2voxel' not in voxel_dict:
                    raise KeyError("voxel_dict has no 'point2voxel': use PairedSegDataPreprocessor / "
                                   "SegDet3DDataPreprocessor with voxel_type='minkunet', batch_first=True")
                feats = self.backbone(voxels, coors)
                if feats.shape[0] != coors.shape[0]:
                    raise RuntimeError(f'backbone returned {feats.shape[0]} voxel features for {coors.shape[0]} '
                                       'voxels')
                return feats, voxel_dict['point2voxel']
            vfeat, vcoors = self.voxel_encoder(voxels, coors)  # Cylinder3D: per-point voxels in, voxels out
            out = self.backbone(vfeat, vcoors, batch_size)
        shape = [int(s) for s in self.backbone.grid_size]
        rows = lookup_sparse_sites(coors.long(), out.indices.long(), shape)
        return out.features, rows

    def extract_pts_view(self, points: List[Tensor], voxel_dict: Optional[Dict[str, Tensor]] = None
                         ) -> ViewPoints:
        """Point features of one view (every point through its voxel). points: list of (N_b, C)."""
        if voxel_dict is None:
            raise ValueError('SimIPUSeg needs voxels: set voxel=True in the data preprocessor')
        feats, rows = self.extract_voxel_feats(voxel_dict, len(points))
        sizes = [p.shape[0] for p in points]
        if rows.shape[0] != sum(sizes):
            raise RuntimeError(f'voxel map covers {rows.shape[0]} points, the batch has {sum(sizes)}')
        valid = rows >= 0

        def fetch(indices: List[Tensor]) -> Tensor:
            sel = torch.cat([idx + off for idx, off in zip(indices, split_offsets(sizes))])
            return voxel_features_to_points(feats, rows[sel])

        return ViewPoints(list(valid.split(sizes)), list(rows.split(sizes)), fetch, feats.sum() * 0)

    def forward(self, inputs: dict, data_samples: Optional[list] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            feats, rows = self.extract_voxel_feats(inputs['voxels'], len(inputs['points']))
            return dict(img_feats=self.extract_img_feats(inputs['imgs']), voxel_feats=feats,
                        point_feats=voxel_features_to_points(feats, rows))
        raise NotImplementedError(f'SimIPUSeg is a pretraining model: mode {mode!r} is not supported '
                                  "(use 'loss' or 'tensor')")
