"""Fairness (class-balance) regulariser of Cross-MoST / MUST.

``L = -mean_c log(pbar_c)`` with ``pbar`` the mean softmax probability over the *global* batch (all processes).
Minimising it keeps the student from collapsing onto a few classes (it is minimal, ``log C``, for uniform ``pbar``).
"""
import torch
from torch import Tensor, nn

from mmdet3d.registry import MODELS

from ...utils.dist import all_reduce_mean, gather_sizes, get_world_size, is_distributed


def fairness_loss(probs: Tensor, eps: float = 1e-8, gather_distributed: bool = True) -> Tensor:
    """``-mean(log(batch-mean prob))``.

    Args:
        probs: (B, C) softmax probabilities of the student.
        eps: added inside the log.
        gather_distributed: average ``pbar`` over processes (differentiable all-reduce), so every process
            regularises the global batch-mean distribution; local batches of different sizes are weighted by
            their size (``pbar`` is the mean over all rows, exactly as one process on the whole batch).

    Returns:
        scalar loss.
    """
    if gather_distributed and is_distributed():
        n_total = sum(gather_sizes(probs.shape[0], probs.device))
        pbar = all_reduce_mean(probs.sum(dim=0)) * (get_world_size() / max(n_total, 1))
    else:
        pbar = probs.mean(dim=0)
    return -torch.log(pbar + eps).mean()


@MODELS.register_module()
class FairnessLoss(nn.Module):
    """Module form of :func:`fairness_loss` (``loss_weight`` x loss)."""

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-8, gather_distributed: bool = True) -> None:
        super().__init__()
        self.loss_weight, self.eps, self.gather_distributed = loss_weight, eps, gather_distributed

    def forward(self, probs: Tensor) -> Tensor:
        """probs (B, C) -> weighted scalar loss."""
        return self.loss_weight * fairness_loss(probs, self.eps, self.gather_distributed)
