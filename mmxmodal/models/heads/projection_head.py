"""Projection head of contrastive pretraining (SimCLR / CrossPoint ``inv_head``)."""
from typing import List, Optional, Union

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmdet3d.registry import MODELS


@MODELS.register_module()
class ProjectionHead(BaseModule):
    """``Linear -> BN -> ReLU -> Linear``: (B, in_channels) -> (B, out_channels).

    CrossPoint: point head 2048 -> 1024 -> 256 with biases; image head 2048 -> 512 -> 256 without biases.

    Args:
        in_channels: input feature size.
        hidden_channels: hidden size.
        out_channels: embedding size.
        bias: whether the two linear layers have biases.
        norm_cfg: 1-D norm config (``BN1d``; ``SyncBN`` for multi-GPU).
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int,
                 out_channels: int,
                 bias: bool = True,
                 norm_cfg: dict = dict(type='BN1d'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.fc1 = nn.Linear(in_channels, hidden_channels, bias=bias)
        self.bn = build_norm_layer(norm_cfg, hidden_channels)[1]
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden_channels, out_channels, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, in_channels) -> (B, out_channels)."""
        return self.fc2(self.act(self.bn(self.fc1(x))))
