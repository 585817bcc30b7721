"""Device-dispatched ops: mmcv CUDA kernels on GPU, PyTorch on CPU; spconv's CPU algorithm.

Importing this package patches mmcv's point-op autograd Functions and spconv's convolution so that stock mmdet3d
modules (PointNet++, DGCNN, SparseEncoder) run on the CPU unchanged.
"""
from .point_ops import (ball_query, furthest_point_sample, furthest_point_sample_with_dist,  # noqa: F401
                        gather_points, grouping_operation, knn, patch_mmcv_point_ops, three_interpolate,
                        three_nn)
from .spconv_algo import SPCONV_PATCHED, patch_spconv_cpu_algo  # noqa: F401

MMCV_POINT_OPS_PATCHED = patch_mmcv_point_ops()
