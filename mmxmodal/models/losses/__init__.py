"""Losses (registered in mmdet3d.registry.MODELS). They take plain tensors."""
from .info_nce import InfoNCELoss, NTXentLoss, info_nce, nt_xent  # noqa: F401
from .alignment import CrossModalAlignmentLoss, symmetric_alignment_loss  # noqa: F401
from .fairness import FairnessLoss, fairness_loss  # noqa: F401
from .masked_modeling import MaskedImageModelingLoss, MaskedPointModelingLoss, chamfer_l2  # noqa: F401
from .pseudo_label_ce import PseudoLabelCELoss, pseudo_label_ce  # noqa: F401
from .point_pixel_contrast import SampledInfoNCELoss, sampled_info_nce  # noqa: F401
