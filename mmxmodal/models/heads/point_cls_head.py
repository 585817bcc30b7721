"""Classification MLP head of DGCNN / CrossPoint fine-tuning, with DGCNN's label-smoothed cross-entropy."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmdet3d.registry import MODELS


def smooth_cross_entropy(logits: Tensor, labels: Tensor, eps: float = 0.2) -> Tensor:
    """DGCNN's ``cal_loss``: target ``1 - eps`` on the label, ``eps / (C - 1)`` on every other class.

    Args:
        logits: (B, C).
        labels: (B,) int64.
        eps: smoothing; 0 gives plain cross-entropy.
    """
    if eps == 0:
        return F.cross_entropy(logits, labels)
    n_cls = logits.shape[1]
    target = torch.full_like(logits, eps / (n_cls - 1))
    target.scatter_(1, labels.view(-1, 1), 1.0 - eps)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


@MODELS.register_module()
class PointClsHead(BaseModule):
    """``[Linear -> BN -> LeakyReLU(0.2) -> Dropout] x len(hidden) -> Linear``: (B, in) -> (B, num_classes).

    DGCNN: 2048 -> 512 (no bias) -> 256 -> C, dropout 0.5, label smoothing 0.2.

    Args:
        in_channels: global feature size.
        num_classes: C.
        hidden_channels: hidden sizes.
        dropout: dropout after each hidden layer.
        label_smoothing: ``eps`` of :func:`smooth_cross_entropy`.
        loss_weight: multiplier of the loss.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 hidden_channels: Sequence[int] = (512, 256),
                 dropout: float = 0.5,
                 label_smoothing: float = 0.2,
                 loss_weight: float = 1.0,
                 norm_cfg: dict = dict(type='BN1d'),
                 negative_slope: float = 0.2,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes, self.label_smoothing, self.loss_weight = num_classes, label_smoothing, loss_weight
        layers, c = [], in_channels
        for i, h in enumerate(hidden_channels):
            # DGCNN: the first linear has no bias (it is followed by BN), the next ones do.
            layers += [nn.Linear(c, h, bias=i > 0), build_norm_layer(norm_cfg, h)[1],
                       nn.LeakyReLU(negative_slope), nn.Dropout(dropout)]
            c = h
        layers.append(nn.Linear(c, num_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(self, feats: Tensor) -> Tensor:
        """feats: (B, in_channels) -> logits (B, num_classes)."""
        return self.mlp(feats)

    def loss(self, logits: Tensor, labels: Tensor) -> dict:
        """logits (B, C), labels (B,) -> ``{'loss_cls', 'acc'}``."""
        loss = smooth_cross_entropy(logits, labels, self.label_smoothing) * self.loss_weight
        acc = (logits.argmax(dim=1) == labels).float().mean() * 100
        return dict(loss_cls=loss, acc=acc.detach())
