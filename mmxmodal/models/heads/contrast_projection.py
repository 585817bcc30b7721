"""Projection head for point / pixel embeddings (Linear-BN-ReLU-Linear, i.e. a conv1x1 MLP on sampled rows)."""
from typing import Sequence

import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn


class _SafeBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that uses the running statistics (no update) for batches of fewer than 2 rows, so that an
    empty or single-row batch neither fails nor writes NaN into the running statistics."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] < 2:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                                self.eps)
        return super().forward(x)


@MODELS.register_module()
class ContrastProjectionHead(BaseModule):
    """MLP ``in -> hidden -> ... -> out`` on (N, C) rows: Linear(+BN+ReLU) per hidden layer, plain Linear last.

    Equivalent to a stack of 1x1 convolutions applied to the sampled point / pixel features. Safe on N = 0.

    Args:
        in_channels: input feature size.
        hidden_channels: sizes of the hidden layers (empty = a single Linear).
        out_channels: embedding size.
        norm: use BatchNorm1d in the hidden layers.
    """

    def __init__(self, in_channels: int, hidden_channels: Sequence[int] = (256, ), out_channels: int = 128,
                 norm: bool = True, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        layers, c = [], in_channels
        for h in hidden_channels:
            layers += [nn.Linear(c, h, bias=not norm)]
            if norm:
                layers.append(_SafeBatchNorm1d(h))
            layers.append(nn.ReLU(inplace=True))
            c = h
        layers.append(nn.Linear(c, out_channels))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, in_channels) -> (N, out_channels)."""
        return self.mlp(x)
