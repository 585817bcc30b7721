"""A 2-process CPU run (gloo) equals a 1-process run over the same global batch, for every loss of the project.

Each rank takes its rows of the global batch, computes the loss and its gradient with respect to its rows. DDP
averages parameter gradients over processes, so the objective of a W-process run is the mean of the per-rank losses
and the gradient of a row is ``rank grad / W``. These must equal the single-process loss and gradient:

* gathered losses (``gather_distributed=True``): NT-Xent (CrossPoint), InfoNCE, the point-pixel / point-point
  sampled InfoNCE (SimIPU) with all pairs, the cross-modal alignment (Cross-MoST) and the fairness term (batch-mean
  probability over all processes) - equal for equal *and* unequal local batch sizes (a rank may even hold none).
* per-process means (masked image / point modelling, pseudo-label cross-entropy): a mean over the local rows; equal
  for equal local batch sizes, which mmengine's ``DefaultSampler`` (padding the index list) with ``drop_last=True``
  (the pretraining configs) guarantees. With unequal sizes the objective is the mean of the per-process means (the
  documented relation, asserted below).
* sampled InfoNCE with ``max_pairs``: each process samples at most ``max_pairs`` of *its* positives (SimIPU's
  per-GPU budget), so it equals the 1-process loss over the union of the per-process samples (asserted with the
  same generators), not a 1-process sampling of ``max_pairs`` from the whole batch.

One spawn of 2 processes computes every case (spawning dominates the run time); it also checks that
:class:`~mmxmodal.engine.hooks.RNGStateHook` saves the generator state of every rank and gives each its own back.
"""
import pytest
import torch

from tests.dist_utils import run_distributed

WORLD = 2
EQUAL = (5, 5)
UNEQUAL = (6, 3)


def _batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        z1=torch.randn(n, 8, generator=g), z2=torch.randn(n, 8, generator=g),
        logits=torch.randn(n, 5, generator=g) * 2, labels=torch.randint(0, 5, (n, ), generator=g),
        pl_mask=torch.rand(n, generator=g) > 0.3,
        pix_pred=torch.randn(n, 6, 12, generator=g), pix_tgt=torch.randn(n, 6, 12, generator=g),
        # exactly 2 of 6 patches / groups masked per row, as ``random_mask`` does
        mask=torch.stack([torch.randperm(6, generator=g) < 2 for _ in range(n)]),
        grp_pred=torch.randn(n, 4, 5, 3, generator=g), grp_tgt=torch.randn(n, 4, 5, 3, generator=g),
        grp_mask=torch.stack([torch.randperm(4, generator=g) < 2 for _ in range(n)]))


def _losses():
    """name -> (fn(batch dict of leaf tensors, gather) -> scalar, input names receiving gradients)."""
    from mmxmodal.models.losses import (MaskedPointModelingLoss, fairness_loss, info_nce, nt_xent, pseudo_label_ce,
                                        symmetric_alignment_loss)
    from mmxmodal.models.losses.masked_modeling import masked_pixel_l1
    from mmxmodal.models.losses.point_pixel_contrast import sampled_info_nce
    mpm = MaskedPointModelingLoss(loss_weight=0.5)
    return {
        'nt_xent': (lambda b, g: nt_xent(b['z1'], b['z2'], 0.1, gather_distributed=g), ('z1', 'z2')),
        'info_nce': (lambda b, g: info_nce(b['z1'], b['z2'], 0.07, gather_distributed=g), ('z1', 'z2')),
        'info_nce_sym': (lambda b, g: info_nce(b['z1'], b['z2'], 0.07, gather_distributed=g, symmetric=True),
                         ('z1', 'z2')),
        'point_pixel_all_pairs': (lambda b, g: sampled_info_nce(b['z1'], b['z2'], None, 0.07, g)[0], ('z1', 'z2')),
        'point_pixel_chunked': (lambda b, g: sampled_info_nce(b['z1'], b['z2'], None, 0.07, g, chunk_size=2)[0],
                                ('z1', 'z2')),
        'alignment': (lambda b, g: symmetric_alignment_loss(b['z1'], b['z2'], 0.1, gather_distributed=g),
                      ('z1', 'z2')),
        'fairness': (lambda b, g: fairness_loss(b['logits'].softmax(-1), gather_distributed=g), ('logits', )),
        # per-process means (no collective)
        'masked_image': (lambda b, g: masked_pixel_l1(b['pix_pred'], b['pix_tgt'], b['mask']), ('pix_pred', )),
        'masked_point': (lambda b, g: mpm(b['grp_pred'], b['grp_tgt'], b['grp_mask']), ('grp_pred', )),
        'pseudo_label_ce': (lambda b, g: pseudo_label_ce(b['logits'], b['labels'], b['pl_mask']), ('logits', )),
    }


PER_PROCESS = ('masked_image', 'masked_point', 'pseudo_label_ce')


def _leaf(batch, grad_names):
    return {k: (v.clone().requires_grad_(True) if k in grad_names else v.clone()) for k, v in batch.items()}


def _rows(batch, sizes, rank):
    start = sum(sizes[:rank])
    return {k: v[start:start + sizes[rank]] for k, v in batch.items()}


def _eval(fn, batch, grad_names, gather):
    b = _leaf(batch, grad_names)
    loss = fn(b, gather)
    loss.backward()
    return loss.detach(), {k: b[k].grad.clone() for k in grad_names}


