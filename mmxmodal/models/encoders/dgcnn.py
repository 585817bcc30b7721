"""DGCNN encoder of CrossPoint (classification-style DGCNN, Wang et al. 2019).

Why not mmdet3d's ``DGCNNBackbone``: that one is the *segmentation* DGCNN (``DGCNNGFModule``: two stacked
1x1 convs per graph-feature module, three modules, 64-64-64 channels, no global pooling) and groups through
``mmcv.ops``-style kNN, whose kernel (and ``mmxmodal.models.ops.knn``) ranks 3-D coordinates only. CrossPoint's
classification DGCNN has four single-conv EdgeConv layers (64/64/128/256, BN + LeakyReLU(0.2)), dynamic kNN
in *feature* space, concatenation, a 1x1 conv to ``emb_dims`` and global max + avg pooling, so it is written
here as :class:`DGCNNEncoder` with the same parameter shapes as the original. Its kNN runs in C-dimensional
feature space with ``torch.topk`` on batched pairwise scores (CPU and GPU).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmdet3d.registry import MODELS

# Upper bound (bytes) of one (chunk, N, N) pairwise-score block in :func:`knn_indices`.
_KNN_BLOCK_BYTES = 256 * 1024 * 1024


@torch.no_grad()
def knn_indices(x: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` nearest neighbours (the point itself included) in feature space.

    Args:
        x: (B, N, C) features (any C; DGCNN's dynamic graph is built on features, not only xyz).
        k: number of neighbours.

    Returns:
        (B, N, k) int64 neighbour indices into N (unordered).

    The ranking score ``2 <x_i, x_j> - |x_j|^2`` equals ``|x_i|^2 - |x_i - x_j|^2``, so one ``baddbmm`` gives
    the order of the squared distances without forming ``|x_i|^2``. Computed without autograd and in batch
    chunks, so at most ~256 MB of (chunk, N, N) scores exist at a time.
    """
    B, N, C = x.shape
    assert k <= N, f'k={k} > number of points {N}'
    sq = (x * x).sum(dim=2).unsqueeze(1)  # (B, 1, N)
    xt = x.transpose(1, 2)
    chunk = max(1, _KNN_BLOCK_BYTES // (N * N * x.element_size()))
    out = []
    for s in range(0, B, chunk):
        score = torch.baddbmm(-sq[s:s + chunk], x[s:s + chunk], xt[s:s + chunk], beta=1.0, alpha=2.0)
        out.append(score.topk(k, dim=-1, sorted=False)[1])
    return torch.cat(out, dim=0)


def _edge_bn_act_max(nb: Tensor, ctr: Tensor, idx: Tensor, bn: nn.BatchNorm2d, negative_slope: float) -> Tensor:
    """``max_k LeakyReLU(BN(nb[idx] + ctr))`` -> (B, N, C), exactly, for edge values ``e_ik = nb_j(i,k) + ctr_i``.

    Args:
        nb: (B, N, C) neighbour term of every point; ctr: (B, N, C) centre term; idx: (B, N, k) neighbours.

    BN is a per-channel affine map ``a * e + b`` (batch or running statistics) and LeakyReLU is increasing, so the
    max over k commutes with both when ``a >= 0`` (a min when ``a < 0``): the affine map and the activation run
    on (B, N, C), k times fewer elements. The batch statistics of the (B, N, k, C) edge values are computed from
    the in-degree ``cnt_j`` of every point, ``S_i = sum_k nb_j(i,k)`` and the per-point terms, centred to avoid
    cancellation:

        mean = a + b,  a = sum_j cnt_j nb_j / n,  b = mean_i ctr_i,  n = B N k
        n var = sum_j cnt_j (nb_j - a)^2 + k sum_i (ctr_i - b)^2 + 2 sum_i (ctr_i - b) (S_i - k a)

    so the only (B, N, k, C) tensor is the transient gather of ``nb`` (autograd keeps just indices of it).
    Running statistics are updated exactly as ``nn.BatchNorm2d`` does.
    """
    B, N, C = nb.shape
    k = idx.shape[-1]
    flat = (idx + torch.arange(B, device=nb.device).view(B, 1, 1) * N).view(-1)  # row b * N + j
    nb2, ctr2 = nb.reshape(B * N, C), ctr.reshape(B * N, C)
    g = nb2[flat].view(B, N, k, C)
    use_batch_stats = bn.training or not bn.track_running_stats
    if use_batch_stats:
        n = B * N * k
        cnt = torch.bincount(flat, minlength=B * N).to(nb.dtype).unsqueeze(1)  # (B N, 1) in-degrees
        a = (cnt * nb2).sum(0) / n
        b = ctr2.mean(0)
        mean = a + b
        dn, dc = nb2 - a, ctr2 - b
        s_nb = g.sum(dim=2).reshape(B * N, C)
        var = ((cnt * dn * dn).sum(0) + k * (dc * dc).sum(0) + 2 * (dc * (s_nb - k * a)).sum(0)) / n
        var = var.clamp(min=0)
        if bn.training and bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                m = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
                bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                bn.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1)), alpha=m)
    else:
        mean, var = bn.running_mean, bn.running_var
    scale = torch.rsqrt(var + bn.eps)
    if bn.affine:
        scale = scale * bn.weight
    shift = -mean * scale + (bn.bias if bn.affine else 0.0)
    picked = g.max(dim=2)[0]
    neg = scale < 0
    if bool(neg.any()):
        picked = torch.where(neg, g.min(dim=2)[0], picked)
    return F.leaky_relu((picked + ctr) * scale + shift, negative_slope)


