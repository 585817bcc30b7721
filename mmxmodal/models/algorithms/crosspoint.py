"""CrossPoint (Afham et al., CVPR 2022): intra-modal (point view <-> point view) plus cross-modal
(mean point embedding <-> rendered-image embedding) NT-Xent pretraining of a point encoder."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample

from .base import ModeDispatchModel

SampleList = List[Det3DDataSample]


@MODELS.register_module()
class CrossPoint(ModeDispatchModel):
    """CrossPoint pretraining model.

    Args:
        point_encoder: point encoder config, (B, N, C) -> (B, D_p) (``DGCNNEncoder``: 2048, ``PointNetEncoder``:
            1024). Its weights live under ``point_encoder.``, the prefix a downstream config loads with
            ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='point_encoder.')``.
        img_backbone: image backbone config (``mmdet.ResNet`` depth 50, ``out_indices=(3,)``); the last output map
            is globally average pooled -> (B, D_i).
        point_head, img_head: ``ProjectionHead`` configs -> (B, 256) each.
        loss_intra: NT-Xent between the two point views (``NTXentLoss``, temperature 0.1, ``loss_weight`` = its
            weight, ``gather_distributed`` for negatives from all processes).
        loss_cross: NT-Xent between the mean of the two point embeddings and the image embedding.
        data_preprocessor: ``ObjectDataPreprocessor`` config.

    Inputs: ``points`` (B, V=2, N, C) object-frame views for ``loss``; (B, N, C) or (B, V, N, C) for ``predict``
    (views are averaged); ``img`` (B, 3, H, W) or (B, 1, 3, H, W) normalised RGB.
    """

    def __init__(self,
                 point_encoder: dict,
                 img_backbone: dict,
                 point_head: dict,
                 img_head: dict,
                 loss_intra: dict = dict(type='NTXentLoss', temperature=0.1, loss_weight=1.0),
                 loss_cross: dict = dict(type='NTXentLoss', temperature=0.1, loss_weight=1.0),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if isinstance(data_preprocessor, dict):  # build in the mmdet3d registry (works without a default scope)
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.point_encoder = MODELS.build(point_encoder)
        self.img_backbone = MODELS.build(img_backbone)
        self.point_head = MODELS.build(point_head)
        self.img_head = MODELS.build(img_head)
        self.loss_intra = MODELS.build(loss_intra)
        self.loss_cross = MODELS.build(loss_cross)

    # ------------------------------------------------------------------ features
    def extract_feat(self, points: Union[Tensor, List[Tensor]]) -> Tensor:
        """Frozen-probe point features: (B, N, C) -> (B, D_p); (B, V, N, C) -> mean over views (B, D_p).

        A list of (N_i, C) clouds of different sizes is encoded one by one.
        """
        if isinstance(points, (list, tuple)):
            return torch.cat([self.extract_feat(p[None]) for p in points], 0)
        if points.dim() == 4:
            B, V = points.shape[:2]
            return self.point_encoder(points.flatten(0, 1)).view(B, V, -1).mean(1)
        return self.point_encoder(points)

    def extract_img_feat(self, img: Tensor) -> Tensor:
        """(B, 3, H, W) (or (B, 1, 3, H, W)) normalised RGB -> (B, D_i) globally average-pooled last stage."""
        if img.dim() == 5:
            assert img.shape[1] == 1, 'CrossPoint uses one rendered view per object'
            img = img[:, 0]
        feats = self.img_backbone(img)
        feat = feats[-1] if isinstance(feats, (list, tuple)) else feats
        return feat.mean(dim=(2, 3))

    def _embed(self, inputs: dict) -> Tuple[Tensor, Tensor, Tensor]:
        """-> projected view-1, view-2 and image embeddings, each (B, 256)."""
        points = inputs['points']
        assert isinstance(points, Tensor) and points.dim() == 4 and points.shape[1] == 2, \
            'CrossPoint.loss expects points (B, 2, N, C): use ObjectPointViews(num_views=2)'
        B = points.shape[0]
        # Both views in one encoder batch (view 1 rows, then view 2 rows), as in CrossPoint: BN sees 2B clouds.
        z = self.point_head(self.point_encoder(points.transpose(0, 1).flatten(0, 1)))
        z_img = self.img_head(self.extract_img_feat(inputs['img']))
        return z[:B], z[B:], z_img

    # ------------------------------------------------------------------ modes
    def loss(self, inputs: dict, data_samples: Optional[SampleList] = None) -> Dict[str, Tensor]:
        """``loss_intra = NT-Xent(z1, z2)``, ``loss_cross = NT-Xent((z1 + z2) / 2, z_img)`` (weights in configs)."""
        z1, z2, z_img = self._embed(inputs)
        return dict(loss_intra=self.loss_intra(z1, z2), loss_cross=self.loss_cross((z1 + z2) / 2, z_img))

    def predict(self, inputs: dict, data_samples: Optional[SampleList] = None) -> SampleList:
        """Adds ``point_feat`` (D_p,) frozen encoder features to each data sample (for the SVM / few-shot probes)."""
        feats = self.extract_feat(inputs['points'])
        if data_samples is None:
            data_samples = [Det3DDataSample() for _ in range(feats.shape[0])]
        for ds, f in zip(data_samples, feats):
            ds.point_feat = f.detach()
        return data_samples

    def _forward(self, inputs: dict, data_samples: Optional[SampleList] = None) -> Tuple[Tensor, ...]:
        """Tensor mode: ``(point_feat (B, D_p),)``, plus ``img_feat (B, D_i)`` when ``img`` is given."""
        out = (self.extract_feat(inputs['points']), )
        if 'img' in inputs:
            out = out + (self.extract_img_feat(inputs['img']), )
        return out
