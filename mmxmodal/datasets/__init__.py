"""Datasets (registered in ``mmdet3d.registry.DATASETS``) and their transforms."""
from . import transforms  # noqa: F401
