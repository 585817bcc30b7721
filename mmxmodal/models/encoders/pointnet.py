"""PointNet encoder of CrossPoint (vanilla PointNet without T-Nets, as in the DGCNN/CrossPoint code)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmdet3d.registry import MODELS


@MODELS.register_module()
class PointNetEncoder(BaseModule):
    """Shared point-wise MLP (1x1 Conv1d + BN + ReLU) ``in -> 64 -> 64 -> 64 -> 128 -> emb_dims``, max pool.

    Args:
        in_channels: point channels used (3 = xyz).
        mlp_channels: hidden channels of the shared MLP.
        emb_dims: output channels; the global feature is (B, emb_dims).
        out_type: ``'global'`` -> (B, emb_dims); ``'point'`` -> (B, N, emb_dims); ``'both'`` -> (global, point).

    Input: ``points`` (B, N, C) in the object frame.
    """

    def __init__(self,
                 in_channels: int = 3,
                 mlp_channels: Sequence[int] = (64, 64, 64, 128),
                 emb_dims: int = 1024,
                 out_type: str = 'global',
                 norm_cfg: dict = dict(type='BN1d'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        assert out_type in ('global', 'point', 'both'), out_type
        self.in_channels, self.emb_dims, self.out_type = in_channels, emb_dims, out_type
        chans = [in_channels, *mlp_channels, emb_dims]
        self.mlp = nn.Sequential(*[
            ConvModule(ci, co, 1, conv_cfg=dict(type='Conv1d'), norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'),
                       bias=False) for ci, co in zip(chans[:-1], chans[1:])
        ])

    @property
    def out_channels(self) -> int:
        """Channels of the global feature."""
        return self.emb_dims

    def forward(self, points: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """points: (B, N, C) object frame -> see ``out_type``."""
        x = self.mlp(points[..., :self.in_channels].transpose(1, 2).contiguous())  # (B, emb, N)
        if self.out_type == 'point':
            return x.transpose(1, 2)
        glob = x.amax(dim=-1)
        if self.out_type == 'both':
            return glob, x.transpose(1, 2)
        return glob
