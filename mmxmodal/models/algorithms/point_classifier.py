"""Object classifier for fine-tuning a (pretrained) point encoder: encoder -> MLP head -> class logits.

mmdet3d has no object-level classifier (its models are detectors / segmentors), hence this small model.
"""
from typing import Dict, List, Optional, Union

import torch
from torch import Tensor

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample

from .base import ModeDispatchModel

SampleList = List[Det3DDataSample]


@MODELS.register_module()
class PointClassifier(ModeDispatchModel):
    """Point-cloud object classifier.

    Args:
        backbone: point encoder config ((B, N, C) -> (B, D)), e.g. ``DGCNNEncoder`` with
            ``init_cfg=dict(type='Pretrained', checkpoint='<crosspoint ckpt>', prefix='point_encoder.')``.
        head: ``PointClsHead`` config ((B, D) -> (B, num_classes), label-smoothed CE).
        data_preprocessor: ``ObjectDataPreprocessor`` config.

    Inputs: ``points`` (B, N, C) object frame; data samples carry ``gt_label``.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if isinstance(data_preprocessor, dict):  # build in the mmdet3d registry (works without a default scope)
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)

    def extract_feat(self, points: Union[Tensor, List[Tensor]]) -> Tensor:
        """(B, N, C) -> (B, D) global features ((B, V, N, C): mean over views; list: one by one)."""
        if isinstance(points, (list, tuple)):
            return torch.cat([self.extract_feat(p[None]) for p in points], 0)
        if points.dim() == 4:
            B, V = points.shape[:2]
            return self.backbone(points.flatten(0, 1)).view(B, V, -1).mean(1)
        return self.backbone(points)

    def loss(self, inputs: dict, data_samples: SampleList) -> Dict[str, Tensor]:
        logits = self.head(self.extract_feat(inputs['points']))
        labels = torch.stack([ds.gt_label for ds in data_samples]).to(logits.device).view(-1)
        return self.head.loss(logits, labels)

    def predict(self, inputs: dict, data_samples: Optional[SampleList] = None) -> SampleList:
        """Adds ``pred_score`` (C,), ``pred_label`` () and ``point_feat`` (D,) to each data sample."""
        feats = self.extract_feat(inputs['points'])
        scores = self.head(feats).softmax(dim=1)
        if data_samples is None:
            data_samples = [Det3DDataSample() for _ in range(feats.shape[0])]
        for ds, f, s in zip(data_samples, feats, scores):
            ds.pred_score = s.detach()
            ds.pred_label = s.argmax().detach()
            ds.point_feat = f.detach()
        return data_samples

    def _forward(self, inputs: dict, data_samples: Optional[SampleList] = None) -> Tensor:
        """Tensor mode: logits (B, num_classes)."""
        return self.head(self.extract_feat(inputs['points']))
