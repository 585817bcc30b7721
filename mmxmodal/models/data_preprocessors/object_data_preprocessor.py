"""Data preprocessor for object-level samples: point (view) stacking and image normalisation."""
from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from mmdet3d.registry import MODELS


def _stack_or_list(items: List[Tensor]) -> Union[Tensor, List[Tensor]]:
    return torch.stack(items) if all(t.shape == items[0].shape for t in items) else items


@MODELS.register_module()
class ObjectDataPreprocessor(BaseDataPreprocessor):
    """Move a pseudo-collated batch to the device, stack points, normalise and stack images.

    ``inputs['points']``: list of B tensors (N, C) or (V, N, C) -> (B, N, C) / (B, V, N, C) when all shapes
    agree, otherwise left a list of tensors (variable N).
    ``inputs['img']``: list of B tensors (3, H, W) or (V, 3, H, W), uint8 or float, RGB -> float
    ``(img - mean) / std`` stacked to (B, 3, H, W) / (B, V, 3, H, W) (all images must share a size: resize in
    the pipeline).  Other input keys are moved to the device unchanged.

    Args:
        mean, std: per-channel statistics in the 0-255 range (ImageNet by default); None disables.
        bgr_to_rgb: reverse the channel order first (for BGR-loaded images; the object contract is RGB).
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = (123.675, 116.28, 103.53),
                 std: Optional[Sequence[float]] = (58.395, 57.12, 57.375),
                 bgr_to_rgb: bool = False,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        self._enable_norm = mean is not None
        if self._enable_norm:
            self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), False)
            self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), False)
        self.bgr_to_rgb = bgr_to_rgb

    def _img(self, img: Tensor) -> Tensor:
        img = img.float()
        if self.bgr_to_rgb:
            img = img.flip(-3)
        if self._enable_norm:
            img = (img - self.mean) / self.std
        return img

    def forward(self, data: dict, training: bool = False) -> dict:
        """``{'inputs': {...}, 'data_samples': [...]}`` -> the same with device tensors stacked."""
        data = self.cast_data(data)
        inputs, out = data['inputs'], {}
        for key, value in inputs.items():
            if key == 'points' and isinstance(value, (list, tuple)):
                out[key] = _stack_or_list([p.float() for p in value])
            elif key == 'img':
                imgs = value if isinstance(value, (list, tuple)) else list(value)
                imgs = [self._img(i) for i in imgs]
                assert all(i.shape == imgs[0].shape for i in imgs), 'images of a batch must share a size'
                out[key] = torch.stack(imgs)
            else:
                out[key] = value
        return dict(inputs=out, data_samples=data.get('data_samples'))
