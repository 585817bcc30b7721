"""Training-loop extensions (hooks registered in ``mmdet3d.registry.HOOKS``)."""
from . import hooks  # noqa: F401
