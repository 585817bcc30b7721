"""Datasets (registered in ``mmdet3d.registry.DATASETS``) and their transforms."""
from . import transforms  # noqa: F401
# one import line per dataset module, e.g. ``from .shapenet_render import ShapeNetRenderDataset``
from .split_concat_dataset import SplitConcatDataset  # noqa: F401
from .shapenet_render import ShapeNetRenderDataset  # noqa: F401
from .modelnet import ModelNet40Dataset, ScanObjectNNDataset  # noqa: F401
from .paired_scene import PairedSceneDataset  # noqa: F401
from .label_fraction import LabelFractionDataset  # noqa: F401
from .robust import RobustDatasetMixin, SampleError, PairingError, InfoFormatError  # noqa: F401
from .semantickitti_seg import RobustSemanticKittiDataset  # noqa: F401
from .nuscenes_seg import NuScenesSegDataset  # noqa: F401
