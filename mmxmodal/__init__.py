"""mmxmodal: label-free cross-modal pretraining (CrossPoint, SimIPU, Cross-MoST) for mmdetection3d 1.x.

Importing the package registers its modules into the mmdet3d / mmengine registries and changes nothing else::

    custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

On a machine without a GPU, add the opt-in CPU support (mmcv point-op fallbacks, spconv's Native algorithm on CPU,
gloo without CUDA; see :mod:`mmxmodal.cpu`)::

    custom_imports = dict(imports=['mmxmodal', 'mmxmodal.cpu'], allow_failed_imports=False)
"""
from .version import __version__
from .utils import checkpoint, pretrained  # noqa: F401  (PlainCheckpointHook, safe:// scheme, CheckedPretrained)
from . import datasets, engine, evaluation, models  # noqa: F401,E402

__all__ = ['__version__']
