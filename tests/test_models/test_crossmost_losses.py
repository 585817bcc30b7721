"""Cross-MoST losses against hand-computed values."""
import math

import torch
import torch.nn.functional as F

from mmxmodal.models.losses import (CrossModalAlignmentLoss, FairnessLoss, MaskedImageModelingLoss,
                                    MaskedPointModelingLoss, PseudoLabelCELoss, chamfer_l2)
from mmxmodal.models.losses.masked_modeling import masked_pixel_l1, patchify


def test_fairness_hand_computed():
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]])
    # batch mean = (0.5, 0.25, 0.25): -(log .5 + 2 log .25) / 3
    expected = -(math.log(0.5) + 2 * math.log(0.25)) / 3
    assert abs(FairnessLoss(eps=0.0)(probs).item() - expected) < 1e-6
    uniform = torch.full((4, 5), 0.2)
    assert abs(FairnessLoss(loss_weight=2.0, eps=0.0)(uniform).item() - 2 * math.log(5)) < 1e-6


def test_alignment_hand_computed():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pts = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    t = 0.5
    s = (F.normalize(img) @ F.normalize(pts).t()) / t  # [[2, 1.2], [0, 1.6]]
    rows = [-(s[i, i] - torch.logsumexp(s[i], 0)) for i in range(2)]
    cols = [-(s[i, i] - torch.logsumexp(s[:, i], 0)) for i in range(2)]
    expected = (sum(rows) / 2 + sum(cols) / 2) / 2
    got = CrossModalAlignmentLoss(temperature=t)(img, pts)
    assert torch.allclose(got, expected, atol=1e-6)
    # by hand: rows: log(1 + e^-0.8), log(1 + e^-1.6); cols: log(1 + e^-2), log(1 + e^-0.4)
    by_hand = (math.log(1 + math.exp(-0.8)) + math.log(1 + math.exp(-1.6)) + math.log(1 + math.exp(-2.0))
               + math.log(1 + math.exp(-0.4))) / 4
    assert abs(got.item() - by_hand) < 1e-5


def test_pseudo_label_ce_masks_and_divides_by_batch():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    mask = torch.tensor([True, True, False])
    ce0 = math.log(1 + math.exp(-2.0))
    ce1 = math.log(1 + math.exp(2.0))
    assert abs(PseudoLabelCELoss()(logits, labels, mask).item() - (ce0 + ce1) / 3) < 1e-6
    assert PseudoLabelCELoss()(logits, labels, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_masked_pixel_l1_only_masked_patches():
    img = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    target = patchify(img, 2)  # (2, 4, 12)
    assert target.shape == (2, 4, 12)
    assert torch.equal(target[0, 1], img[0, :, 0:2, 2:4].permute(1, 2, 0).reshape(-1))
    pred = target.clone()
    pred[:, 0] += 3.0  # wrong only on patch 0
    mask = torch.tensor([[True, False, False, False], [False, True, False, False]])
    # sample 0 masked patch 0 (error 3), sample 1 masked patch 1 (error 0) -> mean 1.5
    assert abs(masked_pixel_l1(pred, target, mask).item() - 1.5) < 1e-6
    assert abs(MaskedImageModelingLoss(loss_weight=2.0)(pred, target, mask).item() - 3.0) < 1e-6


def test_chamfer_hand_computed_and_masking():
    a = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    b = torch.tensor([[[0.0, 0, 0], [0, 2, 0]]])
    # a->b: 0, min(1, 5)=1 -> mean .5; b->a: 0, min(4, 5)=4 -> mean 2
    assert abs(chamfer_l2(a, b).item() - 2.5) < 1e-6
    groups = torch.randn(2, 3, 5, 3)
    pred = groups.clone()
    pred[0, 0] += 10.0  # wrong on an unmasked group: ignored
    mask = torch.tensor([[False, True, True], [True, False, False]])
    assert MaskedPointModelingLoss()(pred, groups, mask).item() < 1e-10
    pred[1, 0] += 1.0  # wrong on a masked group: counted
    assert MaskedPointModelingLoss()(pred, groups, mask).item() > 0.1
