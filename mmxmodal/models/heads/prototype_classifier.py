"""Cosine prototype classifier shared by the image and point branches of Cross-MoST.

``logits = s * normalize(f) @ normalize(W)^T`` with W (C, D) trainable class prototypes and s the logit scale
(learnable through ``log s`` or fixed). W starts from one of (see :meth:`PrototypeClassifier.init_prototypes`):

* text embeddings of the class names with prompt templates (CLIP zero-shot, the published start);
* class-mean prototypes of a few labelled shots (:func:`class_mean_prototypes`) - the start used where no
  pretrained CLIP exists (the embedded objects);
* a tensor / checkpoint saved beforehand (e.g. by ``tools/crossmost_init_classifier.py``).
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS


def class_mean_prototypes(feats: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Few-shot start: per class, the mean of the L2-normalised features of its shots, re-normalised.

    Args:
        feats: (N, D) features of the labelled shots (several modalities may be stacked as extra rows).
        labels: (N,) class index of each row.
        num_classes: C.

    Returns:
        (C, D) unit prototypes (a class without shots gets a zero row, i.e. logit 0).
    """
    f = F.normalize(feats.float(), dim=1)
    protos = f.new_zeros(num_classes, f.shape[1]).index_add_(0, labels.long(), f)
    return F.normalize(protos, dim=1)


@MODELS.register_module()
class PrototypeClassifier(BaseModule):
    """Cosine classifier.

    Args:
        num_classes: C.
        in_channels: D (shared embedding dimension).
        logit_scale: initial scale s (CLIP: 100).
        learnable_scale: learn ``log s`` (clamped to <= log 100) or keep s fixed.
        prototypes: optional path of a saved (C, D) tensor (``torch.save``) to start from.

    ``forward(feats)``: (B, D) -> (B, C) logits.
    """

    def __init__(self, num_classes: int, in_channels: int, logit_scale: float = 100.0,
                 learnable_scale: bool = False, prototypes: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.weight = nn.Parameter(F.normalize(torch.randn(num_classes, in_channels), dim=1))
        log_s = torch.tensor(math.log(logit_scale))
        if learnable_scale:
            self.log_scale = nn.Parameter(log_s)
        else:
            self.register_buffer('log_scale', log_s)
        self.max_log_scale = math.log(100.0)
        if prototypes is not None:
            self.init_prototypes(torch.load(prototypes, map_location='cpu', weights_only=True))

    @torch.no_grad()
    def init_prototypes(self, prototypes: Tensor) -> None:
        """Set W from (C, D) class embeddings / prototypes (normalised here)."""
        assert prototypes.shape == self.weight.shape, (prototypes.shape, self.weight.shape)
        self.weight.copy_(F.normalize(prototypes.float(), dim=1))

    @property
    def scale(self) -> Tensor:
        return self.log_scale.clamp(max=self.max_log_scale).exp()

    def forward(self, feats: Tensor) -> Tensor:
        return self.scale * F.normalize(feats, dim=-1) @ F.normalize(self.weight, dim=-1).t()
