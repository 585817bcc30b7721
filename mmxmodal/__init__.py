"""mmxmodal: label-free cross-modal pretraining (CrossPoint, SimIPU, Cross-MoST) for mmdetection3d 1.x.

Importing the package registers every module into the mmdet3d registries, so a config needs only::

    custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)
"""
from .version import __version__
from .models.ops import spconv_algo  # noqa: F401  (CPU-safe spconv algorithm; must precede model builds)
from .utils import checkpoint, dist_env, pretrained  # noqa: F401  (weights-only loading; gloo / CPU DDP when no GPU;
#                                                     prefix errors + CheckedPretrained init)
from . import datasets, engine, evaluation, models  # noqa: F401,E402

__all__ = ['__version__']
