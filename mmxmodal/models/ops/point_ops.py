"""Point ops with one entry point each, dispatched by the tensor's device.

mmcv's furthest point sampling, ball query, kNN, grouping, gathering and three-nn interpolation have CUDA kernels
only. Each public function below runs mmcv's CUDA op on CUDA tensors and a pure-PyTorch implementation with the
same semantics (index order, tie-breaking, padding rules of the CUDA kernels) on CPU tensors. Nothing here changes
mmcv: stock mmdet3d modules that call mmcv directly run on the CPU only after the opt-in
:mod:`mmxmodal.cpu` installs the same kernels into mmcv's autograd ``Function`` classes.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

_CHUNK = 1024  # centres per block in the dense CPU searches (bounds memory to chunk x N)


# ----------------------------------------------------------------------------------------------- CPU kernels
def fps_cpu(xyz: Tensor, num_points: int) -> Tensor:
    """Furthest point sampling. xyz (B, N, 3) -> (B, num_points) int32 indices; starts at index 0 like mmcv."""
    b, n, _ = xyz.shape
    out = torch.zeros(b, num_points, dtype=torch.int32, device=xyz.device)
    if num_points <= 0 or n == 0:
        return out
    pts = xyz.float()
    temp = torch.full((b, n), 1e10, dtype=pts.dtype, device=xyz.device)
    old = torch.zeros(b, dtype=torch.long, device=xyz.device)
    ar = torch.arange(b, device=xyz.device)
    for j in range(1, num_points):
        d = ((pts - pts[ar, old][:, None]) ** 2).sum(-1)
        temp = torch.minimum(temp, d)
        old = temp.argmax(1)
        out[:, j] = old.int()
    return out


def fps_with_dist_cpu(dist: Tensor, num_points: int) -> Tensor:
    """Furthest point sampling on a precomputed (B, N, N) distance matrix -> (B, num_points) int32."""
    b, n, _ = dist.shape
    out = torch.zeros(b, num_points, dtype=torch.int32, device=dist.device)
    if num_points <= 0 or n == 0:
        return out
    temp = torch.full((b, n), 1e10, dtype=dist.dtype, device=dist.device)
    old = torch.zeros(b, dtype=torch.long, device=dist.device)
    ar = torch.arange(b, device=dist.device)
    for j in range(1, num_points):
        temp = torch.minimum(temp, dist[ar, old])
        old = temp.argmax(1)
        out[:, j] = old.int()
    return out


def _sq_dist(a: Tensor, b: Tensor) -> Tensor:
    """Squared distances (B, M, N) between a (B, M, 3) and b (B, N, 3), computed as mmcv does (by difference)."""
    return ((a[:, :, None, :] - b[:, None, :, :])**2).sum(-1)


def ball_query_cpu(min_radius: float, max_radius: float, sample_num: int, xyz: Tensor, center_xyz: Tensor) -> Tensor:
    """Ball query. xyz (B, N, 3), center_xyz (B, M, 3) -> (B, M, sample_num) int32.

    Like the CUDA kernel: the first ``sample_num`` points (in index order) with ``d2 == 0`` or
    ``min_r^2 <= d2 < max_r^2``; empty slots repeat the first hit; a ball with no hit gives zeros.
    """
    b, n, _ = xyz.shape
    m = center_xyz.shape[1]
    out = torch.zeros(b, m, sample_num, dtype=torch.int32, device=xyz.device)
    if n == 0 or m == 0 or sample_num == 0:
        return out
    lo, hi = min_radius**2, max_radius**2
    k = min(sample_num, n)
    # earlier index -> larger score, so topk returns hits in index order
    order = torch.arange(n, 0, -1, device=xyz.device, dtype=torch.float32)
    for s in range(0, m, _CHUNK):
        d2 = _sq_dist(center_xyz[:, s:s + _CHUNK].float(), xyz.float())
        hit = (d2 == 0) | ((d2 >= lo) & (d2 < hi))
        score, idx = (hit.float() * order).topk(k, dim=-1, sorted=True)
        valid = score > 0
        first = torch.where(valid[..., :1], idx[..., :1], torch.zeros_like(idx[..., :1]))
        idx = torch.where(valid, idx, first)
        if k < sample_num:
            idx = torch.cat([idx, first.expand(-1, -1, sample_num - k)], -1)
        out[:, s:s + _CHUNK] = idx.int()
    return out


def knn_cpu(k: int, xyz: Tensor, center_xyz: Optional[Tensor] = None, transposed: bool = False) -> Tensor:
    """k nearest neighbours. xyz (B, N, 3) [(B, 3, N) if transposed], centres likewise -> (B, k, M) int32,
    nearest first."""
    if center_xyz is None:
        center_xyz = xyz
    if transposed:
        xyz, center_xyz = xyz.transpose(1, 2), center_xyz.transpose(1, 2)
    b, m = center_xyz.shape[:2]
    out = torch.empty(b, m, k, dtype=torch.int32, device=xyz.device)
    for s in range(0, m, _CHUNK):
        d2 = _sq_dist(center_xyz[:, s:s + _CHUNK].float(), xyz.float())
        out[:, s:s + _CHUNK] = d2.topk(k, dim=-1, largest=False, sorted=True)[1].int()
    return out.transpose(1, 2).contiguous()


def three_nn_cpu(target: Tensor, source: Tensor) -> Tuple[Tensor, Tensor]:
    """Three nearest source points of every target point: target (B, N, 3), source (B, M, 3) ->
    (dist (B, N, 3) Euclidean, idx (B, N, 3) int32), nearest first."""
    b, n = target.shape[:2]
    dist = torch.empty(b, n, 3, dtype=torch.float32, device=target.device)
    idx = torch.empty(b, n, 3, dtype=torch.int32, device=target.device)
    for s in range(0, n, _CHUNK):
        d2 = _sq_dist(target[:, s:s + _CHUNK].float(), source.float())
        # mmcv's kernel scans sources in index order and replaces a best only on a strictly smaller distance, so
        # on ties the earlier index comes first: a stable sort reproduces that order
        v, i = d2.sort(dim=-1, stable=True)
        dist[:, s:s + _CHUNK], idx[:, s:s + _CHUNK] = v[..., :3], i[..., :3].int()
    return torch.sqrt(dist), idx


def _flat_gather(features: Tensor, idx: Tensor) -> Tensor:
    """features (B, C, N), idx (B, ...) -> (B, C, ...)."""
    b, c, _ = features.shape
    flat = idx.reshape(b, 1, -1).long().expand(b, c, -1)
    return features.gather(2, flat).view(b, c, *idx.shape[1:])


def _flat_scatter(grad: Tensor, idx: Tensor, n: int) -> Tensor:
    """Adjoint of :func:`_flat_gather`: grad (B, C, ...) -> (B, C, n)."""
    b, c = grad.shape[:2]
    flat = idx.reshape(b, 1, -1).long().expand(b, c, -1)
    return grad.new_zeros(b, c, n).scatter_add_(2, flat, grad.reshape(b, c, -1))


def three_interpolate_cpu(features: Tensor, idx: Tensor, weight: Tensor) -> Tensor:
    """features (B, C, M), idx (B, N, 3), weight (B, N, 3) -> (B, C, N) weighted sum of three neighbours."""
    return (_flat_gather(features, idx) * weight[:, None]).sum(-1)


def stack_ball_query_cpu(max_radius: float, sample_num: int, xyz: Tensor, center_xyz: Tensor, xyz_batch_cnt: Tensor,
                         center_xyz_batch_cnt: Tensor) -> Tensor:
    """Stacked ball query (mmcv's ``stack_ball_query`` kernel). xyz (N1+N2.., 3), center_xyz (M1+M2.., 3), counts
    (B,) int32 -> (M1+M2.., sample_num) int32 indices *within each sample*.

    Like the kernel: the first hits with ``d2 < max_r^2`` in index order (no minimum radius), empty slots repeat the
    first hit, and a centre without any hit gets ``-1`` in slot 0 and zeros elsewhere.
    """
    out = torch.zeros(center_xyz.shape[0], sample_num, dtype=torch.int32, device=xyz.device)
    hi = max_radius**2
    xs, cs = 0, 0
    for n, m in zip(xyz_batch_cnt.tolist(), center_xyz_batch_cnt.tolist()):
        if m == 0:
            xs += n
            continue
        if n == 0:
            out[cs:cs + m, 0] = -1
            xs, cs = xs + n, cs + m
            continue
        k = min(sample_num, n)
        order = torch.arange(n, 0, -1, device=xyz.device, dtype=torch.float32)
        for s in range(cs, cs + m, _CHUNK):
            e = min(s + _CHUNK, cs + m)
            d2 = _sq_dist(center_xyz[None, s:e].float(), xyz[None, xs:xs + n].float())[0]
            score, idx = ((d2 < hi).float() * order).topk(k, dim=-1, sorted=True)
            valid = score > 0
            first = idx[:, :1]
            idx = torch.where(valid, idx, first)
            if k < sample_num:
                idx = torch.cat([idx, first.expand(-1, sample_num - k)], -1)
            idx[~valid[:, 0]] = 0
            idx[~valid[:, 0], 0] = -1
            out[s:e] = idx.int()
        xs, cs = xs + n, cs + m
    return out


def _stack_rows(features_batch_cnt: Tensor, idx: Tensor, idx_batch_cnt: Tensor) -> Tuple[Tensor, Tensor]:
    """Global feature rows of stacked indices (M, S) and the entries the mmcv kernel reads.

    The kernel reads ``features[start_b + idx]`` when ``idx < end_b`` (it compares the local index with the batch's
    *global* end); rows outside the tensor (undefined reads on the GPU) are treated as skipped here.
    """
    cnt = features_batch_cnt.long().to(idx.device)
    starts = torch.cumsum(cnt, 0) - cnt
    ends = starts + cnt
    batch = torch.repeat_interleave(torch.arange(len(idx_batch_cnt), device=idx.device),
                                    idx_batch_cnt.long().to(idx.device))
    local = idx.long()
    rows = starts[batch][:, None] + local
    valid = (local < ends[batch][:, None]) & (rows >= 0) & (rows < int(cnt.sum()))
    return torch.where(valid, rows, torch.zeros_like(rows)), valid


def stack_grouping_cpu(features: Tensor, features_batch_cnt: Tensor, idx: Tensor, idx_batch_cnt: Tensor) -> Tensor:
    """Stacked grouping (mmcv's ``stack_group_points`` kernel): features (N1+N2.., C), idx (M1+M2.., S) within each
    sample -> (M1+M2.., C, S); entries the kernel skips stay 0. Differentiable in ``features``."""
    rows, valid = _stack_rows(features_batch_cnt, idx, idx_batch_cnt)
    if features.shape[0] == 0:
        return features.new_zeros(idx.shape[0], features.shape[1], idx.shape[1])
    out = features[rows] * valid[..., None].to(features.dtype)  # (M, S, C)
    return out.permute(0, 2, 1).contiguous()


# ----------------------------------------------------------------------------------------------- public API
def _mmcv_op(name: str):
    """mmcv's op module (``mmcv.ops`` re-exports functions under the same names, so import the module)."""
    from importlib import import_module
    return import_module(f'mmcv.ops.{name}')


def furthest_point_sample(xyz: Tensor, num_points: int) -> Tensor:
    """(B, N, 3) -> (B, num_points) int32 indices (mmcv CUDA op on GPU, PyTorch on CPU)."""
    if xyz.is_cuda:
        return _mmcv_op('furthest_point_sample').furthest_point_sample(xyz.contiguous(), num_points)
    return fps_cpu(xyz, num_points)


def furthest_point_sample_with_dist(dist: Tensor, num_points: int) -> Tensor:
    """(B, N, N) distances -> (B, num_points) int32 indices."""
    if dist.is_cuda:
        return _mmcv_op('furthest_point_sample').furthest_point_sample_with_dist(dist.contiguous(), num_points)
    return fps_with_dist_cpu(dist, num_points)


def ball_query(min_radius: float, max_radius: float, sample_num: int, xyz: Tensor, center_xyz: Tensor) -> Tensor:
    """(B, N, 3), (B, M, 3) -> (B, M, sample_num) int32 indices."""
    if xyz.is_cuda:
        return _mmcv_op('ball_query').ball_query(min_radius, max_radius, sample_num, xyz.contiguous(),
                                                 center_xyz.contiguous())
    return ball_query_cpu(min_radius, max_radius, sample_num, xyz, center_xyz)


def knn(k: int, xyz: Tensor, center_xyz: Optional[Tensor] = None, transposed: bool = False) -> Tensor:
    """mmcv semantics: -> (B, k, M) int32 indices of the k nearest points, nearest first."""
    if xyz.is_cuda:
        return _mmcv_op('knn').knn(k, xyz, center_xyz, transposed)
    return knn_cpu(k, xyz, center_xyz, transposed)


def grouping_operation(features: Tensor, idx: Tensor) -> Tensor:
    """features (B, C, N), idx (B, M, S) -> (B, C, M, S); differentiable in ``features``."""
    if features.is_cuda:
        return _mmcv_op('group_points').grouping_operation(features.contiguous(), idx.contiguous())
    return _flat_gather(features, idx)


def gather_points(features: Tensor, idx: Tensor) -> Tensor:
    """features (B, C, N), idx (B, M) -> (B, C, M); differentiable in ``features``."""
    if features.is_cuda:
        return _mmcv_op('gather_points').gather_points(features.contiguous(), idx.contiguous())
    return _flat_gather(features, idx)


def three_nn(target: Tensor, source: Tensor) -> Tuple[Tensor, Tensor]:
    """(B, N, 3), (B, M, 3) -> dist (B, N, 3), idx (B, N, 3) int32."""
    if target.is_cuda:
        return _mmcv_op('three_nn').three_nn(target.contiguous(), source.contiguous())
    return three_nn_cpu(target, source)


def three_interpolate(features: Tensor, idx: Tensor, weight: Tensor) -> Tensor:
    """features (B, C, M), idx (B, N, 3), weight (B, N, 3) -> (B, C, N); differentiable in ``features``."""
    if features.is_cuda:
        return _mmcv_op('three_interpolate').three_interpolate(features.contiguous(), idx.contiguous(),
                                                               weight.contiguous())
    return three_interpolate_cpu(features, idx, weight)
