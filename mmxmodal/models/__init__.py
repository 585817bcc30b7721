"""Models (registered in ``mmdet3d.registry.MODELS``)."""
from . import (algorithms, data_preprocessors, encoders, heads, losses,  # noqa: F401
               ops, segmentors)
