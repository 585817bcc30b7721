"""mmxmodal.cpu's ``mmcv-sparse-conv-cpu`` / ``mmcv-dynamic-scatter-cpu`` groups: mmcv 2.1's sparse convolutions
(``SubMConv3d``, ``SparseConv3d``, ``SparseInverseConv3d``, the layers of mmdet3d's Cylinder3D) and dynamic scatter
on CPU tensors, checked against dense references computed independently (``torch.nn.functional.conv3d`` /
``conv_transpose3d`` on the densified grid, float64), gradients included, ties and empty inputs included."""
import importlib

import pytest
import torch
import torch.nn.functional as F

import mmxmodal.cpu  # noqa: F401  (also installed by tests/conftest.py)
from mmxmodal.models.ops import mmcv_cpu_kernels as K

GRID = [7, 6, 5]


def _sites(n, batch_size=2, grid=GRID, seed=0):
    """n distinct random (batch, z, y, x) sites, int32."""
    g = torch.Generator().manual_seed(seed)
    vol = grid[0] * grid[1] * grid[2]
    keys = torch.randperm(batch_size * vol, generator=g)[:n].sort().values
    b, r = keys // vol, keys % vol
    site = torch.stack([r // (grid[1] * grid[2]), (r // grid[2]) % grid[1], r % grid[2]], 1)
    return torch.cat([b[:, None], site], 1).int()


def _dense(feats, idx, batch_size, grid):
    """(B, C, *grid) float64 grid with the features at their sites, zeros elsewhere."""
    out = torch.zeros(batch_size, feats.shape[1], *grid, dtype=torch.float64)
    i = idx.long()
    out[i[:, 0], :, i[:, 1], i[:, 2], i[:, 3]] = feats.double()
    return out


def _at(dense, idx):
    i = idx.long()
    return dense[i[:, 0], :, i[:, 1], i[:, 2], i[:, 3]]


def _torch_weight(w):
    """mmcv's (*kernel, in, out) -> torch's (out, in, *kernel)."""
    return w.double().permute(4, 3, 0, 1, 2)


def _spconv_tensor(feats, idx, grid, batch_size):
    from mmcv.ops import SparseConvTensor
    return SparseConvTensor(feats, idx, grid, batch_size)


def _fill(conv, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.3)
        if conv.bias is not None:
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g))
    return conv


def test_mmcv_weight_layout_is_kernel_in_out():
    from mmcv.ops import SparseConv3d, SubMConv3d
    assert SubMConv3d(3, 5, (1, 3, 2)).weight.shape == (1, 3, 2, 3, 5)
    assert SparseConv3d(3, 5, 3).weight.shape == (3, 3, 3, 3, 5)