def _sampled(z1, z2, max_pairs, seed, gather):
    from mmxmodal.models.losses.point_pixel_contrast import sample_pair_indices, sampled_info_nce
    q, k = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    loss = sampled_info_nce(q, k, max_pairs, 0.07, gather, generator=torch.Generator().manual_seed(seed))[0]
    loss.backward()
    idx = sample_pair_indices(z1.shape[0], max_pairs, z1.device, generator=torch.Generator().manual_seed(seed))
    return loss.detach(), q.grad, k.grad, idx


def _worker(rank, world):
    out = {}
    for sizes in (EQUAL, UNEQUAL, (7, 0)):
        batch = _rows(_batch(sum(sizes)), sizes, rank)
        for name, (fn, grads) in _losses().items():
            out[(sizes, name)] = _eval(fn, batch, grads, True)
    # SimIPU's per-process pair budget: each rank samples 3 of its positives with its own generator
    b = _rows(_batch(sum(EQUAL), seed=1), EQUAL, rank)
    out['sampled'] = _sampled(b['z1'], b['z2'], 3, 100 + rank, True)
    out['rng'] = _rng_state_round_trip(rank)
    return out


def _rng_state_round_trip(rank):
    """RNGStateHook in 2 processes: every rank's generator state is gathered before a due checkpoint, and each rank
    gets its own back on resume."""
    import random
    import types

    import numpy as np
    from mmengine.hooks import CheckpointHook

    from mmxmodal.engine.hooks import RNGStateHook, set_rng_state
    torch.manual_seed(100 + rank)
    np.random.seed(rank)
    random.seed(rank)
    runner = types.SimpleNamespace(hooks=[CheckpointHook(interval=2, by_epoch=False)], iter=3, max_iters=10)
    hook = RNGStateHook()
    hook.after_train_iter(runner, 3)  # iteration 4 ends: CheckpointHook(interval=2) saves -> gather
    expected = (torch.rand(3), np.random.rand(3), random.random())
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)  # (rank 0 only in a real run; identical lists here)
    torch.manual_seed(999), np.random.seed(999), random.seed(999)
    resumed = RNGStateHook()
    resumed.after_load_checkpoint(runner, checkpoint)
    set_rng_state(resumed._pending)
    got = (torch.rand(3), np.random.rand(3), random.random())
    return dict(world=checkpoint['rng_state']['world_size'], n=len(checkpoint['rng_state']['states']),
                expected=expected, got=got)


@pytest.fixture(scope='module')
def dist_results():
    return run_distributed(_worker, WORLD)


@pytest.mark.parametrize('sizes', [EQUAL, UNEQUAL, (7, 0)], ids=['equal', 'unequal', 'one-rank-empty'])
@pytest.mark.parametrize('name', list(_losses()))
def test_two_processes_equal_one_process(dist_results, sizes, name):
    fn, grads = _losses()[name]
    full = _batch(sum(sizes))
    if name in PER_PROCESS and sizes != EQUAL:
        # documented per-process mean: the 2-process objective is the mean of the per-process means (a process
        # without rows contributes an exact, finite 0)
        ref = sum(_eval(fn, _rows(full, sizes, r), grads, False)[0] for r in range(WORLD)) / WORLD
        got = sum(dist_results[r][(sizes, name)][0] for r in range(WORLD)) / WORLD
        assert all(torch.isfinite(dist_results[r][(sizes, name)][0]) for r in range(WORLD))
        assert got.item() == pytest.approx(ref.item(), rel=1e-6, abs=1e-7)
        single, _ = _eval(fn, full, grads, False)
        if sizes == UNEQUAL:  # and that differs from one process on the whole (unequal) batch
            assert abs(got.item() - single.item()) > 1e-6
        return
    ref_loss, ref_grads = _eval(fn, full, grads, False)
    mean_loss = sum(r[(sizes, name)][0] for r in dist_results) / WORLD
    assert mean_loss.item() == pytest.approx(ref_loss.item(), rel=1e-5, abs=1e-6), name
    for k in grads:
        got = torch.cat([r[(sizes, name)][1][k] for r in dist_results]) / WORLD
        assert torch.allclose(got, ref_grads[k], atol=1e-6, rtol=1e-5), (name, k)


def test_sampled_pairs_equal_one_process_over_the_union_of_the_samples(dist_results):
    from mmxmodal.models.losses import info_nce
    full = _batch(sum(EQUAL), seed=1)
    rows, offset = [], 0
    for r in range(WORLD):
        rows.append(dist_results[r]['sampled'][3] + offset)
        offset += EQUAL[r]
    union = torch.cat(rows)
    assert len(union) == 3 * WORLD
    q, k = full['z1'].clone().requires_grad_(True), full['z2'].clone().requires_grad_(True)
    ref = info_nce(q[union], k[union], 0.07)
    ref.backward()
    mean_loss = sum(r['sampled'][0] for r in dist_results) / WORLD
    assert mean_loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(torch.cat([r['sampled'][1] for r in dist_results]) / WORLD, q.grad, atol=1e-6)
    assert torch.allclose(torch.cat([r['sampled'][2] for r in dist_results]) / WORLD, k.grad, atol=1e-6)


def test_rng_states_of_every_rank_are_saved_and_restored(dist_results):
    import numpy as np
    for r in dist_results:
        rng = r['rng']
        assert rng['world'] == WORLD and rng['n'] == WORLD
        assert torch.equal(rng['expected'][0], rng['got'][0])
        assert np.array_equal(rng['expected'][1], rng['got'][1]) and rng['expected'][2] == rng['got'][2]
    assert not torch.equal(dist_results[0]['rng']['got'][0], dist_results[1]['rng']['got'][0])  # own state each
