"""Point-level features from mmdet3d's sparse voxel encoder (``SparseEncoder`` of SECOND / CenterPoint).

``SparseEncoder.forward`` returns only the BEV-dense map after ``conv_out`` (C * D channels at the last stride),
so :func:`sparse_encoder_forward` runs the *same sub-modules* (``conv_input``, ``encoder_layers``, ``conv_out``)
step by step and also keeps the sparse tensor of every stage. A point then gets its features by index maps, not
interpolation: its voxel coordinate in the input grid (the voxelisation of the data preprocessor) is carried
through every strided sparse convolution (``o = clamp(floor((i + padding) / stride))``, a site whose receptive
field contains ``i``; it is active because the input voxel is), and looked up among the active sites of the
stage (:func:`lookup_sparse_sites`). ``'bev'`` gathers the point's cell of the BEV-dense output (the tensor the
detector heads see). Sources are concatenated; a point is valid in a view only when every lookup succeeds (e.g.
not when the point is outside the grid or its voxel was dropped by ``max_voxels``).

The encoder's parameters are used unchanged, so the state-dict keys stay ``pts_middle_encoder.*``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

try:  # spconv 2.x (what mmdet3d uses when installed)
    from spconv.pytorch import SparseConvTensor
    from spconv.pytorch.conv import SparseConvolution
except ImportError:  # pragma: no cover - mmcv's sparse ops
    from mmcv.ops import SparseConvTensor
    from mmcv.ops.sparse_conv import SparseConvolution


def point_voxel_coords(xyz: Tensor, point_cloud_range: Sequence[float], voxel_size: Sequence[float],
                       grid_shape_zyx: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Voxel coordinate of each point, as mmcv's voxelisation computes it.

    Args:
        xyz: (N, 3) points (x, y, z) in the frame of the voxel grid.
        point_cloud_range: (x_min, y_min, z_min, x_max, y_max, z_max).
        voxel_size: (vx, vy, vz).
        grid_shape_zyx: (D, H, W) number of voxels along z, y, x.

    Returns:
        coords (N, 3) int64 (z, y, x) and in-grid mask (N,) bool.
    """
    lo = xyz.new_tensor(point_cloud_range[:3])
    size = xyz.new_tensor(voxel_size)
    c = torch.floor((xyz[:, :3] - lo) / size).long()[:, [2, 1, 0]]
    shape = torch.as_tensor(list(grid_shape_zyx), device=xyz.device, dtype=torch.long)
    inside = ((c >= 0) & (c < shape)).all(1)
    return c, inside


def _keys(coords_bzyx: Tensor, shape_zyx: Sequence[int]) -> Tensor:
    d, h, w = (int(s) for s in shape_zyx)
    c = coords_bzyx.long()
    return ((c[:, 0] * d + c[:, 1]) * h + c[:, 2]) * w + c[:, 3]


def lookup_sparse_sites(query_bzyx: Tensor, sites_bzyx: Tensor, shape_zyx: Sequence[int]) -> Tensor:
    """Row of ``sites_bzyx`` (K, 4) equal to each row of ``query_bzyx`` (M, 4), or -1 (int64 (M,)).

    Coordinates are (batch, z, y, x) in a grid of ``shape_zyx``; queries outside the grid return -1.
    """
    if query_bzyx.shape[0] == 0 or sites_bzyx.shape[0] == 0:
        return torch.full((query_bzyx.shape[0], ), -1, dtype=torch.long, device=query_bzyx.device)
    shape = torch.as_tensor([int(s) for s in shape_zyx], device=query_bzyx.device)
    inside = ((query_bzyx[:, 1:] >= 0) & (query_bzyx[:, 1:] < shape)).all(1) & (query_bzyx[:, 0] >= 0)
    site_keys = _keys(sites_bzyx, shape_zyx)
    order = torch.argsort(site_keys)
    sorted_keys = site_keys[order]
    q = _keys(query_bzyx.clamp(min=0), shape_zyx)
    pos = torch.searchsorted(sorted_keys, q).clamp(max=sorted_keys.shape[0] - 1)
    found = inside & (sorted_keys[pos] == q)
    return torch.where(found, order[pos], torch.full_like(pos, -1))


def _triple(v) -> Tuple[int, int, int]:
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in v) if len(v) == 3 else (int(v[0]), ) * 3
    return (int(v), ) * 3


