"""segmentors (registered in mmdet3d.registry.MODELS): what a linear probe needs beyond mmdet3d's."""
# one import line per module
from .frozen_backbone import FrozenBackboneCylinder3D, FrozenBackboneMinkUNet  # noqa: F401
