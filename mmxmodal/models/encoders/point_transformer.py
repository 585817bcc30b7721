"""Point-BERT-style transformer over point groups, with a projection into the shared embedding space."""
from typing import Dict, Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS

from ..ops.point_ops import furthest_point_sample, knn


def group_points(xyz: Tensor, num_groups: int, group_size: int) -> Tuple[Tensor, Tensor, Tensor]:
    """FPS centres + kNN groups (device-dispatched ops of ``mmxmodal.models.ops``).

    Args:
        xyz: (B, N, 3) points.

    Returns:
        centers (B, G, 3), groups (B, G, K, 3) in the centre's local frame (point - centre), idx (B, G, K) long.
    """
    xyz = xyz.contiguous().float()
    b, n, _ = xyz.shape
    c_idx = furthest_point_sample(xyz, num_groups).long()  # (B, G)
    centers = torch.gather(xyz, 1, c_idx.unsqueeze(-1).expand(-1, -1, 3))
    idx = knn(group_size, xyz, centers.contiguous()).transpose(1, 2).long().contiguous()  # (B, G, K)
    groups = torch.gather(xyz, 1, idx.reshape(b, -1, 1).expand(-1, -1, 3)).view(b, num_groups, group_size, 3)
    return centers, groups - centers.unsqueeze(2), idx


class MiniPointNet(nn.Module):
    """Point-BERT group embedding: shared MLP -> max -> concat(global, local) -> MLP -> max.
    (B, G, K, 3) -> (B, G, C)."""

    def __init__(self, out_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Conv1d(3, hidden, 1), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                   nn.Conv1d(hidden, 2 * hidden, 1))
        self.second = nn.Sequential(nn.Conv1d(4 * hidden, 4 * hidden, 1), nn.BatchNorm1d(4 * hidden),
                                    nn.ReLU(inplace=True), nn.Conv1d(4 * hidden, out_channels, 1))

    def forward(self, groups: Tensor) -> Tensor:
        b, g, k, _ = groups.shape
        x = self.first(groups.reshape(b * g, k, 3).transpose(1, 2))  # (BG, 2h, K)
        glob = x.max(dim=2, keepdim=True)[0]
        x = self.second(torch.cat([glob.expand(-1, -1, k), x], dim=1))
        return x.max(dim=2)[0].view(b, g, -1)


@MODELS.register_module()
class PointTransformerEncoder(BaseModule):
    """Point-BERT-style encoder: groups -> mini-PointNet tokens + centre positional MLP -> [cls] + transformer ->
    concat(cls, max over group tokens) -> linear projection.

    Args:
        num_groups, group_size: G FPS centres with K nearest points each.
        embed_dims, depth, num_heads, mlp_ratio: transformer width / blocks.
        out_channels: dimension of the shared embedding space (projection output).
        group_dims: Point-BERT / ULIP layout: the mini-PointNet outputs ``group_dims`` channels and a linear
            ``reduce_dim`` maps them to ``embed_dims`` (Point-BERT: 256 -> 384). None: the mini-PointNet outputs
            ``embed_dims`` directly.
        pos_every_block: Point-BERT / ULIP layout: add the positional embedding before every block (``x =
            block(x + pos)``) instead of once before the first.

    ``forward(points, mask=None)``:
        points: (B, N, 3+) (xyz first).
        mask: optional (B, G) bool; masked group tokens are replaced by a learnable mask token (positions kept).
        returns dict(feat=(B, out_channels), tokens=(B, G, embed_dims), centers=(B, G, 3),
            groups=(B, G, K, 3) local points of each group).
    """

    def __init__(self, num_groups: int = 64, group_size: int = 32, embed_dims: int = 384, depth: int = 12,
                 num_heads: int = 6, mlp_ratio: float = 4.0, out_channels: int = 512,
                 group_dims: Optional[int] = None, pos_every_block: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_groups, self.group_size, self.embed_dims = num_groups, group_size, embed_dims
        self.out_channels = out_channels
        self.group_embed = MiniPointNet(group_dims or embed_dims)
        self.reduce_dim = nn.Linear(group_dims, embed_dims) if group_dims else None
        self.pos_every_block = pos_every_block
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, embed_dims))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        for p in (self.cls_token, self.cls_pos, self.mask_token):
            nn.init.trunc_normal_(p, std=0.02)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(embed_dims, num_heads, int(embed_dims * mlp_ratio), dropout=0.0,
                                       activation='gelu', batch_first=True, norm_first=True)
            for _ in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dims)
        self.proj = nn.Linear(2 * embed_dims, out_channels)

    def forward(self, points: Tensor, mask: Optional[Tensor] = None,
                grouped: Optional[Tuple[Tensor, Tensor]] = None) -> Dict[str, Tensor]:
        """See the class docstring; ``grouped=(centers, groups)`` reuses a grouping."""
        if grouped is None:
            centers, groups, _ = group_points(points[..., :3], self.num_groups, self.group_size)
        else:
            centers, groups = grouped
        tok = self.group_embed(groups)  # (B, G, C)
        if self.reduce_dim is not None:
            tok = self.reduce_dim(tok)
        if mask is not None:
            m = mask.to(tok.dtype).unsqueeze(-1)
            tok = tok * (1 - m) + self.mask_token * m
        b = tok.shape[0]
        x = torch.cat([self.cls_token.expand(b, -1, -1), tok], 1)
        pos = torch.cat([self.cls_pos.expand(b, -1, -1), self.pos_embed(centers)], 1)
        if not self.pos_every_block:
            x = x + pos
        for blk in self.blocks:
            x = blk(x + pos if self.pos_every_block else x)
        x = self.norm(x)
        feat = self.proj(torch.cat([x[:, 0], x[:, 1:].max(dim=1)[0]], dim=-1))
        return dict(feat=feat, tokens=x[:, 1:], centers=centers, groups=groups)