def _downsample(coords: Tensor, shape: Tuple[int, ...], conv: nn.Module) -> Tuple[Tensor, Tuple[int, ...]]:
    """Carry (M, 3) zyx coordinates and the grid shape through one strided (non-submanifold) sparse conv."""
    k, s, p, d = (_triple(conv.kernel_size), _triple(conv.stride), _triple(conv.padding), _triple(conv.dilation))
    out_shape = tuple((shape[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(3))
    step = torch.as_tensor(s, device=coords.device)
    pad = torch.as_tensor(p, device=coords.device)
    hi = torch.as_tensor(out_shape, device=coords.device) - 1
    out = torch.div(coords + pad, step, rounding_mode='floor')
    out = torch.minimum(torch.clamp(out, min=0), hi)
    return out, out_shape


def _strided_convs(module: nn.Module) -> List[nn.Module]:
    return [m for m in module.modules() if isinstance(m, SparseConvolution) and not m.subm]


def sparse_encoder_stage_names(encoder: nn.Module) -> List[str]:
    """Names accepted as feature sources: ``conv_input``, ``encoder_layer1`` .. ``encoder_layerN``, ``bev``."""
    return ['conv_input'] + [name for name, _ in encoder.encoder_layers.named_children()] + ['bev']


def sparse_encoder_channels(encoder: nn.Module) -> Dict[str, int]:
    """Output channels of every source of :func:`sparse_encoder_stage_names` (``bev``: C * D of conv_out)."""
    chans = {'conv_input': encoder.base_channels}
    shape = tuple(int(s) for s in encoder.sparse_shape)
    dummy = torch.zeros(1, 3, dtype=torch.long)
    for name, stage in encoder.encoder_layers.named_children():
        for conv in _strided_convs(stage):
            _, shape = _downsample(dummy, shape, conv)
        chans[name] = int(encoder.encoder_channels[int(name.replace('encoder_layer', '')) - 1][-1])
    for conv in _strided_convs(encoder.conv_out):
        _, shape = _downsample(dummy, shape, conv)
    if min(shape) < 1:
        raise ValueError(f'SparseEncoder sparse_shape {list(encoder.sparse_shape)} collapses to {list(shape)} at '
                         'conv_out; use a taller z grid (e.g. 41 as SECOND / CenterPoint)')
    chans['bev'] = int(encoder.output_channels) * int(shape[0])
    return chans


def sparse_encoder_forward(encoder: nn.Module, voxel_features: Tensor, coors: Tensor,
                           batch_size: int) -> Tuple[Dict[str, SparseConvTensor], Tensor]:
    """Run ``SparseEncoder`` like its ``forward`` and keep the intermediate sparse tensors.

    Args:
        encoder: an mmdet3d ``SparseEncoder`` (any ``block_type`` / paddings).
        voxel_features: (K, C) voxel features (e.g. ``HardSimpleVFE`` output).
        coors: (K, 4) int (batch, z, y, x) voxel coordinates.
        batch_size: number of samples.

    Returns:
        dict of sparse tensors (``conv_input``, ``encoder_layer*``, ``conv_out``) and the BEV-dense map
        (B, C * D, H, W), identical to ``encoder(voxel_features, coors, batch_size)``.
    """
    x = SparseConvTensor(voxel_features, coors.int(), encoder.sparse_shape, batch_size)
    x = encoder.conv_input(x)
    stages = {'conv_input': x}
    for name, layer in encoder.encoder_layers.named_children():
        x = layer(x)
        stages[name] = x
    out = encoder.conv_out(x)
    stages['conv_out'] = out
    dense = out.dense()
    n, c, d, h, w = dense.shape
    return stages, dense.view(n, c * d, h, w)


def gather_sparse_point_features(encoder: nn.Module, stages: Dict[str, SparseConvTensor], bev: Tensor,
                                 point_bzyx: Tensor, sources: Sequence[str],
                                 with_features: bool = True) -> Tuple[Optional[Tensor], Tensor, Tensor]:
    """Features of points from the stages of :func:`sparse_encoder_forward` via index maps.

    Args:
        encoder: the ``SparseEncoder`` that produced ``stages`` (its strided convs define the index maps).
        stages, bev: outputs of :func:`sparse_encoder_forward`.
        point_bzyx: (M, 4) int64 (batch, z, y, x) input-grid voxel coordinate of each point.
        sources: names from :func:`sparse_encoder_stage_names`, concatenated in this order.
        with_features: False = only validity and cells (features None).

    Returns:
        features (M, sum of channels) or None; valid (M,) bool (every lookup found an active site; features of
        invalid rows are zeros); cell (M,) int64 key of the point's site at the finest requested source (points
        with the same key share that source's feature), -1 when invalid.
    """
    m = point_bzyx.shape[0]
    batch = point_bzyx[:, 0]
    coords = point_bzyx[:, 1:]
    shape = tuple(int(s) for s in encoder.sparse_shape)
    per_stage = {}
    x_coords, x_shape = coords, shape
    per_stage['conv_input'] = (x_coords, x_shape)
    for name, stage in encoder.encoder_layers.named_children():
        for conv in _strided_convs(stage):
            x_coords, x_shape = _downsample(x_coords, x_shape, conv)
        per_stage[name] = (x_coords, x_shape)
    for conv in _strided_convs(encoder.conv_out):
        x_coords, x_shape = _downsample(x_coords, x_shape, conv)
    per_stage['conv_out'] = (x_coords, x_shape)

    feats, valid, cell, cell_size = [], torch.ones(m, dtype=torch.bool, device=point_bzyx.device), None, -1
    for src in sources:
        key = 'conv_out' if src == 'bev' else src
        if key not in per_stage:
            raise KeyError(f'unknown sparse feature source {src!r}; choose from {sparse_encoder_stage_names(encoder)}')
        c, s = per_stage[key]
        st = stages[key]
        if tuple(int(v) for v in st.spatial_shape) != tuple(s):
            raise RuntimeError(f'index map of {key} predicts grid {s}, the encoder produced {tuple(st.spatial_shape)}')
        q = torch.cat([batch[:, None], c], 1)
        idx = lookup_sparse_sites(q, st.indices, s)
        ok = idx >= 0
        valid &= ok
        if with_features:
            if src == 'bev':
                f = bev[batch, :, c[:, 1].clamp(0, bev.shape[2] - 1), c[:, 2].clamp(0, bev.shape[3] - 1)]
            else:
                f = st.features[idx.clamp(min=0)]
            feats.append(f * ok[:, None].to(f.dtype))
        size = s[0] * s[1] * s[2] if src != 'bev' else s[1] * s[2]
        if size > cell_size:
            cell_size = size
            key_q = q.clamp(min=0) if src != 'bev' else q.clamp(min=0) * q.new_tensor([1, 0, 1, 1])  # BEV: no z
            cell = _keys(key_q, s)
    feat = torch.cat(feats, 1) if with_features else None
    cell = torch.where(valid, cell, torch.full_like(cell, -1)) if cell is not None else torch.full(
        (m, ), -1, dtype=torch.long, device=point_bzyx.device)
    return feat, valid, cell
