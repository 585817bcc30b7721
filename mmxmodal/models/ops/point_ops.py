"""Point ops with one entry point each, dispatched by the tensor's device.

mmcv's furthest point sampling, ball query, kNN, grouping, gathering and three-nn interpolation have CUDA kernels
only. Each function below runs mmcv's CUDA op on CUDA tensors and a pure-PyTorch implementation with the same
semantics (index order, tie-breaking, padding rules of the CUDA kernels) on CPU tensors.

:func:`patch_mmcv_point_ops` installs the same dispatch inside mmcv's autograd ``Function`` classes, so mmdet3d
modules that call mmcv directly (``PointNet2SASSG``, ``PointSAModule``, ``PointFPModule``, ``DGCNNGFModule`` ...)
run on the CPU with stock configs. ``import mmxmodal`` applies it.
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
        v, i = d2.topk(3, dim=-1, largest=False, sorted=True)
        dist[:, s:s + _CHUNK], idx[:, s:s + _CHUNK] = v, i.int()
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


# ----------------------------------------------------------------------------------------------- public API
def _mmcv():
    """mmcv's op modules (``mmcv.ops`` re-exports functions under the same names, so import the modules)."""
    from importlib import import_module
    names = ('ball_query', 'furthest_point_sample', 'gather_points', 'group_points', 'knn', 'three_interpolate',
             'three_nn')
    return tuple(import_module(f'mmcv.ops.{n}') for n in names)


def furthest_point_sample(xyz: Tensor, num_points: int) -> Tensor:
    """(B, N, 3) -> (B, num_points) int32 indices (mmcv CUDA op on GPU, PyTorch on CPU)."""
    return _mmcv()[1].FurthestPointSampling.apply(xyz.contiguous(), num_points)


def furthest_point_sample_with_dist(dist: Tensor, num_points: int) -> Tensor:
    """(B, N, N) distances -> (B, num_points) int32 indices."""
    return _mmcv()[1].FurthestPointSamplingWithDist.apply(dist.contiguous(), num_points)


def ball_query(min_radius: float, max_radius: float, sample_num: int, xyz: Tensor, center_xyz: Tensor) -> Tensor:
    """(B, N, 3), (B, M, 3) -> (B, M, sample_num) int32 indices."""
    return _mmcv()[0].BallQuery.apply(min_radius, max_radius, sample_num, xyz.contiguous(), center_xyz.contiguous())


def knn(k: int, xyz: Tensor, center_xyz: Optional[Tensor] = None, transposed: bool = False) -> Tensor:
    """mmcv semantics: -> (B, k, M) int32 indices of the k nearest points, nearest first."""
    return _mmcv()[4].KNN.apply(k, xyz, center_xyz, transposed)


def grouping_operation(features: Tensor, idx: Tensor) -> Tensor:
    """features (B, C, N), idx (B, M, S) -> (B, C, M, S); differentiable in ``features``."""
    return _mmcv()[3].GroupingOperation.apply(features.contiguous(), idx.contiguous())


def gather_points(features: Tensor, idx: Tensor) -> Tensor:
    """features (B, C, N), idx (B, M) -> (B, C, M); differentiable in ``features``."""
    return _mmcv()[2].GatherPoints.apply(features.contiguous(), idx.contiguous())


def three_nn(target: Tensor, source: Tensor) -> Tuple[Tensor, Tensor]:
    """(B, N, 3), (B, M, 3) -> dist (B, N, 3), idx (B, N, 3) int32."""
    return _mmcv()[6].ThreeNN.apply(target, source)


def three_interpolate(features: Tensor, idx: Tensor, weight: Tensor) -> Tensor:
    """features (B, C, M), idx (B, N, 3), weight (B, N, 3) -> (B, C, N); differentiable in ``features``."""
    return _mmcv()[5].ThreeInterpolate.apply(features.contiguous(), idx.contiguous(), weight.contiguous())


