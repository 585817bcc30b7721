"""CPU fallbacks (through mmcv's own functions, as stock mmdet3d calls them, with ``mmxmodal.cpu`` installed) against
line-by-line Python transcriptions of mmcv 2.1's CUDA kernels, on inputs with ties, duplicates, empty balls and
stacked (``batch_cnt``) layouts."""
import pytest
import torch
from mmcv.ops import ball_query, grouping_operation, three_nn

import mmxmodal.cpu  # noqa: F401  (opt-in: routes mmcv's Functions to the CPU kernels)


def kernel_three_nn(unknown, known):
    """three_nn_cuda_kernel.cuh: scan known points in index order, replace a best only on a strictly smaller d."""
    b, n, _ = unknown.shape
    dist, idx = torch.zeros(b, n, 3), torch.zeros(b, n, 3, dtype=torch.int32)
    for bi in range(b):
        for i in range(n):
            best, besti = [1e40] * 3, [0] * 3
            for k in range(known.shape[1]):
                d = float(((unknown[bi, i] - known[bi, k])**2).sum())
                if d < best[0]:
                    best, besti = [d, best[0], best[1]], [k, besti[0], besti[1]]
                elif d < best[1]:
                    best, besti = [best[0], d, best[1]], [besti[0], k, besti[1]]
                elif d < best[2]:
                    best[2], besti[2] = d, k
            dist[bi, i], idx[bi, i] = torch.tensor(best).sqrt(), torch.tensor(besti, dtype=torch.int32)
    return dist, idx


def kernel_stack_ball_query(max_r, ns, xyz, centers, xyz_cnt, centers_cnt):
    """stack_ball_query_cuda_kernel.cuh: d2 < r^2 (no minimum radius), first hit fills the row, -1 if none."""
    out = torch.zeros(centers.shape[0], ns, dtype=torch.int32)
    c_start = 0
    x_start = 0
    for nb, mb in zip(xyz_cnt.tolist(), centers_cnt.tolist()):
        for i in range(c_start, c_start + mb):
            cnt = 0
            for k in range(nb):
                if float(((centers[i] - xyz[x_start + k])**2).sum()) < max_r**2:
                    if cnt == 0:
                        out[i] = k
                    out[i, cnt] = k
                    cnt += 1
                    if cnt >= ns:
                        break
            if cnt == 0:
                out[i, 0] = -1
        c_start, x_start = c_start + mb, x_start + nb
    return out


def kernel_stack_grouping(features, features_cnt, idx, idx_cnt):
    """stack_group_points_cuda_kernel.cuh: out[m, c, s] = features[start_b + idx] if idx < end_b (the local index is
    compared with the batch's *global* end), else 0; reads outside the tensor (undefined on the GPU) give 0."""
    m, ns = idx.shape
    out = torch.zeros(m, features.shape[1], ns, dtype=features.dtype)
    starts = [0]
    for c in features_cnt.tolist():
        starts.append(starts[-1] + c)
    bs, pt_cnt = 0, idx_cnt[0].item()
    for p in range(m):
        while p >= pt_cnt:
            bs += 1
            pt_cnt += idx_cnt[bs].item()
        for s in range(ns):
            j = idx[p, s].item()
            if j < starts[bs + 1] and 0 <= starts[bs] + j < features.shape[0]:
                out[p, :, s] = features[starts[bs] + j]
    return out


def _cloud_with_ties(seed):
    g = torch.Generator().manual_seed(seed)
    known = torch.randint(0, 4, (2, 12, 3), generator=g).float() * 0.5  # a coarse lattice: many equal distances
    known[:, 5] = known[:, 0]  # duplicates
    known[:, 9] = known[:, 0]
    unknown = torch.cat([known[:, :4], torch.randint(0, 4, (2, 20, 3), generator=g).float() * 0.5 + 0.25], 1)
    return unknown.contiguous(), known.contiguous()


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_three_nn_keeps_the_kernel_order_on_ties(seed):
    unknown, known = _cloud_with_ties(seed)
    dist, idx = three_nn(unknown, known)
    ref_d, ref_i = kernel_three_nn(unknown, known)
    assert torch.equal(idx, ref_i)
    torch.testing.assert_close(dist, ref_d)
    # ties really occur in these inputs
    d2 = ((unknown[:, :, None] - known[:, None])**2).sum(-1)
    srt = d2.sort(-1)[0]
    assert bool((srt[..., 0] == srt[..., 1]).any())


@pytest.mark.parametrize('seed', [0, 1])
def test_stacked_ball_query_matches_the_kernel(seed):
    g = torch.Generator().manual_seed(seed)
    xyz_cnt = torch.tensor([7, 0, 12], dtype=torch.int32)
    c_cnt = torch.tensor([4, 2, 5], dtype=torch.int32)
    xyz = torch.randint(0, 5, (int(xyz_cnt.sum()), 3), generator=g).float() * 0.1
    centers = torch.cat([xyz[:3], torch.rand(int(c_cnt.sum()) - 3, 3, generator=g) * 0.5])
    for r, ns in ((0.15, 4), (0.3, 8), (0.01, 3)):
        out = ball_query(0, r, ns, xyz, centers, xyz_cnt, c_cnt)
        assert torch.equal(out, kernel_stack_ball_query(r, ns, xyz, centers, xyz_cnt, c_cnt)), r
    # the empty sample's centres get -1 in slot 0
    assert (out[4:6, 0] == -1).all()


def test_stacked_grouping_matches_the_kernel_with_gradients():
    g = torch.Generator().manual_seed(0)
    f_cnt = torch.tensor([3, 5], dtype=torch.int32)
    i_cnt = torch.tensor([4, 6], dtype=torch.int32)
    feats = torch.randn(8, 5, generator=g, requires_grad=True)
    idx = torch.randint(-1, 9, (10, 3), generator=g, dtype=torch.int32)  # includes out-of-batch indices
    out = grouping_operation(feats, idx, f_cnt, i_cnt)
    ref = kernel_stack_grouping(feats.detach(), f_cnt, idx, i_cnt)
    assert out.shape == (10, 5, 3)
    assert torch.equal(out.detach(), ref)
    w = torch.randn(out.shape, generator=g)
    (grad, ) = torch.autograd.grad((out * w).sum(), feats)
    expect = torch.zeros(8, 5)
    for p in range(10):
        b = 0 if p < 4 else 1
        for s in range(3):
            j = int(idx[p, s])
            start, end = (0, 3) if b == 0 else (3, 8)
            if j < end and 0 <= start + j < 8:  # the gradient of the forward above
                expect[start + j] += w[p, :, s]
    torch.testing.assert_close(grad, expect)


def test_dense_ball_query_with_duplicates_matches_the_reference():
    from tests.test_ops.test_point_ops import ref_ball_query
    unknown, known = _cloud_with_ties(3)
    for rmin, rmax, ns in ((0.0, 0.6, 5), (0.4, 0.8, 6)):
        assert torch.equal(ball_query(rmin, rmax, ns, known, unknown), ref_ball_query(rmin, rmax, ns, known, unknown))
