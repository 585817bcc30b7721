"""Opt-in CPU support: the only place where mmxmodal changes upstream objects.

``import mmxmodal`` registers modules and changes nothing else. Machines without a GPU need five upstream
behaviours changed; importing *this* package installs them (``import mmxmodal.cpu``, or in a config
``custom_imports = dict(imports=['mmxmodal', 'mmxmodal.cpu'])``). The project's own tools (``tools/train.py``,
``tools/test.py``) install it explicitly and log what they installed. Each group is version-guarded (skipped with a
warning on versions it was not written for), idempotent, and reversible with :func:`uninstall`.

============================  ================================================================  ========================
group                         patched objects                                                   guard
============================  ================================================================  ========================
``mmcv-point-ops``            ``forward`` (and ``backward`` where differentiable) of mmcv's     mmcv >= 2.0, < 2.2, ops
                              ``FurthestPointSampling(WithDist)``, ``BallQuery`` (stacked       built
                              too), ``KNN``, ``ThreeNN``, ``GroupingOperation`` (stacked too),
                              ``GatherPoints``, ``ThreeInterpolate``: CPU tensors run the
                              PyTorch kernels of :mod:`mmxmodal.models.ops.point_ops`, CUDA
                              tensors mmcv's.
``spconv-native-cpu``         ``spconv.pytorch.conv.SparseConvolution.forward``: CPU inputs     spconv >= 2.2, < 2.4
                              run with ``ConvAlgo.Native`` (the default algorithm calls CUDA).
``mmcv-sparse-conv-cpu``      ``mmcv.ops.sparse_ops.ext_module`` (the ``mmcv._ext`` that        mmcv >= 2.0, < 2.2, ops
                              mmcv's ``SubMConv3d`` / ``SparseConv3d`` /                        built
                              ``SparseInverseConv3d`` call, the layers of mmdet3d's
                              Cylinder3D): ``get_indice_pairs_{2,3,4}d_forward`` and
                              ``indice_conv_forward`` / ``_backward`` run the PyTorch kernels
                              of :mod:`mmxmodal.models.ops.mmcv_cpu_kernels` on CPU tensors
                              (mmcv's pairs layout, indice-key reuse, output order and weight
                              layout ``(*kernel, in, out)``; mmcv's Python modules, parameters
                              and checkpoints unchanged), CUDA tensors mmcv's kernels.
                              Transposed sparse conv and sparse max-pool stay GPU-only (an
                              error on CPU).
``mmcv-dynamic-scatter-cpu``  ``ext_module`` of ``mmcv.ops.scatter_points``                     mmcv >= 2.0, < 2.2, ops
                              (``DynamicScatter``, used by Cylinder3D's ``SegVFE``) and of      built; mmdet3d 1.1-1.4
                              mmdet3d's ``data_preprocessors.voxelize``                         for its module
                              (``dynamic_scatter_3d``, used by the ``cylindrical``
                              voxelisation): ``dynamic_point_to_voxel_forward`` /
                              ``_backward`` run PyTorch on CPU tensors, mmcv's kernels on
                              CUDA.
``gloo-without-cuda``         ``mmengine.dist.utils._init_dist_pytorch`` /                      mmengine 0.10, and only
                              ``_init_dist_slurm``: gloo and no ``cuda.set_device``;            when CUDA is unavailable
                              ``MMDistributedDataParallel.__init__``: no ``device_ids`` for a
                              CPU model.
============================  ================================================================  ========================
"""
from .install import GROUPS, install, installed, uninstall  # noqa: F401

INSTALLED = install()
