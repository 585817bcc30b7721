"""data preprocessors (registered in mmdet3d.registry.MODELS)."""
# one import line per module
from .object_data_preprocessor import ObjectDataPreprocessor  # noqa: F401
from .paired_scene_preprocessor import PairedSceneDataPreprocessor  # noqa: F401
from .seg_data_preprocessor import PairedSegDataPreprocessor, SegDet3DDataPreprocessor  # noqa: F401
