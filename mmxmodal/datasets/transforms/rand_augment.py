"""RandAugment for RGB uint8 images (mmcv 2.1 has none): torchvision's ``v2.RandAugment`` on ``results['img']``."""
from typing import Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ObjectRandAugment(BaseTransform):
    """RandAugment (Cubuk et al. 2020): ``num_ops`` random ops (identity, shear, translate, rotate, brightness,
    colour, contrast, sharpness, posterize, solarize, autocontrast, equalize) at ``magnitude`` of
    ``num_magnitude_bins``. Applies to ``results['img']`` (H, W, 3) uint8 RGB (or a list of such images);
    records ``rand_augment=True``.

    Args:
        num_ops: ops per image (MUST / FixMatch strong view: 2).
        magnitude: magnitude bin (0 .. num_magnitude_bins - 1).
        num_magnitude_bins: resolution of the magnitude scale.
        fill: fill value of geometric ops (None: black).
        prob: probability of augmenting at all.
    """

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31,
                 fill: Optional[int] = None, prob: float = 1.0) -> None:
        from torchvision.transforms import v2
        self.num_ops, self.magnitude, self.num_magnitude_bins, self.prob = num_ops, magnitude, num_magnitude_bins, prob
        self._aug = v2.RandAugment(num_ops=num_ops, magnitude=magnitude, num_magnitude_bins=num_magnitude_bins,
                                   fill=fill)

    def _one(self, img: np.ndarray) -> np.ndarray:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, (img.dtype, img.shape)
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
        # torchvision draws its ops from torch's global RNG; seed it from numpy so worker seeding applies.
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(int(np.random.randint(0, 2**31 - 1)))
        try:
            out = self._aug(t)
        finally:
            torch.random.set_rng_state(gen_state)
        return out.permute(1, 2, 0).contiguous().numpy()

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img']
        results['img'] = [self._one(i) for i in img] if isinstance(img, (list, tuple)) else self._one(img)
        results['rand_augment'] = True
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_ops={self.num_ops}, magnitude={self.magnitude}/'
                f'{self.num_magnitude_bins}, prob={self.prob})')
