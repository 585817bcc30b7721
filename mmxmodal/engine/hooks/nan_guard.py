"""Guard training against non-finite losses: name the loss term and the samples, then stop or skip the step.

A skipped step leaves no trace in the model: the forward pass of a training step already updates buffers (BatchNorm
running statistics, ``num_batches_tracked``) before the loss is known, so the hook snapshots every buffer before
the step and restores it when the step is skipped. A step whose loss is finite but which left a non-finite buffer
(a NaN input column that only reached the statistics) is treated as a non-finite step too.
"""
import logging
from typing import Dict, List, Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdet3d.registry import HOOKS

DataBatch = Optional[dict]


def sample_ids(data_batch: DataBatch,
               keys: Sequence[str] = ('sample_idx', 'token', 'sample_token', 'pts_path', 'lidar_path', 'img_path'),
               path_keys: Sequence[str] = ('pts_path', 'lidar_path')) -> List[str]:
    """Identify the samples of a batch from their data-sample metainfo: the first of ``keys`` present per sample,
    plus its point file (first of ``path_keys``) when that is not already the id, e.g.
    ``'sample_idx=3 (samples/LIDAR_TOP/...pcd.bin)'``."""
    out = []
    samples = (data_batch or {}).get('data_samples') or []
    for s in samples:
        meta = s.metainfo if hasattr(s, 'metainfo') else (s if isinstance(s, dict) else {})
        for k in keys:
            if k in meta:
                ident = f'{k}={meta[k]}'
                path = next((meta[p] for p in path_keys if p in meta and p != k), None)
                out.append(ident + (f' ({path})' if path and k not in path_keys else ''))
                break
        else:
            out.append('?')
    return out


def nonfinite_inputs(inputs, prefix: str = 'inputs', limit: int = 5) -> List[str]:
    """Names of the floating-point tensors of a batch's ``inputs`` (dict / list / tensor nest) holding NaN or Inf,
    e.g. ``['inputs.points[1]']``."""
    out: List[str] = []

    def visit(x, name):
        if len(out) >= limit:
            return
        if isinstance(x, torch.Tensor):
            if x.is_floating_point() and not bool(torch.isfinite(x).all()):
                out.append(name)
        elif isinstance(x, dict):
            for k, v in x.items():
                visit(v, f'{name}.{k}')
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                visit(v, f'{name}[{i}]')

    visit(inputs, prefix)
    return out


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Check every loss term before backward; on NaN/Inf either stop with a precise error or skip the step.

    Works with any mmengine model (stock mmdet3d detectors included): it wraps the model's ``parse_losses``
    (to see each term) and the optimizer wrapper's ``update_params`` (to skip backward and step). In distributed
    runs the decision is all-reduced, so every process skips the same iteration.

    Args:
        action: ``'stop'`` raises ``FloatingPointError`` naming the terms and samples; ``'skip'`` drops the
            iteration (no backward, no step), logs a warning and counts it in ``train/nan_skipped``.
        max_skips: with ``'skip'``, stop anyway after this many skipped iterations (None: never).
    """
    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'stop', max_skips: Optional[int] = None) -> None:
        if action not in ('stop', 'skip'):
            raise ValueError(f"NaNGuardHook action must be 'stop' or 'skip', got {action!r}")
        self.action = action
        self.max_skips = max_skips
        self.skipped = 0
        self._bad_terms: Dict[str, float] = {}
        self._ids: List[str] = []
        self._iter = 0
        self._buffers: Dict[str, torch.Tensor] = {}
        self._bad_buffers: List[str] = []
        self._bad_inputs: List[str] = []
        self._model: Optional[torch.nn.Module] = None

    # ---------------------------------------------------------------- wiring
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['nan_guard_skipped'] = self.skipped  # --resume keeps counting towards max_skips

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.skipped = int(checkpoint.get('nan_guard_skipped', 0))

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._model = model
        parse = model.parse_losses
        hook = self

        def parse_losses(losses):
            loss, log_vars = parse(losses)
            hook._bad_terms = {
                k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                for k, v in log_vars.items() if isinstance(v, (float, int, torch.Tensor)) and
                not torch.isfinite(torch.as_tensor(v)).all()
            }
            if hook._bad_terms and hook.action == 'skip':
                log_vars = {k: v for k, v in log_vars.items() if k not in hook._bad_terms}
            return loss, log_vars

        model.parse_losses = parse_losses

        optim_wrapper = runner.optim_wrapper
        update = optim_wrapper.update_params

        def update_params(loss, *args, **kwargs):
            hook._bad_buffers = hook._nonfinite_buffers()
            finite = bool(torch.isfinite(loss).all()) and not hook._bad_buffers
            bad = torch.tensor([0.0 if finite else 1.0])
            if dist.is_available() and dist.is_initialized():
                bad = bad.to(loss.device)
                dist.all_reduce(bad, op=dist.ReduceOp.MAX)
            if bad.item() == 0:
                return update(loss, *args, **kwargs)
            return hook._on_nonfinite(runner, optim_wrapper)

        optim_wrapper.update_params = update_params

    def before_train_iter(self, runner, batch_idx: int, data_batch: DataBatch = None) -> None:
        self._ids = sample_ids(data_batch)
        self._iter = runner.iter
        self._bad_inputs = nonfinite_inputs((data_batch or {}).get('inputs') if isinstance(data_batch, dict) else None)
        if self._model is not None and self.action == 'skip':  # restored if this step is skipped
            self._buffers = {n: b.detach().clone() for n, b in self._model.named_buffers()}

    def after_train_iter(self, runner, batch_idx: int, data_batch: DataBatch = None, outputs=None) -> None:
        runner.message_hub.update_scalar('train/nan_skipped', self.skipped)

    # ---------------------------------------------------------------- handling
    def _nonfinite_buffers(self, limit: int = 5) -> List[str]:
        out = []
        if self._model is None:
            return out
        for name, buf in self._model.named_buffers():
            if buf.is_floating_point() and not bool(torch.isfinite(buf).all()):
                out.append(name)
                if len(out) >= limit:
                    break
        return out

    def _restore_buffers(self) -> None:
        if self._model is None or not self._buffers:
            return
        with torch.no_grad():
            for name, buf in self._model.named_buffers():
                if name in self._buffers and self._buffers[name].shape == buf.shape:
                    buf.copy_(self._buffers[name])

    def _on_nonfinite(self, runner, optim_wrapper) -> None:
        terms = ', '.join(f'{k}={v}' for k, v in self._bad_terms.items())
        if self._bad_buffers:
            terms += (', ' if terms else '') + 'non-finite buffers after the forward pass: ' + ', '.join(
                self._bad_buffers)
        if getattr(self, '_bad_inputs', None):
            terms += (', ' if terms else '') + 'non-finite inputs: ' + ', '.join(self._bad_inputs)
        terms = terms or 'another process'
        where = f'iteration {self._iter}: non-finite values ({terms}); samples: {", ".join(self._ids) or "?"}'
        if self.action == 'stop' or (self.max_skips is not None and self.skipped >= self.max_skips):
            raise FloatingPointError(f'NaNGuardHook stopped training at {where}')
        self.skipped += 1
        optim_wrapper.zero_grad()
        self._restore_buffers()
        print_log(f'NaNGuardHook skipped {where} (skipped so far: {self.skipped})', logger='current',
                  level=logging.WARNING)
