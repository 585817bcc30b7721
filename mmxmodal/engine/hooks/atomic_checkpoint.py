"""Checkpoints that an interrupted save cannot break: atomic writes, ``last_checkpoint`` last, old files removed last.

mmengine 0.10.7's ``CheckpointHook`` removes the oldest kept checkpoint *before* it writes the new one, writes the
new one in place and then rewrites ``last_checkpoint`` in place. A SIGKILL or Ctrl-C during a save can therefore
leave a truncated ``epoch_N.pth`` and a ``last_checkpoint`` that names a deleted file, and ``--resume`` fails.

:class:`AtomicCheckpointHook` (a registered subclass, a drop-in for ``type='CheckpointHook'``) saves in this order:

1. every tensor of the checkpoint is checked; a non-finite one stops the run (``FloatingPointError`` naming it)
   and nothing is written;
2. the checkpoint is written to a temporary file in the same folder (``.epoch_N.pth.tmp``), flushed to disk
   (``fsync``) and renamed to ``epoch_N.pth`` (``os.replace``: atomic on POSIX), then the folder is synced;
3. ``last_checkpoint`` is written the same way (temporary file, fsync, rename);
4. only then are the checkpoints that ``max_keep_ckpts`` (or a new best checkpoint) retires removed. The names
   still to remove are saved in the new checkpoint (message hub info ``ckpt_pending_removal``), so a run killed
   between 3 and 4 removes them when it is resumed.

Whatever moment a save is interrupted at, ``last_checkpoint`` names a complete checkpoint (the new one or the
previous one), and ``tools/train.py CONFIG --resume`` continues from it. Stale temporary files are removed when a
run starts. Non-local storage backends (``backend_args`` for Petrel, ...) have no atomic rename: the hook then saves
as mmengine does and says so once.
"""
import logging
import os
import os.path as osp
from typing import Iterable, List, Tuple

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mmdet3d.registry import HOOKS

TMP_SUFFIX = '.tmp'
PENDING_KEY = 'ckpt_pending_removal'


