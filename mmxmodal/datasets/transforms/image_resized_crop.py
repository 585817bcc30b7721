"""Random resized crop + horizontal flip of an object image to a fixed square size (weak / strong views)."""
import math
from typing import Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomResizedCropFlip(BaseTransform):
    """Crop a random area fraction ``scale`` with aspect ratio in ``ratio`` and resize to ``size`` x ``size``
    (Inception-style, like torchvision's ``RandomResizedCrop``), then flip horizontally with ``flip_prob``.
    ``scale=(1, 1)`` and ``flip_prob=0`` give a plain resize (test pipeline).

    ``results['img']`` (H, W, 3) -> (size, size, 3), same dtype; records ``img_shape``, ``crop_box``
    (x0, y0, x1, y1 in the input), ``flip``.
    """

    def __init__(self, size: int, scale: Sequence[float] = (0.5, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), flip_prob: float = 0.5,
                 interpolation: int = cv2.INTER_LINEAR) -> None:
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)
        self.flip_prob, self.interpolation = flip_prob, interpolation

    def _box(self, h: int, w: int):
        if self.scale == (1.0, 1.0):
            return 0, 0, w, h
        area = h * w
        for _ in range(10):
            a = area * np.random.uniform(*self.scale)
            r = math.exp(np.random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            cw, ch = int(round(math.sqrt(a * r))), int(round(math.sqrt(a / r)))
            if 0 < cw <= w and 0 < ch <= h:
                x0, y0 = np.random.randint(0, w - cw + 1), np.random.randint(0, h - ch + 1)
                return x0, y0, x0 + cw, y0 + ch
        return 0, 0, w, h

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        x0, y0, x1, y1 = self._box(h, w)
        out = cv2.resize(img[y0:y1, x0:x1], (self.size, self.size), interpolation=self.interpolation)
        flip = bool(np.random.rand() < self.flip_prob)
        if flip:
            out = out[:, ::-1]
        results['img'] = np.ascontiguousarray(out)
        results['img_shape'] = out.shape[:2]
        results['crop_box'] = (x0, y0, x1, y1)
        results['flip'] = flip
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, scale={self.scale}, ratio={self.ratio}, '
                f'flip_prob={self.flip_prob})')
