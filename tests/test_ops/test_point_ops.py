"""The CPU fallbacks of mmcv's point ops against brute-force references (and the CUDA ops where a GPU exists)."""
import pytest
import torch

from mmxmodal.models import ops

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def ref_fps(xyz, m):
    out = []
    for pts in xyz:
        sel, temp = [0], torch.full((pts.shape[0], ), 1e10)
        for _ in range(1, m):
            temp = torch.minimum(temp, ((pts - pts[sel[-1]])**2).sum(-1))
            sel.append(int(temp.argmax()))
        out.append(sel)
    return torch.tensor(out, dtype=torch.int32)


def ref_ball_query(rmin, rmax, ns, xyz, centers):
    out = torch.zeros(centers.shape[0], centers.shape[1], ns, dtype=torch.int32)
    for b in range(xyz.shape[0]):
        for i, c in enumerate(centers[b]):
            hits = []
            for k, p in enumerate(xyz[b]):
                d2 = float(((c - p)**2).sum())
                if d2 == 0 or (rmin**2 <= d2 < rmax**2):
                    hits.append(k)
                if len(hits) == ns:
                    break
            if hits:
                out[b, i] = torch.tensor(hits + [hits[0]] * (ns - len(hits)))
    return out


@pytest.fixture
def clouds():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 200, 3, generator=g), torch.rand(2, 30, 3, generator=g)


def test_furthest_point_sample_matches_reference(clouds):
    xyz, _ = clouds
    idx = ops.furthest_point_sample(xyz, 32)
    assert idx.dtype == torch.int32 and idx.shape == (2, 32)
    assert torch.equal(idx, ref_fps(xyz, 32))
    assert all(len(set(r.tolist())) == 32 for r in idx)  # no repeats while points remain


def test_furthest_point_sample_with_dist_equals_xyz_version(clouds):
    xyz, _ = clouds
    dist = ((xyz[:, :, None] - xyz[:, None])**2).sum(-1)
    assert torch.equal(ops.furthest_point_sample_with_dist(dist, 16), ops.furthest_point_sample(xyz, 16))


def test_ball_query_matches_reference(clouds):
    xyz, centers = clouds
    for rmin, rmax, ns in [(0.0, 0.2, 8), (0.05, 0.3, 16), (0.0, 0.01, 4)]:
        assert torch.equal(ops.ball_query(rmin, rmax, ns, xyz, centers), ref_ball_query(rmin, rmax, ns, xyz, centers))


def test_knn_matches_sorting(clouds):
    xyz, centers = clouds
    idx = ops.knn(5, xyz, centers)
    assert idx.shape == (2, 5, 30) and idx.dtype == torch.int32
    d2 = ((centers[:, :, None] - xyz[:, None])**2).sum(-1)
    assert torch.equal(idx.transpose(1, 2).long(), d2.argsort(-1)[..., :5])
    # transposed inputs give the same answer
    assert torch.equal(ops.knn(5, xyz.transpose(1, 2).contiguous(), centers.transpose(1, 2).contiguous(), True), idx)


def test_grouping_and_gather_values_and_gradients(clouds):
    xyz, centers = clouds
    feats = torch.randn(2, 4, 200, requires_grad=True)
    idx = ops.ball_query(0.0, 0.3, 8, xyz, centers)
    grouped = ops.grouping_operation(feats, idx)
    assert grouped.shape == (2, 4, 30, 8)
    expect = torch.stack([feats[b][:, idx[b].long()] for b in range(2)])
    assert torch.allclose(grouped, expect)
    w = torch.randn_like(grouped)
    (g1, ) = torch.autograd.grad((grouped * w).sum(), feats)
    (g2, ) = torch.autograd.grad((expect * w).sum(), feats)
    assert torch.allclose(g1, g2, atol=1e-6)

    sel = ops.furthest_point_sample(xyz, 10)
    gathered = ops.gather_points(feats, sel)
    assert torch.allclose(gathered, torch.stack([feats[b][:, sel[b].long()] for b in range(2)]))
    gathered.sum().backward()
    counts = torch.zeros(2, 200)
    for b in range(2):
        counts[b].index_add_(0, sel[b].long(), torch.ones(10))
    assert torch.allclose(feats.grad, counts[:, None].expand(2, 4, 200))


def test_three_nn_and_interpolate(clouds):
    xyz, centers = clouds
    dist, idx = ops.three_nn(xyz, centers)
    d = ((xyz[:, :, None] - centers[:, None])**2).sum(-1).sqrt()
    v, i = d.topk(3, largest=False)
    assert torch.equal(idx.long(), i) and torch.allclose(dist, v, atol=1e-5)
    feats = torch.randn(2, 5, 30, requires_grad=True)
    weight = torch.rand(2, 200, 3)
    out = ops.three_interpolate(feats, idx, weight)
    ref = torch.stack([(feats[b][:, idx[b].long()] * weight[b][None]).sum(-1) for b in range(2)])
    assert torch.allclose(out, ref, atol=1e-6)
    (g1, ) = torch.autograd.grad(out.sum(), feats)
    (g2, ) = torch.autograd.grad(ref.sum(), feats)
    assert torch.allclose(g1, g2, atol=1e-5)


def test_stock_mmdet3d_pointnet2_runs_on_cpu():
    """mmdet3d's PointNet2SASSG calls mmcv directly; the patch makes it run (forward + backward) on CPU."""
    from mmdet3d.registry import MODELS
    net = MODELS.build(
        dict(type='PointNet2SASSG', in_channels=4, num_points=(64, 32, 16, 8), radius=(0.2, 0.4, 0.8, 1.2),
             num_samples=(16, 16, 8, 8), sa_channels=((16, 16, 32), (32, 32, 64), (32, 32, 64), (32, 32, 64)),
             fp_channels=((64, 64), (64, 64)), norm_cfg=dict(type='BN2d')))
    pts = torch.rand(2, 256, 4)
    out = net(pts)
    assert out['fp_features'][-1].shape[:2] == (2, 64)
    out['fp_features'][-1].sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@cuda
def test_cpu_fallbacks_equal_cuda_ops(clouds):
    xyz, centers = clouds
    assert torch.equal(ops.furthest_point_sample(xyz.cuda(), 32).cpu(), ops.furthest_point_sample(xyz, 32))
    assert torch.equal(ops.ball_query(0., 0.3, 8, xyz.cuda(), centers.cuda()).cpu(),
                       ops.ball_query(0., 0.3, 8, xyz, centers))
    assert torch.equal(ops.knn(5, xyz.cuda(), centers.cuda()).cpu(), ops.knn(5, xyz, centers))
    d_gpu, i_gpu = ops.three_nn(xyz.cuda(), centers.cuda())
    d_cpu, i_cpu = ops.three_nn(xyz, centers)
    assert torch.equal(i_gpu.cpu(), i_cpu) and torch.allclose(d_gpu.cpu(), d_cpu, atol=1e-5)
    feats = torch.randn(2, 4, 200)
    idx = ops.ball_query(0., 0.3, 8, xyz, centers)
    assert torch.allclose(ops.grouping_operation(feats.cuda(), idx.cuda()).cpu(), ops.grouping_operation(feats, idx))
