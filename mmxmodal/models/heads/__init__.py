"""heads (registered in mmdet3d.registry.MODELS)."""
# one import line per module
from .prototype_classifier import PrototypeClassifier, class_mean_prototypes  # noqa: F401
from .projection_head import ProjectionHead  # noqa: F401
from .point_cls_head import PointClsHead, smooth_cross_entropy  # noqa: F401
from .contrast_projection import ContrastProjectionHead  # noqa: F401
