"""Generators that write synthetic paired data in real on-disk formats (objects, nuScenes, KITTI, SemanticKITTI)."""
from . import scene  # noqa: F401
from . import nuscenes  # noqa: F401
from . import kitti  # noqa: F401
from . import semantickitti  # noqa: F401
from . import infos  # noqa: F401
from . import visualize_scene  # noqa: F401
