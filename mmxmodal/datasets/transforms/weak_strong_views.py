"""Weak and strong views of one object sample for teacher-student training (Cross-MoST)."""
import copy
from typing import List, Sequence

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from mmdet3d.registry import TRANSFORMS


@TRANSFORMS.register_module()
class WeakStrongViews(BaseTransform):
    """Run a ``weak`` and a ``strong`` sub-pipeline on copies of the results and stack their outputs.

    After it: ``points`` (2, N, C) float32 [weak, strong] and ``img`` a list [weak (H, W, 3), strong (H, W, 3)]
    (both pipelines must produce the same N and image size); ``PackObjectInputs`` turns them into (2, N, C) and
    (2, 3, H, W) tensors, ``ObjectDataPreprocessor`` into (B, 2, ...) batches. Other keys come from the weak view.

    Args:
        weak, strong: lists of transform configs (each sees the full results dict).
        keys: keys to stack (``'points'``, ``'img'``).
    """

    def __init__(self, weak: Sequence[dict], strong: Sequence[dict], keys: Sequence[str] = ('points', 'img')) -> None:
        self.weak = Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in weak])
        self.strong = Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in strong])
        self.keys = tuple(keys)

    def transform(self, results: dict) -> dict:
        w = self.weak(copy.deepcopy(results))
        s = self.strong(copy.deepcopy(results))
        assert w is not None and s is not None, 'a view pipeline dropped the sample'
        for k in self.keys:
            if k == 'points':
                w[k] = np.stack([np.asarray(w[k], dtype=np.float32), np.asarray(s[k], dtype=np.float32)])
            else:
                w[k] = [w[k], s[k]]
        return w

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(weak={self.weak}, strong={self.strong}, keys={self.keys})'
