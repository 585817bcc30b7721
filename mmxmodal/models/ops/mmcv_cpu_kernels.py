"""PyTorch (CPU) implementations of mmcv 2.x compiled kernels that have no CPU version.

mmcv 2.1 registers only CUDA implementations of its sparse-convolution kernels (the spconv 1.x port behind
``mmcv.ops.SubMConv3d`` / ``SparseConv3d`` / ``SparseInverseConv3d``, used by mmdet3d's Cylinder3D) and of
``dynamic_point_to_voxel`` (mmcv's ``DynamicScatter``, mmdet3d's ``dynamic_scatter_3d``). The functions here have
the signatures and return values of those ``mmcv._ext`` entries and follow their CUDA source
(``mmcv/ops/csrc/pytorch/cuda/spconv_ops_cuda.cu``, ``scatter_points_cuda.cu``) step by step, so that mmcv's own
Python code (``SparseConvolution.forward``, the autograd ``Function`` classes, the indice-key cache of
``SparseConvTensor``) runs unchanged on top of them:

- ``get_indice_pairs_{2,3,4}d_forward``: the gather / scatter index pairs of every kernel offset, in mmcv's layout
  ``(kernel_volume, 2, num_in)`` int32, row 0 the input row, row 1 the output row, ``-1`` padded; kernel offsets
  in row-major order of the kernel dims (the weight layout ``(*kernel, in, out)``). Submanifold: output rows are
  the input rows, stride 1 and padding ``kernel // 2`` whatever the module's padding (as mmcv). Regular: output
  sites are the distinct reachable ones, sorted by ``batch * volume + row-major site`` (mmcv's ``_unique`` order).
- ``indice_conv_forward`` / ``indice_conv_backward``: gather - GEMM - scatter-add per kernel offset over the
  pairs found (the pairs' kernel volume, not the weight's: a layer that reuses another layer's ``indice_key``
  uses that layer's pairs, as on the GPU). For submanifold layers the offset with the most pairs is computed as a
  plain ``features @ W[k]`` (mmcv's shortcut; for a submanifold layer this is the centre, whose pairs are the
  identity). ``inverse`` swaps the roles of the two rows.
- ``dynamic_point_to_voxel_forward`` / ``_backward``: voxels are the distinct coordinate rows (``unique``,
  lexicographic); a row with any negative entry belongs to no voxel (map ``-1``); ``max`` backward sends each
  voxel-channel gradient to the lowest-index point that attains the maximum (mmcv's ``atomicMin`` rule for ties).

Importing this module changes nothing; :mod:`mmxmodal.cpu` routes CPU tensors to it.
"""
from typing import List, Sequence

import torch
from torch import Tensor