@pytest.mark.parametrize('ksize', [(3, 3, 3), (1, 3, 3), (3, 1, 3), (3, 1, 1), (2, 3, 1)])
@pytest.mark.parametrize('bias', [False, True])
def test_submconv3d_matches_dense_conv(ksize, bias):
    """mmcv's SubMConv3d (module padding ignored: mmcv pads kernel // 2) == dense conv3d at the active sites."""
    from mmcv.ops import SubMConv3d
    idx = _sites(60)
    x = torch.randn(60, 4, dtype=torch.float32, requires_grad=True)
    conv = _fill(SubMConv3d(4, 5, ksize, padding=1, bias=bias, indice_key='k'), 1)
    out = conv(_spconv_tensor(x, idx, GRID, 2))
    assert torch.equal(out.indices, idx)
    xd = _dense(x.detach(), idx, 2, GRID).requires_grad_()
    wd = _torch_weight(conv.weight.detach()).requires_grad_()
    ref = _at(F.conv3d(xd, wd, padding=[k // 2 for k in ksize]), idx)
    if bias:
        ref = ref + conv.bias.detach().double()
    torch.testing.assert_close(out.features.double(), ref, rtol=1e-5, atol=1e-5)
    # backward against autograd of the dense reference
    g = torch.randn(ref.shape, dtype=torch.float64)
    (out.features * g.float()).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(x.grad.double(), _at(xd.grad, idx), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.weight.grad.double(), wd.grad.permute(2, 3, 4, 1, 0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('ksize,stride,padding,dilation', [
    (3, 2, 1, 1), (3, (2, 2, 1), 1, 1), (2, 2, 0, 1), (3, 1, 0, 2), ((3, 1, 3), (1, 2, 2), (1, 0, 1), 1)])
def test_sparseconv3d_matches_dense_conv_sites_and_values(ksize, stride, padding, dilation):
    """Regular sparse conv: the output sites are exactly the sites whose receptive field holds an active input
    (sorted by batch, then row-major site), several inputs of one output site are summed."""
    from mmcv.ops import SparseConv3d
    idx = _sites(70, seed=3)
    x = torch.randn(70, 3, requires_grad=True)
    conv = _fill(SparseConv3d(3, 4, ksize, stride=stride, padding=padding, dilation=dilation, indice_key='p'), 2)
    out = conv(_spconv_tensor(x, idx, GRID, 2))
    xd = _dense(x.detach(), idx, 2, GRID).requires_grad_()
    wd = _torch_weight(conv.weight.detach()).requires_grad_()
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    occupied = F.conv3d(_dense(torch.ones(70, 1), idx, 2, GRID), torch.ones(1, 1, *wd.shape[2:],
                                                                             dtype=torch.float64), **kw)[:, 0] > 0
    want = occupied.nonzero().int()  # (batch, z, y, x) in row-major order
    assert torch.equal(out.indices, want)
    assert list(out.spatial_shape) == list(occupied.shape[1:])
    ref = _at(F.conv3d(xd, wd, **kw), want) + conv.bias.detach().double()
    torch.testing.assert_close(out.features.double(), ref, rtol=1e-5, atol=1e-5)
    g = torch.randn(ref.shape, dtype=torch.float64)
    (out.features * g.float()).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(x.grad.double(), _at(xd.grad, idx), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.weight.grad.double(), wd.grad.permute(2, 3, 4, 1, 0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('stride', [2, (2, 2, 1)])
def test_inverse_conv_is_the_transpose_of_its_keyed_conv(stride):
    """SparseInverseConv3d(indice_key=k) == conv_transpose3d of the keyed conv's output grid, read at the keyed
    conv's input sites (which it restores, in their order)."""
    from mmcv.ops import SparseConv3d, SparseInverseConv3d
    idx = _sites(50, seed=5)
    x = torch.randn(50, 3)
    down = _fill(SparseConv3d(3, 4, 3, stride=stride, padding=1, indice_key='d'), 3)
    up = _fill(SparseInverseConv3d(4, 2, 3, indice_key='d', bias=True), 4)
    mid = down(_spconv_tensor(x, idx, GRID, 2))
    y = mid.features.detach().requires_grad_()
    mid.features = y
    out = up(mid)
    assert torch.equal(out.indices, idx) and list(out.spatial_shape) == GRID
    yd = _dense(y.detach(), mid.indices, 2, mid.spatial_shape).requires_grad_()
    wd = up.weight.detach().double().permute(3, 4, 0, 1, 2).requires_grad_()  # (in, out, *k) for conv_transpose
    s = [stride] * 3 if isinstance(stride, int) else list(stride)
    size = [(o - 1) * si - 2 + 3 for o, si in zip(mid.spatial_shape, s)]
    dense = F.conv_transpose3d(yd, wd, stride=s, padding=1, output_padding=[g - z for g, z in zip(GRID, size)])
    ref = _at(dense, idx) + up.bias.detach().double()
    torch.testing.assert_close(out.features.double(), ref, rtol=1e-5, atol=1e-5)
    g = torch.randn(ref.shape, dtype=torch.float64)
    (out.features * g.float()).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(y.grad.double(), _at(yd.grad, mid.indices), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(up.weight.grad.double(), wd.grad.permute(2, 3, 4, 0, 1), rtol=1e-5, atol=1e-5)


def test_reused_indice_key_uses_the_first_layers_pairs_as_mmcv_does():
    """A SubM layer that reuses an indice key takes the pairs of the layer that made it (Cylinder3D's blocks share
    one key between (1, 3, 3) and (3, 1, 3) kernels): its flattened weight rows are applied at the first layer's
    kernel offsets, and a larger kernel uses only its first rows -- what mmcv's CUDA kernel computes."""
    from mmcv.ops import SubMConv3d
    idx = _sites(60, seed=7)
    x = torch.randn(60, 4)
    first = _fill(SubMConv3d(4, 4, (1, 3, 3), indice_key='shared'), 5)
    second = _fill(SubMConv3d(4, 3, (3, 1, 3), indice_key='shared'), 6)
    third = _fill(SubMConv3d(4, 3, (3, 3, 3), indice_key='shared'), 7)
    t = first(_spconv_tensor(x, idx, GRID, 2))
    xd = _dense(t.features.detach(), idx, 2, GRID)
    for layer, rows in ((second, 9), (third, 9)):
        out = layer(t)
        w = layer.weight.detach().reshape(-1, 4, 3)[:rows].reshape(1, 3, 3, 4, 3)
        ref = _at(F.conv3d(xd, _torch_weight(w), padding=(0, 1, 1)), idx) + layer.bias.detach().double()
        torch.testing.assert_close(out.features.double(), ref, rtol=1e-5, atol=1e-5)


def test_empty_inputs():
    from mmcv.ops import SparseConv3d, SparseInverseConv3d, SubMConv3d
    idx = torch.zeros(0, 4, dtype=torch.int32)
    x = torch.zeros(0, 3, requires_grad=True)
    sub = SubMConv3d(3, 4, 3, indice_key='s')
    down = SparseConv3d(4, 4, 3, stride=2, padding=1, indice_key='d')
    up = SparseInverseConv3d(4, 4, 3, indice_key='d')
    t = sub(_spconv_tensor(x, idx, GRID, 1))
    assert t.features.shape == (0, 4)
    t = down(t)
    assert t.features.shape == (0, 4) and t.indices.shape == (0, 4)
    t = up(t)
    assert t.features.shape == (0, 4)
    t.features.sum().backward()
    assert x.grad.shape == (0, 3) and torch.equal(sub.weight.grad, torch.zeros_like(sub.weight))


def test_kernels_in_float64():
    """The kernels themselves take float64 (mmcv's Python wrappers only pass float32 / half)."""
    idx = _sites(40, seed=9)
    x = torch.randn(40, 3, dtype=torch.float64)
    w = torch.randn(3, 3, 3, 3, 2, dtype=torch.float64)
    outids, pairs, num = K.get_indice_pairs_forward(idx, 2, GRID, GRID, [3] * 3, [1] * 3, [0] * 3, [1] * 3,
                                                    [0] * 3, 1, 0)
    assert pairs.shape == (27, 2, 40) and int(num[13]) == 40 and int(num.max()) == 40
    assert (num[torch.arange(27) != 13] < 40).all()  # the centre is the only offset with every site: no tie
    out = K.indice_conv_forward(x, w, pairs, num, 40, 0, 1)
    ref = _at(F.conv3d(_dense(x, idx, 2, GRID), _torch_weight(w), padding=1), idx)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    go = torch.randn(40, 2, dtype=torch.float64)
    gx, gw = K.indice_conv_backward(x, w, go, pairs, num, 0, 1)
    xd = _dense(x, idx, 2, GRID).requires_grad_()
    wd = _torch_weight(w).requires_grad_()
    (_at(F.conv3d(xd, wd, padding=1), idx) * go).sum().backward()
    torch.testing.assert_close(gx, _at(xd.grad, idx), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, wd.grad.permute(2, 3, 4, 1, 0), rtol=1e-12, atol=1e-12)


def test_transposed_conv_is_refused_on_cpu():
    from mmcv.ops import SparseConvTranspose3d
    conv = SparseConvTranspose3d(3, 3, 3, stride=2)
    with pytest.raises(NotImplementedError, match='transposed'):
        conv(_spconv_tensor(torch.randn(5, 3), _sites(5), GRID, 2))


# ------------------------------------------------------------------------------------------------ dynamic scatter
def _scatter_loop(feats, coors, reduce):
    rows = {}
    for i, c in enumerate(coors.tolist()):
        if min(c) >= 0:
            rows.setdefault(tuple(c), []).append(i)
    keys = sorted(rows)
    out = []
    for k in keys:
        f = feats[rows[k]]
        out.append(f.max(0).values if reduce == 'max' else f.sum(0) if reduce == 'sum' else f.mean(0))
    return torch.stack(out), torch.tensor(keys, dtype=coors.dtype), rows, keys


@pytest.mark.parametrize('reduce', ['max', 'mean', 'sum'])
@pytest.mark.parametrize('module', ['mmcv.ops.scatter_points', 'mmdet3d.models.data_preprocessors.voxelize'])
def test_dynamic_scatter_matches_a_loop_with_ties(reduce, module):
    fn = importlib.import_module(module)._DynamicScatter.apply
    g = torch.Generator().manual_seed(0)
    coors = torch.randint(-1, 3, (80, 3), generator=g).int()
    feats = torch.randint(0, 3, (80, 2), generator=g).double().requires_grad_()  # many ties for max
    out = fn(feats, coors, reduce)
    ref, ref_coors, rows, keys = _scatter_loop(feats.detach(), coors, reduce)
    torch.testing.assert_close(out[0], ref)
    assert torch.equal(out[1], ref_coors)
    gout = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    (out[0] * gout).sum().backward()
    want = torch.zeros_like(feats)
    for v, k in enumerate(keys):
        r = rows[k]
        for c in range(2):
            if reduce == 'max':  # mmcv: the lowest point index that attains the maximum takes the gradient
                first = next(i for i in r if feats[i, c] == ref[v, c])
                want[first, c] = gout[v, c]
            else:
                want[r, c] = gout[v, c] / (len(r) if reduce == 'mean' else 1)
    torch.testing.assert_close(feats.grad, want)


def test_dynamic_scatter_point2voxel_map_and_empty_input():
    from mmdet3d.models.data_preprocessors.voxelize import dynamic_scatter_3d
    from mmcv.ops import dynamic_scatter
    coors = torch.tensor([[1, 0, 0], [0, 2, 1], [1, 0, 0], [0, -1, 3]], dtype=torch.int32)
    feats = torch.arange(8.).reshape(4, 2)
    vf, vc, p2v = dynamic_scatter_3d(feats, coors, 'mean', True)
    assert torch.equal(vc, torch.tensor([[0, 2, 1], [1, 0, 0]], dtype=torch.int32))
    assert p2v.dtype == torch.int32 and p2v.tolist() == [1, 0, 1, -1]
    torch.testing.assert_close(vf, torch.tensor([[2., 3.], [2., 3.]]))
    vf, vc = dynamic_scatter(torch.zeros(0, 2), torch.zeros(0, 3, dtype=torch.int32), 'max')
    assert vf.shape == (0, 2) and vc.shape == (0, 3)
    vf, vc = dynamic_scatter(torch.ones(2, 2), -torch.ones(2, 3, dtype=torch.int32), 'max')  # every point dropped
    assert vf.shape == (0, 2) and vc.shape == (0, 3)


# ------------------------------------------------------------------------------------------------ install / revert
def test_cuda_tensors_keep_mmcvs_kernels():
    from mmxmodal.cpu.install import _CpuFallbackExt
    calls = []

    class Compiled:
        def indice_conv_forward(self, *a):
            calls.append('compiled')
            return 'compiled'

        other = 'passed through'

    class FakeCuda(torch.Tensor):
        is_cuda = True

    ext = _CpuFallbackExt(Compiled(), {'indice_conv_forward': lambda *a: 'cpu'})
    assert ext.indice_conv_forward(torch.zeros(1).as_subclass(FakeCuda), 1) == 'compiled'
    assert ext.indice_conv_forward(torch.zeros(1), 1) == 'cpu'
    assert ext.other == 'passed through' and calls == ['compiled']


def test_groups_install_idempotently_and_revert():
    from mmcv.ops import SubMConv3d
    from mmcv.ops import scatter_points, sparse_ops
    from mmdet3d.models.data_preprocessors import voxelize
    groups = ['mmcv-sparse-conv-cpu', 'mmcv-dynamic-scatter-cpu']
    mmxmodal.cpu.install(groups)
    patched = (sparse_ops.ext_module, scatter_points.ext_module, voxelize.ext_module)
    mmxmodal.cpu.install(groups)  # idempotent
    assert (sparse_ops.ext_module, scatter_points.ext_module, voxelize.ext_module) == patched
    conv = SubMConv3d(2, 2, 3)
    x = _spconv_tensor(torch.randn(4, 2), _sites(4), GRID, 2)
    try:
        mmxmodal.cpu.uninstall(groups)
        import mmcv._ext as ext
        assert sparse_ops.ext_module is ext and scatter_points.ext_module is ext and voxelize.ext_module is ext
        with pytest.raises(RuntimeError, match='not implemented on CPU|not found'):
            conv(x)
    finally:
        mmxmodal.cpu.install(groups)
    assert conv(x).features.shape == (4, 2)