class EdgeConv(nn.Module):
    """One EdgeConv layer: ``max_j LeakyReLU(BN(W [x_j - x_i ; x_i]))`` over the k nearest neighbours j of i.

    The parameters are those of the original ``Conv2d(2C, C_out, 1, bias=False)`` + ``BatchNorm2d`` on the
    (B, 2C, N, k) edge tensor (same state-dict keys and shapes as ``conv`` / ``bn``), but:

    - the product is evaluated as ``W_a x_j + (W_b - W_a) x_i`` (``W = [W_a, W_b]``): one matmul per point
      instead of per edge (k times fewer FLOPs), and the (B, 2C, N, k) edge-feature tensor is never built;
    - with a plain ``BatchNorm2d`` the max over k is taken before the affine BN map and the activation, and the
      BN statistics come from per-point sums (:func:`_edge_bn_act_max`), so the (B, N, k, C_out) edge tensor
      is never formed either (only a transient gather of the neighbour term).

    Outputs, gradients and running statistics equal the reference formulation (``reference_forward``) up to
    float rounding. Other norms (e.g. ``SyncBN``) take the unfused path ``max_k(act(bn(edge)))``.

    Args:
        in_channels: C.
        out_channels: C_out.
        k: neighbours.
        norm_cfg: 2-D norm config (``BN2d``; ``SyncBN`` for multi-GPU).
        negative_slope: LeakyReLU slope.
        fuse_max: use :func:`_edge_bn_act_max` when the norm is a plain ``BatchNorm2d``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 k: int,
                 norm_cfg: dict = dict(type='BN2d'),
                 negative_slope: float = 0.2,
                 fuse_max: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.k = in_channels, out_channels, k
        self.negative_slope, self.fuse_max = negative_slope, fuse_max
        self.conv = nn.Conv2d(2 * in_channels, out_channels, kernel_size=1, bias=False)
        self.bn = build_norm_layer(norm_cfg, out_channels)[1]
        self.act = nn.LeakyReLU(negative_slope=negative_slope)

    def forward(self, x: Tensor, idx: Optional[Tensor] = None) -> Tensor:
        """x: (B, N, C) -> (B, N, C_out); ``idx`` (B, N, k) overrides the kNN graph (default: kNN on x)."""
        B, N, C = x.shape
        if idx is None:
            idx = knn_indices(x, self.k)
        k, Co = idx.shape[-1], self.out_channels
        w = self.conv.weight.view(Co, 2 * C)
        w_nb = w[:, :C]
        # (B, N, 2 C_out): neighbour term W_a x and centre term (W_b - W_a) x of every point, one matmul.
        per_point = x @ torch.cat([w_nb, w[:, C:] - w_nb], 0).t()
        nb, ctr = per_point[..., :Co], per_point[..., Co:]
        if self.fuse_max and type(self.bn) in (nn.BatchNorm2d, nn.BatchNorm1d):
            return _edge_bn_act_max(nb, ctr, idx, self.bn, self.negative_slope)
        flat = (idx + torch.arange(B, device=x.device).view(B, 1, 1) * N).view(-1)  # row b * N + j
        edge = nb.reshape(B * N, Co)[flat].view(B, N, k, Co) + ctr.unsqueeze(2)  # (B, N, k, C_out)
        return self.act(self.bn(edge.permute(0, 3, 1, 2))).max(dim=-1)[0].transpose(1, 2)


@MODELS.register_module()
class DGCNNEncoder(BaseModule):
    """CrossPoint / DGCNN classification encoder.

    Args:
        in_channels: point channels used (3 = xyz; extra channels such as normals are used if > 3).
        k: neighbours of each EdgeConv (CrossPoint pretraining uses 15 or 20, fine-tuning 20).
        edge_channels: output channels of the EdgeConv layers.
        emb_dims: channels of the final 1x1 conv; the global feature is ``2 * emb_dims`` (max ++ avg pool).
        out_type: ``'global'`` -> (B, 2 * emb_dims); ``'point'`` -> (B, N, emb_dims);
            ``'both'`` -> (global, point).
        norm_cfg: norm config for the EdgeConv layers (2-D); the 1x1 conv uses the matching 1-D norm.
        fuse_max: see :class:`EdgeConv`.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=..., prefix='point_encoder.')``.

    Input: ``points`` (B, N, C) in the object frame (C >= in_channels; only the first ``in_channels`` are used).
    Works channels-last throughout, (B, N, C), so no transposes are needed between layers.
    """

    def __init__(self,
                 in_channels: int = 3,
                 k: int = 20,
                 edge_channels: Sequence[int] = (64, 64, 128, 256),
                 emb_dims: int = 1024,
                 out_type: str = 'global',
                 norm_cfg: dict = dict(type='BN2d'),
                 negative_slope: float = 0.2,
                 fuse_max: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        assert out_type in ('global', 'point', 'both'), out_type
        self.in_channels, self.k, self.emb_dims, self.out_type = in_channels, k, emb_dims, out_type
        layers, c = [], in_channels
        for c_out in edge_channels:
            layers.append(EdgeConv(c, c_out, k, norm_cfg=norm_cfg, negative_slope=negative_slope,
                                   fuse_max=fuse_max))
            c = c_out
        self.edge_convs = nn.ModuleList(layers)
        norm1d = dict(norm_cfg, type=norm_cfg['type'].replace('2d', '1d'))
        self.conv5 = nn.Conv1d(sum(edge_channels), emb_dims, kernel_size=1, bias=False)
        self.bn5 = build_norm_layer(norm1d, emb_dims)[1]
        self.act5 = nn.LeakyReLU(negative_slope=negative_slope)

    @property
    def out_channels(self) -> int:
        """Channels of the global feature."""
        return 2 * self.emb_dims

    def forward(self, points: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """points: (B, N, C) object frame -> see ``out_type``."""
        B, N = points.shape[:2]
        x = points[..., :self.in_channels].contiguous()
        feats = []
        for layer in self.edge_convs:
            x = layer(x)
            feats.append(x)
        x = torch.cat(feats, dim=2).view(B * N, -1)  # (B N, sum(edge_channels))
        x = self.act5(self.bn5(F.linear(x, self.conv5.weight.squeeze(-1))))  # 1x1 conv + BN over B N points
        x = x.view(B, N, self.emb_dims)
        if self.out_type == 'point':
            return x
        glob = torch.cat([x.max(dim=1)[0], x.mean(dim=1)], dim=1)  # (B, 2 * emb)
        if self.out_type == 'both':
            return glob, x
        return glob


def reference_edge_features(x: Tensor, k: int) -> Tensor:
    """CrossPoint's original ``get_graph_feature`` (dense kNN + gathered (B, 2C, N, k) tensor).

    Kept as the reference for tests and the throughput benchmark; not used by :class:`DGCNNEncoder`.
    """
    B, C, N = x.shape
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x**2, dim=1, keepdim=True)
    idx = (-xx - inner - xx.transpose(2, 1)).topk(k=k, dim=-1)[1]
    idx = (idx + torch.arange(B, device=x.device).view(-1, 1, 1) * N).view(-1)
    xt = x.transpose(2, 1).contiguous()
    feature = xt.view(B * N, -1)[idx, :].view(B, N, k, C)
    xt = xt.view(B, N, 1, C).repeat(1, 1, k, 1)
    return torch.cat((feature - xt, xt), dim=3).permute(0, 3, 1, 2).contiguous()


def reference_forward(encoder: DGCNNEncoder, points: Tensor) -> Tensor:
    """Forward of ``encoder``'s weights the way CrossPoint's code does it: (B, N, C) -> (B, 2 * emb)."""
    x = points[..., :encoder.in_channels].transpose(1, 2).contiguous()
    feats = []
    for layer in encoder.edge_convs:
        e = reference_edge_features(x, encoder.k)
        x = layer.act(layer.bn(F.conv2d(e, layer.conv.weight))).max(dim=-1)[0]
        feats.append(x)
    x = encoder.act5(encoder.bn5(encoder.conv5(torch.cat(feats, dim=1))))
    return torch.cat([F.adaptive_max_pool1d(x, 1).flatten(1), F.adaptive_avg_pool1d(x, 1).flatten(1)], dim=1)
