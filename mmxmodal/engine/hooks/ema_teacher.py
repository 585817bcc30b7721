"""EMA teacher of Cross-MoST: mmengine's ``EMAHook`` with a decay ramped from 0.99 to 0.9998.

The teacher is the hook's averaged copy of the whole student model (``RampedEMA``, an mmengine
``ExponentialMovingAverage`` with a step-dependent momentum). It lives outside ``runner.model``'s parameters, so
it is not in the optimizer; the model reaches it through ``model.set_teacher(module)`` (an unregistered
reference). Checkpointing follows ``EMAHook``: ``checkpoint['ema_state_dict']`` holds the averaged model plus its
``steps`` counter and ``checkpoint['state_dict']`` holds the teacher weights (deployable); on resume both are
swapped back, so the student, the teacher and the position on the decay ramp are all restored. Validation and
test run with the teacher weights (swapped in for the epoch, as ``EMAHook`` does).
"""
from typing import Optional

import torch
from mmengine.hooks import EMAHook
from mmengine.model import ExponentialMovingAverage, is_model_wrapper
from torch import Tensor, nn

from mmdet3d.registry import HOOKS, MODELS


def ema_decay_at(step: int, decay_start: float = 0.99, decay_end: float = 0.9998, ramp_iters: int = 1000) -> float:
    """Teacher decay after ``step`` updates: linear from ``decay_start`` (step 0) to ``decay_end`` (step >=
    ``ramp_iters``), constant afterwards. ``teacher = decay * teacher + (1 - decay) * student``."""
    if ramp_iters <= 0:
        return decay_end
    frac = min(max(step, 0) / ramp_iters, 1.0)
    return decay_start + (decay_end - decay_start) * frac


@MODELS.register_module()
class RampedEMA(ExponentialMovingAverage):
    """``ExponentialMovingAverage`` whose decay follows :func:`ema_decay_at` of the update count ``steps``.

    The first update copies the student (mmengine's convention); update ``t >= 1`` uses ``ema_decay_at(t)``.
    """

    def __init__(self, model: nn.Module, decay_start: float = 0.99, decay_end: float = 0.9998,
                 ramp_iters: int = 1000, interval: int = 1, device: Optional[torch.device] = None,
                 update_buffers: bool = False) -> None:
        super().__init__(model, momentum=1.0 - decay_end, interval=interval, device=device,
                         update_buffers=update_buffers)
        assert 0.0 < decay_start < 1.0 and 0.0 < decay_end < 1.0
        self.decay_start, self.decay_end, self.ramp_iters = decay_start, decay_end, ramp_iters

    @property
    def decay(self) -> float:
        """Decay the next update will use."""
        return ema_decay_at(int(self.steps), self.decay_start, self.decay_end, self.ramp_iters)

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: Tensor) -> None:
        """In place (mmengine >= 0.7 convention): ``avg = d * avg + (1 - d) * src``."""
        d = ema_decay_at(int(steps), self.decay_start, self.decay_end, self.ramp_iters)
        averaged_param.lerp_(source_param, 1.0 - d)


@HOOKS.register_module()
class EMATeacherHook(EMAHook):
    """Maintain the EMA teacher of a teacher-student model (Cross-MoST).

    Args:
        decay_start, decay_end, ramp_iters: the decay ramp (see :func:`ema_decay_at`).
        ema_type: averaged-model type (default ``'RampedEMA'``); extra kwargs go to it.
        strict_load, begin_iter, begin_epoch: as ``EMAHook``.
    """

    priority = 'NORMAL'

    def __init__(self, decay_start: float = 0.99, decay_end: float = 0.9998, ramp_iters: int = 1000,
                 ema_type: str = 'RampedEMA', strict_load: bool = False, begin_iter: int = 0, begin_epoch: int = 0,
                 **kwargs) -> None:
        super().__init__(ema_type=ema_type, strict_load=strict_load, begin_iter=begin_iter,
                         begin_epoch=begin_epoch, decay_start=decay_start, decay_end=decay_end,
                         ramp_iters=ramp_iters, **kwargs)

    def before_run(self, runner) -> None:
        """Build the averaged copy (with this package's registry) and hand it to the model as its teacher."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.src_model = model
        if hasattr(model, 'set_teacher'):
            model.set_teacher(None)  # never deep-copy an old teacher into the new one
        self.ema_model = MODELS.build(self.ema_cfg, default_args=dict(model=self.src_model))
        if hasattr(model, 'set_teacher'):
            model.set_teacher(self.ema_model.module)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        if hasattr(self.ema_model, 'decay'):
            runner.message_hub.update_scalar('train/ema_decay', float(self.ema_model.decay))
