"""Data transforms (registered in ``mmdet3d.registry.TRANSFORMS``)."""
# one import line per transform module
from .loading import LoadObjectPoints, LoadRenderedImage  # noqa: F401
