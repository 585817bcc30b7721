"""Count the samples that the datasets skipped (``on_error='skip'``) and show the count in the training logs.

The datasets (:class:`mmxmodal.datasets.robust.RobustDatasetMixin`) attach ``skipped_before=n`` to the metainfo of
the sample that replaced ``n`` skipped ones, in whatever process (dataloader worker) produced it. This hook sums
those values over each batch in the main process, all-reduces the sum over processes, and keeps the total in the
message hub: ``train/skipped_samples`` (scalar, the running total, every iteration; also in
``vis_data/scalars.json``) and the info ``skipped_samples``; the totals are saved in checkpoints
(``checkpoint['skipped_samples']``), so they survive ``--resume``. Entries dropped while the annotation file was parsed (``dataset.num_skipped_infos``) are logged
once before training.
"""
import logging
from typing import Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmdet3d.registry import HOOKS


def count_skipped(data_batch: Optional[dict]) -> int:
    """Sum of ``skipped_before`` over the data samples (or plain dict samples) of a batch."""
    if not isinstance(data_batch, dict):
        return 0
    samples = data_batch.get('data_samples')
    total = 0
    if samples is not None:
        for s in samples if isinstance(samples, (list, tuple)) else [samples]:
            meta = s.metainfo if hasattr(s, 'metainfo') else (s if isinstance(s, dict) else {})
            total += int(meta.get('skipped_before', 0) or 0)
        return total
    value = data_batch.get('skipped_before')
    if isinstance(value, torch.Tensor):
        return int(value.sum())
    if isinstance(value, (list, tuple)):
        return int(sum(int(v or 0) for v in value))
    return int(value or 0)


@HOOKS.register_module()
class SkippedSamplesHook(Hook):
    """Log ``train/skipped_samples`` (running total over all processes) every iteration.

    Args:
        max_ratio: stop (``RuntimeError``) when more than this fraction of the samples fetched so far were skipped
            (after ``min_samples`` samples): a systematically broken data set must not silently train on a subset.
            None disables.
        min_samples: samples to see before ``max_ratio`` is enforced.
    """

    priority = 'NORMAL'

    def __init__(self, max_ratio: Optional[float] = None, min_samples: int = 100) -> None:
        self.max_ratio = max_ratio
        self.min_samples = min_samples
        self.total = 0
        self.seen = 0

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['skipped_samples'] = dict(total=self.total, seen=self.seen)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:  # --resume: keep counting
        saved = checkpoint.get('skipped_samples') or {}
        self.total, self.seen = int(saved.get('total', 0)), int(saved.get('seen', 0))

    def before_train(self, runner) -> None:
        loader = getattr(runner.train_loop, 'dataloader', None)
        dataset = getattr(loader, 'dataset', None)
        n_infos = int(getattr(dataset, 'num_skipped_infos', 0) or 0)
        if n_infos:
            print_log(f'{type(dataset).__name__}: {n_infos} entries were dropped while loading the annotations '
                      '(see the warnings above for each one)', logger='current', level=logging.WARNING)
        runner.message_hub.update_info('skipped_infos', n_infos)

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        samples = (data_batch or {}).get('data_samples') if isinstance(data_batch, dict) else None
        counts = torch.tensor([count_skipped(data_batch), len(samples) if samples is not None else 0],
                              dtype=torch.float64)
        all_reduce(counts, op='sum')  # no-op in one process; moves to the backend's device (NCCL: GPU)
        new, fetched = int(counts[0]), int(counts[1])
        self.total += new
        self.seen += fetched + new
        runner.message_hub.update_info('skipped_samples', self.total)
        runner.message_hub.update_info('fetched_samples', self.seen)
        runner.message_hub.update_scalar('train/skipped_samples', float(self.total))
        if new:
            print_log(f'iteration {runner.iter}: {new} bad samples skipped and replaced ({self.total} so far; the '
                      'warnings name the files)', logger='current', level=logging.WARNING)
        if self.max_ratio is not None and self.seen >= self.min_samples and self.total > self.max_ratio * self.seen:
            raise RuntimeError(f'SkippedSamplesHook: {self.total} of {self.seen} fetched samples were bad (more '
                               f'than max_ratio={self.max_ratio}); fix the data set (the warnings name the files)')