def _prod(xs: Sequence[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _row_major(sites: Tensor, shape: Sequence[int]) -> Tensor:
    """Row-major linear index of (..., D) int64 sites in a grid of the given shape."""
    key = torch.zeros(sites.shape[:-1], dtype=torch.long, device=sites.device)
    for d, size in enumerate(shape):
        key = key * int(size) + sites[..., d]
    return key


def _unravel(key: Tensor, shape: Sequence[int]) -> Tensor:
    cols = []
    for size in reversed(list(shape)):
        cols.append(key % int(size))
        key = torch.div(key, int(size), rounding_mode='floor')
    return torch.stack(cols[::-1], -1)


def _kernel_offsets(ksize: Sequence[int], device) -> Tensor:
    """(kernel_volume, D) offsets, row-major (the last kernel dim fastest), as mmcv's weight layout."""
    grids = torch.meshgrid(*[torch.arange(int(k), device=device) for k in ksize], indexing='ij')
    return torch.stack(grids, -1).reshape(-1, len(ksize)).long()


def get_indice_pairs_forward(indices: Tensor, batch_size: int, out_shape: Sequence[int],
                             spatial_shape: Sequence[int], ksize: Sequence[int], stride: Sequence[int],
                             padding: Sequence[int], dilation: Sequence[int], out_padding: Sequence[int],
                             subm: int, transpose: int) -> List[Tensor]:
    """``mmcv._ext.get_indice_pairs_{N}d_forward`` for CPU tensors: ``[out_indices, indice_pairs, indice_num]``."""
    if transpose:
        raise NotImplementedError('mmxmodal.cpu: transposed sparse convolution (SparseConvTranspose*) has no CPU '
                                  'implementation here')
    ndim = indices.shape[1] - 1
    ksize, stride, padding, dilation = (list(map(int, v)) for v in (ksize, stride, padding, dilation))
    out_shape = list(map(int, out_shape))
    if subm:  # mmcv: stride 1 and padding kernel // 2 for submanifold pairs, whatever the module says
        stride = [1] * ndim
        padding = [k // 2 for k in ksize]
    kv = _prod(ksize)
    n = indices.shape[0]
    dev = indices.device
    pairs = torch.full((kv, 2, n), -1, dtype=torch.int32, device=dev)
    num = torch.zeros(kv, dtype=torch.int32, device=dev)
    if n == 0:
        return [indices if subm else indices.new_zeros((0, ndim + 1)), pairs, num]
    idx = indices.long()
    batch, site = idx[:, 0], idx[:, 1:]
    offs = _kernel_offsets(ksize, dev)                                              # (K, D)
    s = torch.tensor(stride, device=dev)
    top = site[None] + torch.tensor(padding, device=dev) - offs[:, None] * torch.tensor(dilation, device=dev)
    out_site = torch.div(top, s, rounding_mode='floor')                             # (K, N, D)
    valid = ((top - out_site * s) == 0).all(-1) & (out_site >= 0).all(-1) & \
        (out_site < torch.tensor(out_shape, device=dev)).all(-1)
    vol_out = _prod(out_shape)
    key = batch[None] * vol_out + _row_major(out_site.clamp(min=0), out_shape)     # (K, N)
    if subm:
        in_key = batch * vol_out + _row_major(site, out_shape)
        sorted_key, order = torch.sort(in_key)
        pos = torch.searchsorted(sorted_key, key).clamp(max=n - 1)
        valid &= sorted_key[pos] == key
        out_row = order[pos]
        out_indices = indices
    else:
        uniq = torch.unique(key[valid])                                             # sorted, as mmcv's _unique
        out_row = torch.searchsorted(uniq, key).clamp(max=max(uniq.numel() - 1, 0))
        out_indices = torch.cat([torch.div(uniq, vol_out, rounding_mode='floor')[:, None],
                                 _unravel(uniq % vol_out, out_shape)], 1).to(indices.dtype)
    counts = valid.sum(1)
    num.copy_(counts.to(torch.int32))
    slot = torch.cumsum(valid, 1) - 1
    k_idx, in_row = valid.nonzero(as_tuple=True)
    col = slot[k_idx, in_row]
    pairs[k_idx, 0, col] = in_row.to(torch.int32)
    pairs[k_idx, 1, col] = out_row[k_idx, in_row].to(torch.int32)
    return [out_indices, pairs, num]


def _max_offset(indice_num: Tensor) -> int:
    nums = indice_num.tolist()
    return nums.index(max(nums)) if nums else 0   # std::max_element: the first maximum


def indice_conv_forward(features: Tensor, filters: Tensor, indice_pairs: Tensor, indice_num: Tensor,
                        num_act_out: int, inverse: int, subm: int) -> Tensor:
    """``mmcv._ext.indice_conv_forward`` for CPU tensors (no autograd: mmcv's ``Function`` wraps it)."""
    kv = indice_pairs.shape[0]
    c_in, c_out = features.shape[1], filters.shape[-1]
    w = filters.reshape(-1, c_in, c_out)
    nums = indice_num.tolist()
    m = _max_offset(indice_num)
    out = features.new_zeros((int(num_act_out), c_out))
    if subm:
        torch.mm(features, w[m], out=out)
    src_row, dst_row = (1, 0) if inverse else (0, 1)
    for k in range(kv):
        nh = nums[k]
        if nh <= 0 or (subm and k == m):
            continue
        src = indice_pairs[k, src_row, :nh].long()
        dst = indice_pairs[k, dst_row, :nh].long()
        out.index_add_(0, dst, features.index_select(0, src) @ w[k])
    return out


def indice_conv_backward(features: Tensor, filters: Tensor, out_grad: Tensor, indice_pairs: Tensor,
                         indice_num: Tensor, inverse: int, subm: int) -> List[Tensor]:
    """``mmcv._ext.indice_conv_backward`` for CPU tensors: ``[input_grad, filters_grad]``."""
    kv = indice_pairs.shape[0]
    c_in, c_out = features.shape[1], filters.shape[-1]
    w = filters.reshape(-1, c_in, c_out)
    nums = indice_num.tolist()
    m = _max_offset(indice_num)
    w_grad = torch.zeros_like(w)
    in_grad = torch.zeros_like(features)
    if subm:
        w_grad[m] = features.t() @ out_grad
        in_grad = out_grad @ w[m].t()
    src_row, dst_row = (1, 0) if inverse else (0, 1)
    for k in range(kv):
        nh = nums[k]
        if nh <= 0 or (subm and k == m):
            continue
        src = indice_pairs[k, src_row, :nh].long()
        dst = indice_pairs[k, dst_row, :nh].long()
        x = features.index_select(0, src)
        g = out_grad.index_select(0, dst)
        w_grad[k] = x.t() @ g
        in_grad.index_add_(0, src, g @ w[k].t())
    return [in_grad, w_grad.view_as(filters)]


# ------------------------------------------------------------------------------------------------ dynamic scatter
def dynamic_point_to_voxel_forward(feats: Tensor, coors: Tensor, reduce_type: str) -> List[Tensor]:
    """``mmcv._ext.dynamic_point_to_voxel_forward`` for CPU tensors:
    ``[voxel_feats, voxel_coors, point2voxel_map (int32), voxel_points_count (int32)]``."""
    if reduce_type not in ('max', 'sum', 'mean'):
        raise ValueError(f'reduce type must be max, sum or mean, got {reduce_type!r}')
    if feats.shape[0] == 0:
        return [feats.clone().detach(), coors.clone().detach(), coors.new_empty((0, ), dtype=torch.int32),
                coors.new_empty((0, ), dtype=torch.int32)]
    clean = coors.masked_fill(coors.lt(0).any(-1, keepdim=True), -1)
    out_coors, cmap, count = torch.unique(clean, dim=0, return_inverse=True, return_counts=True)
    if bool(out_coors[0, 0] < 0):
        out_coors, count, cmap = out_coors[1:], count[1:], cmap - 1
    m = out_coors.shape[0]
    keep = cmap >= 0
    index = cmap[keep][:, None].expand(-1, feats.shape[1])
    src = feats[keep]
    if reduce_type == 'max':
        out = feats.new_full((m, feats.shape[1]), float('-inf')).scatter_reduce(0, index, src, reduce='amax')
    else:
        out = feats.new_zeros((m, feats.shape[1])).scatter_add(0, index, src)
        if reduce_type == 'mean':
            out = out / count[:, None].to(out.dtype)
    return [out, out_coors, cmap.to(torch.int32), count.to(torch.int32)]


def dynamic_point_to_voxel_backward(grad_feats: Tensor, grad_reduced_feats: Tensor, feats: Tensor,
                                    reduced_feats: Tensor, coors_map: Tensor, reduce_count: Tensor,
                                    reduce_type: str) -> None:
    """``mmcv._ext.dynamic_point_to_voxel_backward`` for CPU tensors (fills ``grad_feats`` in place)."""
    grad_feats.fill_(0)
    n, m = feats.shape[0], reduced_feats.shape[0]
    if n == 0 or m == 0:
        return
    cmap = coors_map.long()
    keep = cmap >= 0
    rows = keep.nonzero(as_tuple=True)[0]
    to = cmap[keep]
    if reduce_type in ('sum', 'mean'):
        g = grad_reduced_feats[to]
        if reduce_type == 'mean':
            g = g / reduce_count.long()[to][:, None].to(g.dtype)
        grad_feats[rows] = g
        return
    # max: the gradient of (voxel, channel) goes to the lowest point index attaining the maximum (mmcv's atomicMin)
    c = feats.shape[1]
    hit = feats[rows] == reduced_feats[to]
    cand = torch.where(hit, rows[:, None].expand(-1, c), torch.full_like(hit, n, dtype=torch.long))
    src_of = torch.full((m, c), n, dtype=torch.long, device=feats.device).scatter_reduce(
        0, to[:, None].expand(-1, c), cand, reduce='amin')
    ok = src_of < n
    vox, ch = ok.nonzero(as_tuple=True)
    grad_feats[src_of[vox, ch], ch] = grad_reduced_feats[vox, ch]