# ----------------------------------------------------------------------------------------------- mmcv patch
def _dispatch_forward(cls, cpu_forward, device_arg: int):
    """Replace ``cls.forward`` by one that runs ``cpu_forward(ctx, *args)`` when ``args[device_arg]`` is on CPU."""
    cuda_forward = cls.forward

    def forward(ctx, *args):
        t = args[device_arg]
        if t is None and device_arg + 1 < len(args):
            t = args[device_arg + 1]
        if isinstance(t, Tensor) and t.is_cuda:
            return cuda_forward(ctx, *args)
        return cpu_forward(ctx, *args)

    forward.__doc__ = cuda_forward.__doc__
    forward._mmxmodal_cpu = True
    cls.forward = staticmethod(forward)


def _dispatch_backward(cls, cpu_backward):
    cuda_backward = cls.backward

    def backward(ctx, *grads):
        if grads[0].is_cuda:
            return cuda_backward(ctx, *grads)
        return cpu_backward(ctx, *grads)

    cls.backward = staticmethod(backward)


def patch_mmcv_point_ops() -> bool:
    """Make mmcv's point-op ``Function`` classes run on CPU tensors. Idempotent; returns False if mmcv has no
    ops (then nothing is patched)."""
    try:
        bq, fps, gp, grp, kn, ti, tn = _mmcv()
    except ImportError:
        return False
    if getattr(fps.FurthestPointSampling.forward, '_mmxmodal_cpu', False):
        return True

    def nondiff(ctx, out):
        ctx.mark_non_differentiable(out)
        return out

    _dispatch_forward(fps.FurthestPointSampling, lambda ctx, xyz, m: nondiff(ctx, fps_cpu(xyz, m)), 0)
    _dispatch_forward(fps.FurthestPointSamplingWithDist,
                      lambda ctx, d, m: nondiff(ctx, fps_with_dist_cpu(d, m)), 0)

    def bq_cpu(ctx, min_r, max_r, ns, xyz, center, xyz_cnt=None, center_cnt=None):
        if xyz_cnt is not None or center_cnt is not None:
            raise NotImplementedError('stacked (batch_cnt) ball query has no CPU fallback; use the (B, N, 3) form')
        return nondiff(ctx, ball_query_cpu(min_r, max_r, ns, xyz, center))

    _dispatch_forward(bq.BallQuery, bq_cpu, 3)
    _dispatch_forward(kn.KNN, lambda ctx, k, xyz, c=None, tr=False: nondiff(ctx, knn_cpu(k, xyz, c, tr)), 1)

    def tn_cpu(ctx, target, source):
        dist, idx = three_nn_cpu(target, source)
        ctx.mark_non_differentiable(idx)
        return dist, idx

    _dispatch_forward(tn.ThreeNN, tn_cpu, 0)

    def grp_fwd(ctx, features, idx, *rest):
        if rest and rest[0] is not None:
            raise NotImplementedError('stacked grouping_operation has no CPU fallback')
        ctx.mmx = (idx, features.shape[2])
        return _flat_gather(features, idx)

    def grp_bwd(ctx, grad):
        idx, n = ctx.mmx
        return _flat_scatter(grad, idx, n), None, None, None

    _dispatch_forward(grp.GroupingOperation, grp_fwd, 0)
    _dispatch_backward(grp.GroupingOperation, grp_bwd)

    def gp_fwd(ctx, features, idx):
        ctx.mmx = (idx, features.shape[2])
        ctx.mark_non_differentiable(idx)
        return _flat_gather(features, idx)

    def gp_bwd(ctx, grad):
        idx, n = ctx.mmx
        return _flat_scatter(grad, idx, n), None

    _dispatch_forward(gp.GatherPoints, gp_fwd, 0)
    _dispatch_backward(gp.GatherPoints, gp_bwd)

    def ti_fwd(ctx, features, idx, weight):
        ctx.mmx = (idx, weight, features.shape[2])
        return three_interpolate_cpu(features, idx, weight)

    def ti_bwd(ctx, grad):
        idx, weight, m = ctx.mmx
        return _flat_scatter(grad[..., None] * weight[:, None], idx, m), None, None

    _dispatch_forward(ti.ThreeInterpolate, ti_fwd, 0)
    _dispatch_backward(ti.ThreeInterpolate, ti_bwd)
    return True