def nonfinite_tensors(obj, prefix: str = '', limit: int = 20) -> List[Tuple[str, int, int]]:
    """Floating-point tensors of a nested dict / list that hold NaN or Inf.

    Args:
        obj: a checkpoint (or any nest of dicts, lists, tuples and tensors).
        prefix: name of ``obj`` (used to build dotted names).
        limit: stop after this many.

    Returns:
        ``[(name, num_nonfinite, numel), ...]`` (names like ``state_dict.backbone.bn1.running_mean``).
    """
    out: List[Tuple[str, int, int]] = []

    def visit(x, name: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(x, torch.Tensor):
            if x.is_floating_point() or x.is_complex():
                bad = int((~torch.isfinite(x.detach())).sum())
                if bad:
                    out.append((name, bad, x.numel()))
        elif isinstance(x, dict):
            for k, v in x.items():
                visit(v, f'{name}.{k}' if name else str(k))
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                visit(v, f'{name}.{i}' if name else str(i))

    visit(obj, prefix)
    return out


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. a folder that cannot be opened for reading: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    with open(path, 'rb+') as f:
        os.fsync(f.fileno())


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose saves survive SIGKILL / Ctrl-C at any moment, and never write non-finite tensors.

    Same arguments as mmengine's ``CheckpointHook`` (``interval``, ``by_epoch``, ``max_keep_ckpts``,
    ``save_best`` ...), plus:

    Args:
        check_finite: refuse to write a checkpoint holding a NaN / Inf floating-point tensor (``state_dict``, the
            optimizer state, an EMA teacher ...): ``FloatingPointError`` naming the tensors.

    See the module docstring for the order of the steps.
    """

    def __init__(self, *args, check_finite: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.check_finite = check_finite
        self._warned_backend = False

    # ------------------------------------------------------------------ injection points (tests)
    def _fault_point(self, name: str) -> None:
        """Called between the steps of a save (``name`` in :attr:`FAULT_POINTS`); does nothing. Fault-injection
        tests subclass the hook and kill the process here."""

    FAULT_POINTS = ('before_write', 'tmp_written', 'tmp_synced', 'renamed', 'last_checkpoint_tmp_written',
                    'last_checkpoint_updated', 'old_removed')

    # ------------------------------------------------------------------ hooks
    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not (self._atomic and is_main_process()):
            return
        for name in os.listdir(self.out_dir) if osp.isdir(self.out_dir) else []:
            if name.startswith('.') and name.endswith(TMP_SUFFIX):  # left by a save that was killed
                os.remove(osp.join(self.out_dir, name))
                print_log(f'AtomicCheckpointHook: removed {name}, the temporary file of an interrupted save',
                          logger='current', level=logging.WARNING)
        stale = osp.join(runner.work_dir, '.last_checkpoint' + TMP_SUFFIX)
        if osp.exists(stale):
            os.remove(stale)
        pending = runner.message_hub.runtime_info.get(PENDING_KEY) or []
        out_dir = osp.abspath(self.out_dir)  # only this run's folder (a checkpoint may come from another run)
        self._remove(runner, [p for p in pending if osp.dirname(osp.abspath(p)) == out_dir])
        runner.message_hub.update_info(PENDING_KEY, [])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Last hook before the file is written (lowest priority): refuse non-finite tensors."""
        if not self.check_finite:
            return
        bad = nonfinite_tensors({k: v for k, v in checkpoint.items() if k != 'meta'})
        if bad:
            names = '; '.join(f'{n} ({k} of {t} values)' for n, k, t in bad)
            raise FloatingPointError(
                f'AtomicCheckpointHook refused to write a checkpoint at epoch {runner.epoch}, iteration '
                f'{runner.iter}: non-finite tensors: {names}. The previous checkpoint and last_checkpoint are kept; '
                'resume from them, or find the cause (NaNGuardHook, ValidatePoints / ValidateImages in the '
                'pipeline)')

    # ------------------------------------------------------------------ saving
    @property
    def _atomic(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def _atomic_save(self, runner, filename: str, **kwargs) -> str:
        """``runner.save_checkpoint`` into a temporary file, fsync, rename to ``filename``; returns its path."""
        final = osp.join(self.out_dir, filename)
        tmp = osp.join(self.out_dir, f'.{filename}{TMP_SUFFIX}')
        self._fault_point('before_write')
        try:
            runner.save_checkpoint(self.out_dir, osp.basename(tmp), self.file_client_args,
                                   backend_args=self.backend_args, **kwargs)
            if not is_main_process():  # runner.save_checkpoint writes on the main process only
                return final
            self._fault_point('tmp_written')
            _fsync_file(tmp)
            self._fault_point('tmp_synced')
            os.replace(tmp, final)
        except BaseException:  # Ctrl-C included: no half-written file stays behind
            if is_main_process() and osp.exists(tmp):
                os.remove(tmp)
            raise
        _fsync_dir(self.out_dir)
        self._fault_point('renamed')
        return final

    def _write_last_checkpoint(self, runner, path: str) -> None:
        final = osp.join(runner.work_dir, 'last_checkpoint')
        tmp = osp.join(runner.work_dir, '.last_checkpoint' + TMP_SUFFIX)
        try:
            with open(tmp, 'w') as f:
                f.write(path)
                f.flush()
                os.fsync(f.fileno())
            self._fault_point('last_checkpoint_tmp_written')
            os.replace(tmp, final)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise
        _fsync_dir(runner.work_dir)
        self._fault_point('last_checkpoint_updated')

    def _remove(self, runner, paths: Iterable[str]) -> None:
        if not is_main_process():
            return
        for path in paths:
            if not path or path == getattr(self, 'last_ckpt', None):
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints are folders
                self.file_backend.rmtree(path)
            self._fault_point('old_removed')

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not self._atomic:
            self._warn_backend()
            return super()._save_checkpoint_with_step(runner, step, meta)
        retired: List[str] = []
        if self.max_keep_ckpts > 0 and not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                old = self.keep_ckpt_ids.popleft()
                retired.append(self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old)))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        pending = list(runner.message_hub.runtime_info.get(PENDING_KEY) or []) + retired
        runner.message_hub.update_info(PENDING_KEY, pending)  # saved with the checkpoint: see the module doc
        self._atomic_save(runner, ckpt_filename, save_optimizer=self.save_optimizer,
                          save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                          **self.args)
        if not is_main_process():
            return
        self._write_last_checkpoint(runner, self.last_ckpt)
        self._remove(runner, pending)
        runner.message_hub.update_info(PENDING_KEY, [])

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's best-checkpoint logic, but the new best file is written atomically before the previous best
        is removed."""
        if not self.save_best:
            return
        if not self._atomic:
            self._warn_backend()
            return super()._save_best_checkpoint(runner, metrics)
        if self.by_epoch:
            ckpt_filename = self.filename_tmpl.format(runner.epoch)
            cur_type, cur_time = 'epoch', runner.epoch
        else:
            ckpt_filename = self.filename_tmpl.format(runner.iter)
            cur_type, cur_time = 'iter', runner.iter
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])
        updated = False
        single = len(self.key_indicators) == 1
        for key_indicator, rule in zip(self.key_indicators, self.rules):
            key_score = metrics[key_indicator]
            score_key = 'best_score' if single else f'best_score_{key_indicator}'
            path_key = 'best_ckpt' if single else f'best_ckpt_{key_indicator}'
            old_path = self.best_ckpt_path if single else self.best_ckpt_path_dict[key_indicator]
            best_score = runner.message_hub.get_info(score_key) if score_key in runner.message_hub.runtime_info \
                else self.init_value_map[rule]
            if key_score is None or not self.is_better_than[key_indicator](key_score, best_score):
                continue
            updated = True
            runner.message_hub.update_info(score_key, key_score)
            best_name = f'best_{key_indicator}_{ckpt_filename}'.replace('/', '_')
            new_path = self.file_backend.join_path(self.out_dir, best_name)
            if single:
                self.best_ckpt_path = new_path
            else:
                self.best_ckpt_path_dict[key_indicator] = new_path
            runner.message_hub.update_info(path_key, new_path)
            self._atomic_save(runner, best_name, save_optimizer=False, save_param_scheduler=False, meta=meta,
                              by_epoch=False)
            if old_path and old_path != new_path:
                self._remove(runner, [old_path])
                runner.logger.info(f'The previous best checkpoint {old_path} is removed')
            runner.logger.info(f'The best checkpoint with {key_score:0.4f} {key_indicator} at {cur_time} '
                               f'{cur_type} is saved to {best_name}.')
        if updated and self.last_ckpt is not None:  # as mmengine: store the new best in the last checkpoint too
            self._save_checkpoint_with_step(runner, cur_time, meta)

    def _warn_backend(self) -> None:
        if not self._warned_backend:
            self._warned_backend = True
            print_log(f'AtomicCheckpointHook: {type(self.file_backend).__name__} has no atomic rename; checkpoints '
                      'are saved as by mmengine\'s CheckpointHook', logger='current', level=logging.WARNING)

