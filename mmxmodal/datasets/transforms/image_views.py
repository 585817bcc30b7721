"""Colour jitter of a rendered view (torchvision ``ColorJitter`` semantics on RGB uint8 images).

Resize and flip come from mmdet (``mmdet.Resize`` with ``keep_ratio=False``, ``mmdet.RandomFlip``), which record
``scale_factor`` / ``flip``; mmdet's ``PhotoMetricDistortion`` is not used because its brightness is additive,
each of its steps fires with probability 0.5 and it assumes BGR, whereas CrossPoint uses torchvision's
``ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4)`` (multiplicative factors, always applied, random
order).
"""
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS

_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # RGB luma weights (as torchvision)


def _factor_range(value: Union[float, Sequence[float]], center: float = 1.0) -> Optional[Tuple[float, float]]:
    if isinstance(value, (int, float)):
        return None if value == 0 else (max(0.0, center - value), center + value)
    return tuple(value)


@TRANSFORMS.register_module()
class RandomColorJitter(BaseTransform):
    """Random brightness / contrast / saturation / hue in random order on ``results['img']`` (H, W, 3) RGB.

    Args:
        brightness, contrast, saturation: ``x`` -> factor U(max(0, 1 - x), 1 + x), or an explicit (lo, hi).
        hue: ``h`` in [0, 0.5] -> hue shift U(-h, h) of a full turn.
        prob: probability of applying the jitter at all.

    Results: ``img`` uint8 (H, W, 3) replaced; ``color_jitter`` dict of the drawn factors (empty when skipped).
    """

    def __init__(self,
                 brightness: Union[float, Sequence[float]] = 0.4,
                 contrast: Union[float, Sequence[float]] = 0.4,
                 saturation: Union[float, Sequence[float]] = 0.4,
                 hue: float = 0.0,
                 prob: float = 1.0) -> None:
        assert 0 <= hue <= 0.5
        self.ranges = dict(brightness=_factor_range(brightness), contrast=_factor_range(contrast),
                           saturation=_factor_range(saturation), hue=(-hue, hue) if hue > 0 else None)
        self.prob = prob

    @staticmethod
    def _apply(img: np.ndarray, op: str, f: float) -> np.ndarray:
        if op == 'brightness':
            out = img * f
        elif op == 'contrast':
            out = img * f + (1 - f) * float((img @ _GRAY).mean())
        elif op == 'saturation':
            out = img * f + (1 - f) * (img @ _GRAY)[..., None]
        else:  # hue: rotate in HSV (OpenCV float HSV has H in degrees)
            hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
            hsv[..., 0] = (hsv[..., 0] + f * 360.0) % 360.0
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
        return np.clip(out, 0, 255)

    def transform(self, results: dict) -> dict:
        """``img`` (H, W, 3) RGB -> jittered uint8; adds ``color_jitter``."""
        results['color_jitter'] = {}
        if np.random.rand() >= self.prob:
            return results
        img = results['img'].astype(np.float32)
        ops = [op for op, r in self.ranges.items() if r is not None]
        for i in np.random.permutation(len(ops)):
            op = ops[i]
            f = float(np.random.uniform(*self.ranges[op]))
            img = self._apply(img, op, f)
            results['color_jitter'][op] = f
        results['img'] = np.round(img).astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(ranges={self.ranges}, prob={self.prob})'
