"""Device-dispatched point ops: mmcv's CUDA kernels on GPU, PyTorch on CPU.

Importing this package changes nothing upstream. Stock mmdet3d modules that call mmcv (or spconv) directly run on
the CPU through the opt-in :mod:`mmxmodal.cpu`.
"""
from .point_ops import (ball_query, furthest_point_sample, furthest_point_sample_with_dist,  # noqa: F401
                        gather_points, grouping_operation, knn, three_interpolate, three_nn)
