"""Random local crop of an object point cloud (Cross-MoST strong point view)."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomPointCrop(BaseTransform):
    """Keep the fraction ``U(ratio)`` of points nearest to a random seed point, then resample (with replacement
    where needed) back to the original N points, so batches keep a fixed size.

    ``results['points']`` (N, C) -> (N, C) float32; records ``point_crop`` = (seed index, kept count) or None.

    Args:
        ratio: range of the kept fraction.
        prob: probability of cropping.
    """

    def __init__(self, ratio: Sequence[float] = (0.6, 1.0), prob: float = 1.0) -> None:
        self.ratio, self.prob = tuple(ratio), prob

    def transform(self, results: dict) -> dict:
        pts = np.asarray(results['points'], dtype=np.float32)
        n = pts.shape[0]
        results['point_crop'] = None
        if n == 0 or np.random.rand() >= self.prob:
            return results
        keep = max(1, int(round(n * np.random.uniform(*self.ratio))))
        seed = np.random.randint(n)
        d = ((pts[:, :3] - pts[seed, :3])**2).sum(1)
        kept = np.argpartition(d, keep - 1)[:keep] if keep < n else np.arange(n)
        extra = np.random.choice(kept, n - keep, replace=True) if keep < n else np.zeros(0, dtype=np.int64)
        idx = np.concatenate([kept, extra])
        np.random.shuffle(idx)
        results['points'] = pts[idx]
        results['point_crop'] = (int(seed), int(keep))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(ratio={self.ratio}, prob={self.prob})'
