"""Sanity checks inside a pipeline: point clouds that are non-finite or (nearly) empty are errors naming the file.

mmdet3d's ``LoadPointsFromFile`` accepts NaN / Inf coordinates and ``PointsRangeFilter`` silently drops them (and may
leave no point at all). Put :class:`ValidatePoints` right after the loading (``check_finite``) and after the range
filter (``min_points``); the dataset's ``on_error`` then raises or skips the sample (see
:mod:`mmxmodal.datasets.robust`).
"""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS


def _where(results: dict) -> str:
    for k in ('lidar_path', 'pts_path'):
        if results.get(k):
            tok = results.get('token')
            return f'{results[k]}' + (f' (sample {tok})' if tok is not None else '')
    return f'sample {results.get("token", results.get("sample_idx", "?"))}'


@TRANSFORMS.register_module()
class ValidatePoints(BaseTransform):
    """Raise ``ValueError`` naming the point file when ``results[key]`` is non-finite or too small.

    Args:
        keys: point keys to check (``points``; add ``points_view2`` after :class:`GlobalTwoViews`).
        check_finite: every value of the first ``check_dims`` columns must be finite.
        check_dims: columns checked for finiteness (default 3: x, y, z; None = all).
        min_points: minimum number of points (e.g. 1 after ``PointsRangeFilter``); 0 disables.
        stage: free text added to the message (e.g. ``'after PointsRangeFilter'``).
    """

    def __init__(self, keys: Sequence[str] = ('points', ), check_finite: bool = True,
                 check_dims: Optional[int] = 3, min_points: int = 1, stage: str = '') -> None:
        self.keys = tuple(keys)
        self.check_finite = check_finite
        self.check_dims = check_dims
        self.min_points = int(min_points)
        self.stage = stage

    def transform(self, results: dict) -> dict:
        for key in self.keys:
            if key not in results:
                raise KeyError(f'ValidatePoints: {_where(results)} has no {key!r} (keys: {sorted(results)})')
            pts = results[key]
            arr = pts.tensor.numpy() if hasattr(pts, 'tensor') else np.asarray(pts)
            stage = f' {self.stage}' if self.stage else ''
            if arr.ndim != 2:
                raise ValueError(f'{_where(results)}: {key}{stage} must be (N, C), got shape {arr.shape}')
            if self.check_finite:
                cols = arr if self.check_dims is None else arr[:, :self.check_dims]
                bad = ~np.isfinite(cols).all(axis=1)
                if bad.any():
                    raise ValueError(f'{_where(results)}: {key}{stage}: {int(bad.sum())} of {len(arr)} points have '
                                     f'NaN/Inf coordinates (first at row {int(np.argmax(bad))}); expected finite '
                                     'values')
            if len(arr) < self.min_points:
                raise ValueError(f'{_where(results)}: {key}{stage}: {len(arr)} points, expected at least '
                                 f'{self.min_points} (cloud empty after range filtering?)')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(keys={self.keys}, check_finite={self.check_finite}, '
                f'check_dims={self.check_dims}, min_points={self.min_points}, stage={self.stage!r})')
