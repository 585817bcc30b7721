"""Prototype classifier: few-shot class-mean start, cosine logits, file start."""
import torch

from mmxmodal.models.heads import PrototypeClassifier, class_mean_prototypes


def test_class_mean_prototypes_hand_computed():
    feats = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [5.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    p = class_mean_prototypes(feats, labels, num_classes=3)
    s = 0.5 ** 0.5
    assert torch.allclose(p[0], torch.tensor([s, s]))  # mean of (1, 0) and (0, 1), renormalised
    c1 = torch.tensor([s + 1.0, s])
    assert torch.allclose(p[1], c1 / c1.norm())
    assert torch.equal(p[2], torch.zeros(2))  # no shot -> zero row


def test_cosine_logits_and_start_from_file(tmp_path):
    head = PrototypeClassifier(num_classes=2, in_channels=2, logit_scale=10.0)
    head.init_prototypes(torch.tensor([[3.0, 0.0], [0.0, 0.5]]))
    logits = head(torch.tensor([[2.0, 2.0], [0.0, -1.0]]))
    s = 0.5 ** 0.5
    assert torch.allclose(logits, torch.tensor([[10 * s, 10 * s], [0.0, -10.0]]), atol=1e-5)
    assert not head.log_scale.requires_grad
    torch.save(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), tmp_path / 'protos.pth')
    h2 = PrototypeClassifier(2, 2, logit_scale=200.0, learnable_scale=True, prototypes=str(tmp_path / 'protos.pth'))
    assert torch.allclose(h2.weight, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert h2.log_scale.requires_grad and abs(h2.scale.item() - 100.0) < 1e-3  # clamped at CLIP's maximum
