"""Linear-probe segmentors: mmdet3d's ``MinkUNet`` / ``Cylinder3D`` with a frozen backbone (SuperFlow's
``freeze_backbone=True``).

The frozen parts (``backbone``, and ``voxel_encoder`` for Cylinder3D) get ``requires_grad=False`` and stay in eval
mode (batch-norm statistics are not updated), so only the decode head learns. ``MinkUNetHead`` is one
``nn.Linear`` per voxel, read back to every point by the voxel map: a linear per-point probe. State-dict keys are
the stock ones (``backbone.*``, ``decode_head.*``), so ``init_cfg`` and checkpoints are shared with the stock
segmentors.
"""
from typing import Sequence

from mmdet3d.models.segmentors import Cylinder3D, MinkUNet
from mmdet3d.registry import MODELS
from torch import nn


class _FrozenMixin:
    frozen_modules: Sequence[str] = ('backbone', )

    def _freeze(self) -> None:
        for name in self.frozen_modules:
            module = getattr(self, name, None)
            if module is None:
                raise AttributeError(f'{type(self).__name__} has no sub-module {name!r} to freeze')
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> nn.Module:
        super().train(mode)
        if self.freeze_backbone:
            self._freeze()
        return self


@MODELS.register_module()
class FrozenBackboneMinkUNet(_FrozenMixin, MinkUNet):
    """``MinkUNet`` whose ``backbone`` is frozen when ``freeze_backbone`` (default) is True."""

    def __init__(self, freeze_backbone: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self._freeze()


@MODELS.register_module()
class FrozenBackboneCylinder3D(_FrozenMixin, Cylinder3D):
    """``Cylinder3D`` whose ``voxel_encoder`` and ``backbone`` are frozen when ``freeze_backbone`` is True."""

    frozen_modules = ('voxel_encoder', 'backbone')

    def __init__(self, freeze_backbone: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self._freeze()
