"""Masked image and masked point modelling losses.

* Images: L1 between predicted and true pixels of the masked patches only (MUST / SimMIM).
* Points: Chamfer-L2 between the predicted and the *real* points of each masked group (Point-MAE). The published
  Cross-MoST code regresses the mask token itself; here the target is always the masked groups' points.
"""
import torch
from torch import Tensor, nn

from mmdet3d.registry import MODELS


def patchify(img: Tensor, patch_size: int) -> Tensor:
    """img (B, C, H, W) -> (B, L, p*p*C) patches in row-major order (L = H/p * W/p)."""
    b, c, h, w = img.shape
    p = patch_size
    x = img.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def masked_pixel_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """pred, target (B, L, P) patch pixels, mask (B, L) bool (True = masked) -> mean L1 over masked pixels."""
    m = mask.to(pred.dtype).unsqueeze(-1)
    denom = (m.sum() * pred.shape[-1]).clamp_min(1.0)
    return ((pred - target).abs() * m).sum() / denom


def chamfer_l2(pred: Tensor, target: Tensor) -> Tensor:
    """Symmetric Chamfer distance with squared L2, averaged over sets.

    Args:
        pred: (M, K1, 3) predicted point sets.
        target: (M, K2, 3) real point sets.

    Returns:
        scalar ``mean_m [mean_i min_j |p_i - t_j|^2 + mean_j min_i |p_i - t_j|^2]``.
    """
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    d = torch.cdist(pred, target).pow(2)  # (M, K1, K2)
    return d.min(dim=2)[0].mean() + d.min(dim=1)[0].mean()


@MODELS.register_module()
class MaskedImageModelingLoss(nn.Module):
    """``loss_weight`` x :func:`masked_pixel_l1`."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        return self.loss_weight * masked_pixel_l1(pred, target, mask)


@MODELS.register_module()
class MaskedPointModelingLoss(nn.Module):
    """``loss_weight`` x Chamfer-L2 between predicted and real points of the masked groups.

    ``forward(pred, groups, mask)``: pred (B, G, K, 3) predicted local points per group (only masked ones are
    used), groups (B, G, K, 3) real local points of every group, mask (B, G) bool (True = masked).
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, groups: Tensor, mask: Tensor) -> Tensor:
        return self.loss_weight * chamfer_l2(pred[mask], groups[mask])
