"""Cross-modal feature alignment: symmetric cross-entropy over the batch image-point similarity matrix.

``S = z_img @ z_pts^T / T`` (L2-normalised embeddings); sample i's image and points are the positive pair.
``L = (CE(S, arange) + CE(S^T, arange)) / 2`` (CLIP's loss), implemented with the project's ``info_nce``
(``symmetric=True``), which also gathers negatives across processes with gradients.
"""
from torch import Tensor, nn

from mmdet3d.registry import MODELS

from .info_nce import info_nce


def symmetric_alignment_loss(img_feats: Tensor, pts_feats: Tensor, temperature: float = 0.07,
                             gather_distributed: bool = False) -> Tensor:
    """img_feats, pts_feats (B, D) paired row by row -> scalar symmetric cross-entropy."""
    return info_nce(img_feats, pts_feats, temperature=temperature, gather_distributed=gather_distributed,
                    normalize=True, symmetric=True)


@MODELS.register_module()
class CrossModalAlignmentLoss(nn.Module):
    """Module form of :func:`symmetric_alignment_loss` (``loss_weight`` x loss)."""

    def __init__(self, temperature: float = 0.07, gather_distributed: bool = False,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature, self.gather_distributed, self.loss_weight = temperature, gather_distributed, loss_weight

    def forward(self, img_feats: Tensor, pts_feats: Tensor) -> Tensor:
        """(B, D), (B, D) -> weighted scalar loss."""
        return self.loss_weight * symmetric_alignment_loss(img_feats, pts_feats, self.temperature,
                                                           self.gather_distributed)
