"""Losses (registered in mmdet3d.registry.MODELS). They take plain tensors."""
from .info_nce import InfoNCELoss, NTXentLoss, info_nce, nt_xent  # noqa: F401
