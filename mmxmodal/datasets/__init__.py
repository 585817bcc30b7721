"""Datasets (registered in ``mmdet3d.registry.DATASETS``) and their transforms."""
from . import transforms  # noqa: F401
# one import line per dataset module, e.g. ``from .shapenet_render import ShapeNetRenderDataset``
from .shapenet_render import ShapeNetRenderDataset  # noqa: F401
from .modelnet import ModelNet40Dataset, ScanObjectNNDataset  # noqa: F401
