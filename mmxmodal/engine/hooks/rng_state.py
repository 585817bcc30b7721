"""Exact ``--resume``: save the random generators with each checkpoint and restore them where the run stopped.

mmengine saves the model, the optimizer, the schedulers, the message hub and the hooks' own state (the EMA teacher
of ``EMATeacherHook`` included), but not the state of the random generators. After a resume the data pipeline's
augmentations and the model's own randomness (masks, sampled pairs, dropout) therefore differ from the
uninterrupted run, and so does the loss curve. :class:`RNGStateHook` closes that gap:

* At each checkpoint it stores, for every process, the states of Python's ``random``, NumPy's global generator, and
  torch's CPU (and CUDA) generators in ``checkpoint['rng_state']`` (plain tensors and ints: loads with
  ``weights_only=True``). In distributed runs the states of all ranks are gathered just before a checkpoint is due
  (the hook mirrors ``CheckpointHook``'s schedule), since only rank 0 writes the file.
* On ``--resume`` it restores this rank's state **right before the first batch after the resume point is fetched**:
  ``IterBasedTrainLoop`` first replays the data of the finished iterations (``Advance dataloader N steps``), which
  consumes random numbers (the pipeline itself with ``num_workers=0``, the dataloader's base seed otherwise); the
  hook wraps the loop's data iterator and restores after that replay. With ``EpochBasedTrainLoop`` it restores in
  ``before_train_epoch`` (mmengine resumes epoch loops at epoch boundaries only: a mid-epoch checkpoint restarts
  its epoch, which is not exact; a warning says so).
* Validation is made neutral to the training randomness (the generators are saved in ``before_val`` and restored
  in ``after_val``), so a resumed run and an uninterrupted one stay equal whatever ``val_interval`` is.

Exactness then holds for the same config, seed and number of processes (the tests use CPU with
``randomness=dict(seed=0, deterministic=True)``; on GPUs non-deterministic kernels can still differ).
"""
import logging
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist
from mmengine.dist import all_gather_object
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmdet3d.registry import HOOKS


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_rng_state() -> Dict[str, Any]:
    """States of ``random``, ``numpy.random`` and torch (CPU, every CUDA device) as tensors / ints."""
    py_version, py_state, py_gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(
        python=dict(version=py_version, state=torch.tensor(py_state, dtype=torch.int64), gauss=py_gauss),
        numpy=dict(name=str(name), keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss), cached=float(cached)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    py = state['python']
    random.setstate((py['version'], tuple(int(v) for v in py['state'].tolist()), py['gauss']))
    npy = state['numpy']
    np.random.set_state((npy['name'], npy['keys'].numpy().astype(np.uint32), npy['pos'], npy['has_gauss'],
                         npy['cached']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        cuda = state['cuda']
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


class _RestoreAfterReplay:
    """Stands in for ``IterBasedTrainLoop.dataloader_iterator``: after ``skip`` batches (mmengine's replay of the
    finished iterations) it restores the saved generators, puts the real iterator back and fetches."""

    def __init__(self, loop, inner, skip: int, state: Dict[str, Any]) -> None:
        self.loop, self.inner, self.skip, self.state, self.count = loop, inner, skip, state, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.count >= self.skip:
            set_rng_state(self.state)
            self.loop.dataloader_iterator = self.inner
            return next(self.inner)
        self.count += 1
        return next(self.inner)

    def __getattr__(self, name: str):  # e.g. ``_epoch`` of mmengine's _InfiniteDataloaderIterator
        return getattr(self.inner, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save / restore the random generators with the checkpoints for exact resume (see the module doc).

    Args:
        neutral_val: keep validation from consuming the training random streams.
    """

    # before CheckpointHook (VERY_LOW) in after_train_iter / after_train_epoch
    priority = 'LOW'

    def __init__(self, neutral_val: bool = True) -> None:
        self.neutral_val = neutral_val
        self._gathered: Optional[List[Dict[str, Any]]] = None
        self._pending: Optional[Dict[str, Any]] = None
        self._val_state: Optional[Dict[str, Any]] = None

    # ------------------------------------------------------------------ saving
    @staticmethod
    def _checkpoint_due(runner, at_epoch_end: bool) -> bool:
        for h in runner.hooks:
            if isinstance(h, CheckpointHook):
                if at_epoch_end:
                    return bool(h.by_epoch and (h.every_n_epochs(runner, h.interval, h.save_begin) or
                                                (h.save_last and h.is_last_train_epoch(runner))))
                return bool((not h.by_epoch) and (h.every_n_train_iters(runner, h.interval, h.save_begin) or
                                                  (h.save_last and h.is_last_train_iter(runner))))
        return False

    def _gather_if_due(self, runner, at_epoch_end: bool) -> None:
        if _world() > 1 and self._checkpoint_due(runner, at_epoch_end):
            self._gathered = all_gather_object(get_rng_state())  # mmengine's: right device for NCCL too

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._gather_if_due(runner, at_epoch_end=False)

    def after_train_epoch(self, runner) -> None:
        self._gather_if_due(runner, at_epoch_end=True)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if _world() > 1:
            states = self._gathered or [get_rng_state()]  # no gathered states: rank 0 only (warned on resume)
        else:
            states = [get_rng_state()]
        self._gathered = None
        checkpoint['rng_state'] = dict(world_size=_world(), states=states)

    # ------------------------------------------------------------------ restoring
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('rng_state')
        if not saved:
            print_log('RNGStateHook: the checkpoint has no random-generator state; the resumed run will not repeat '
                      'the uninterrupted one exactly', logger='current', level=logging.WARNING)
            return
        states, rank = saved['states'], _rank()
        if saved.get('world_size', 1) != _world() or rank >= len(states):
            print_log(f'RNGStateHook: checkpoint saved by {saved.get("world_size")} process(es) with {len(states)} '
                      f'generator state(s), resumed with {_world()}: rank {rank} keeps its fresh seed (the resumed '
                      'run is not an exact continuation)', logger='current', level=logging.WARNING)
            if rank >= len(states):
                return
        self._pending = states[rank]

    def before_train(self, runner) -> None:
        if self._pending is None:
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreAfterReplay(loop, loop.dataloader_iterator, loop.iter,
                                                           self._pending)
            self._pending = None
        elif isinstance(loop, EpochBasedTrainLoop):
            per_epoch = len(loop.dataloader)
            if per_epoch and loop.iter % per_epoch:
                print_log(f'RNGStateHook: resuming an EpochBasedTrainLoop from iteration {loop.iter}, inside epoch '
                          f'{loop.epoch}: mmengine restarts that epoch, so the resumed run is not exact. Use '
                          'IterBasedTrainLoop for mid-epoch checkpoints.', logger='current', level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        if self._pending is not None and not isinstance(runner.train_loop, IterBasedTrainLoop):
            set_rng_state(self._pending)
            self._pending = None

    # ------------------------------------------------------------------ validation
    def before_val(self, runner) -> None:
        if self.neutral_val:
            self._val_state = get_rng_state()

    def after_val(self, runner) -> None:
        if self.neutral_val and self._val_state is not None:
            set_rng_state(self._val_state)
            self._val_state = None
