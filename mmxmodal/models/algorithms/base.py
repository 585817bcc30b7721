"""Shared ``forward`` of the algorithms that have loss / predict / tensor modes (as mmdet's ``BaseDetector``)."""
from typing import Optional

from mmengine.model import BaseModel


class ModeDispatchModel(BaseModel):
    """``forward(inputs, data_samples, mode)`` -> ``loss`` | ``predict`` | ``_forward`` (tensor mode).

    Subclasses implement ``loss(inputs, data_samples)``, ``predict(inputs, data_samples)`` and
    ``_forward(inputs, data_samples)``.
    """

    def forward(self, inputs: dict, data_samples: Optional[list] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')
