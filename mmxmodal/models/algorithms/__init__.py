"""algorithms (registered in mmdet3d.registry.MODELS)."""
# one import line per module
from .crosspoint import CrossPoint  # noqa: F401
from .point_classifier import PointClassifier  # noqa: F401
from .crossmost import CrossMoST  # noqa: F401
from .simipu import SimIPU  # noqa: F401
from .simipu_seg import SimIPUSeg  # noqa: F401
