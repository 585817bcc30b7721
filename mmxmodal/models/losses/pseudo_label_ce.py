"""Cross-entropy against (masked) pseudo-labels."""
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet3d.registry import MODELS


def pseudo_label_ce(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Mean cross-entropy over the accepted samples.

    Args:
        logits: (B, C) student logits.
        labels: (B,) pseudo-labels.
        mask: (B,) bool, True where the pseudo-label is accepted.

    Returns:
        ``sum_i mask_i CE_i / B`` (divided by the batch, as in MUST, so the weight of the term grows with the
        pseudo-label rate); 0 (with a graph) when nothing is accepted.
    """
    ce = F.cross_entropy(logits, labels, reduction='none')
    return (ce * mask.to(ce.dtype)).sum() / max(logits.shape[0], 1)


@MODELS.register_module()
class PseudoLabelCELoss(nn.Module):
    """Module form of :func:`pseudo_label_ce` (``loss_weight`` x loss)."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
        return self.loss_weight * pseudo_label_ce(logits, labels, mask)
