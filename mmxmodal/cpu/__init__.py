"""Opt-in CPU support: the only place where mmxmodal changes upstream objects.

``import mmxmodal`` registers modules and changes nothing else. Machines without a GPU need three upstream
behaviours changed; importing *this* package installs them (``import mmxmodal.cpu``, or in a config
``custom_imports = dict(imports=['mmxmodal', 'mmxmodal.cpu'])``). The project's own tools (``tools/train.py``,
``tools/test.py``) install it explicitly and log what they installed. Each group is version-guarded (skipped with a
warning on versions it was not written for), idempotent, and reversible with :func:`uninstall`.

=====================  ==================================================================  =========================
group                  patched objects                                                     guard
=====================  ==================================================================  =========================
``mmcv-point-ops``     ``forward`` (and ``backward`` where differentiable) of mmcv's        mmcv >= 2.0, < 2.2, ops
                       ``FurthestPointSampling(WithDist)``, ``BallQuery`` (stacked too),    built
                       ``KNN``, ``ThreeNN``, ``GroupingOperation`` (stacked too),
                       ``GatherPoints``, ``ThreeInterpolate``: CPU tensors run the PyTorch
                       kernels of :mod:`mmxmodal.models.ops.point_ops`, CUDA tensors mmcv's.
``spconv-native-cpu``  ``spconv.pytorch.conv.SparseConvolution.forward``: CPU inputs run     spconv >= 2.2, < 2.4
                       with ``ConvAlgo.Native`` (the default algorithm calls CUDA).
``gloo-without-cuda``  ``mmengine.dist.utils._init_dist_pytorch`` / ``_init_dist_slurm``:    mmengine 0.10, and only
                       gloo and no ``cuda.set_device``; ``MMDistributedDataParallel.          when CUDA is unavailable
                       __init__``: no ``device_ids`` for a CPU model.
=====================  ==================================================================  =========================
"""
from .install import GROUPS, install, installed, uninstall  # noqa: F401

INSTALLED = install()
