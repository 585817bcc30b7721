"""NT-Xent / InfoNCE: hand-computed values, stability, empty batches, and 2-process gathering."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmdet3d.registry import MODELS
from mmxmodal.models.losses import info_nce, nt_xent
from tests.dist_utils import run_distributed


def hand_nt_xent(z1, z2, t):
    """Loop-by-loop SimCLR NT-Xent with math.exp (the definition, no vectorisation)."""
    z = [F.normalize(v, dim=0).tolist() for v in torch.cat([z1, z2])]
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        sims = [sum(a * b for a, b in zip(z[i], z[k])) / t for k in range(n2)]
        denom = sum(math.exp(sims[k]) for k in range(n2) if k != i)
        total += -math.log(math.exp(sims[j]) / denom)
    return total / n2


def test_nt_xent_equals_hand_computed_value():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    z2 = torch.tensor([[0.9, 0.1], [0.2, 1.0], [1.0, 0.5]])
    got = nt_xent(z1, z2, temperature=0.1)
    assert got.item() == pytest.approx(hand_nt_xent(z1, z2, 0.1), rel=1e-5)
    # a fixed closed-form case: N=1, two orthogonal views -> only negative is the other view -> loss 0
    assert nt_xent(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])).item() == pytest.approx(0.0, abs=1e-6)


def test_info_nce_equals_hand_computed_value():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    t = 0.5
    kn = F.normalize(k, dim=1)
    # row 0: sims [1, 1/sqrt2]/t ; positive index 0 ; row 1: sims [0, 1/sqrt2]/t ; positive index 1
    s = 1 / math.sqrt(2)
    row0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(s / t)))
    row1 = -math.log(math.exp(s / t) / (math.exp(0) + math.exp(s / t)))
    assert info_nce(q, k, temperature=t).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    assert torch.allclose(kn, F.normalize(k, dim=1))
    sym = info_nce(q, k, temperature=t, symmetric=True)
    assert sym.item() == pytest.approx(0.5 * (info_nce(q, k, t).item() + info_nce(k, q, t).item()), rel=1e-6)


def test_losses_are_stable_at_tiny_temperature_and_large_logits():
    z1, z2 = torch.randn(64, 16) * 1e4, torch.randn(64, 16) * 1e4
    for loss in (nt_xent(z1, z2, temperature=1e-3), info_nce(z1, z2, temperature=1e-3)):
        assert torch.isfinite(loss)


def test_empty_batches_give_zero_with_gradient():
    for fn in (nt_xent, info_nce):
        a = torch.zeros(0, 8, requires_grad=True)
        b = torch.zeros(0, 8, requires_grad=True)
        loss = fn(a, b)
        assert loss.item() == 0.0
        loss.backward()
        assert a.grad is not None and a.grad.shape == (0, 8)


def test_chunked_info_nce_equals_full_loss_and_gradient():
    q = torch.randn(100, 8, requires_grad=True)
    k = torch.randn(100, 8, requires_grad=True)
    full = info_nce(q, k, 0.07)
    g_full = torch.autograd.grad(full, (q, k))
    chunked = info_nce(q, k, 0.07, chunk_size=17)
    g_chunk = torch.autograd.grad(chunked, (q, k))
    assert torch.allclose(full, chunked, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_full, g_chunk))


def test_accuracy_and_registered_modules():
    q = torch.eye(4)
    loss, acc = info_nce(q, q.clone(), 0.1, return_accuracy=True)
    assert acc.item() == 1.0
    loss, acc = info_nce(q, q.roll(1, 0), 0.1, return_accuracy=True)
    assert acc.item() == 0.0
    m = MODELS.build(dict(type='NTXentLoss', temperature=0.1, loss_weight=2.0))
    z1, z2 = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.allclose(m(z1, z2), 2 * nt_xent(z1, z2, 0.1))
    with pytest.raises(ValueError, match='temperature'):
        MODELS.build(dict(type='InfoNCELoss', temperature=0.0))
    with pytest.raises(ValueError, match='equal shape'):
        info_nce(torch.randn(3, 4), torch.randn(2, 4))


def _dist_losses(rank, world, z1, z2, sizes):
    """Each rank takes its rows, computes both gathered losses, returns the loss and d(mean objective)/d(rows)."""
    start = sum(sizes[:rank])
    rows = slice(start, start + sizes[rank])
    out = {}
    for name, fn in (('nt_xent', nt_xent), ('info_nce', info_nce), ('info_nce_sym', None)):
        a = z1[rows].clone().requires_grad_(True)
        b = z2[rows].clone().requires_grad_(True)
        if name == 'info_nce_sym':
            loss = info_nce(a, b, 0.07, gather_distributed=True, symmetric=True)
        else:
            loss = fn(a, b, 0.1, gather_distributed=True)
        loss.backward()
        # DDP averages gradients over processes: the objective is the mean of the per-rank losses
        out[name] = (loss.detach(), a.grad / world, b.grad / world)
    return out


@pytest.mark.parametrize('sizes', [(4, 4), (5, 2), (3, 0)])
def test_two_process_gather_equals_single_process(sizes):
    g = torch.Generator().manual_seed(0)
    n = sum(sizes)
    z1, z2 = torch.randn(n, 6, generator=g), torch.randn(n, 6, generator=g)
    results = run_distributed(_dist_losses, 2, (z1, z2, list(sizes)))
    for name, fn in (('nt_xent', lambda a, b: nt_xent(a, b, 0.1)), ('info_nce', lambda a, b: info_nce(a, b, 0.1)),
                     ('info_nce_sym', lambda a, b: info_nce(a, b, 0.07, symmetric=True))):
        a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        ref = fn(a, b)
        ref.backward()
        mean_loss = sum(r[name][0] for r in results) / 2
        assert mean_loss.item() == pytest.approx(ref.item(), rel=1e-5), name
        assert torch.allclose(torch.cat([r[name][1] for r in results]), a.grad, atol=1e-6), name
        assert torch.allclose(torch.cat([r[name][2] for r in results]), b.grad, atol=1e-6), name
