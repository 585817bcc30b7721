"""Fail fast, on every process, when the train data gives some process no (or a different number of) iterations.

Without this check, a process whose shard of the data set is empty, or shorter than a batch with ``drop_last=True``,
runs 0 iterations: alone it "finishes" an epoch of nothing and saves an untrained checkpoint; next to other
processes it leaves them waiting in a collective (gradient all-reduce, counters) forever. Processes with different
numbers of iterations per epoch (a sampler without ``round_up``) hang the same way at the end of the shortest epoch.
"""
from typing import List

import torch
from mmengine.dist import all_gather, get_rank, get_world_size
from mmengine.hooks import Hook

from mmdet3d.registry import HOOKS


def _loader_stats(loader) -> List[float]:
    """(iterations per epoch, samples of this process, batch size, drop_last) of a dataloader; -1 when unknown."""
    try:
        n_iters = len(loader)
    except TypeError:  # an iterable dataset without length
        n_iters = -1
    sampler = getattr(loader, 'batch_sampler', None)
    sampler = getattr(sampler, 'sampler', None) or getattr(loader, 'sampler', None)
    try:
        n_samples = len(sampler)
    except TypeError:
        n_samples = -1
    batch_size = getattr(loader, 'batch_size', None)
    if batch_size is None:
        batch_size = getattr(getattr(loader, 'batch_sampler', None), 'batch_size', -1)
    drop_last = getattr(loader, 'drop_last', None)
    if drop_last is None:
        drop_last = getattr(getattr(loader, 'batch_sampler', None), 'drop_last', False)
    return [float(n_iters), float(n_samples), float(batch_size or -1), float(bool(drop_last))]


def describe_shards(stats: List[List[float]]) -> List[str]:
    """One line per process: ``rank r: S samples, batch_size B, drop_last=D -> I iterations per epoch``."""
    lines = []
    for r, (n_iters, n_samples, bs, drop) in enumerate(stats):
        lines.append(f'rank {r}: {int(n_samples)} samples, batch_size {int(bs)}, drop_last={bool(drop)} -> '
                     f'{int(n_iters)} iterations per epoch')
    return lines


@HOOKS.register_module()
class ShardCheckHook(Hook):
    """Before training, compare the train dataloader of every process; raise ``RuntimeError`` on every process when
    one of them gets 0 iterations per epoch, or when they get different numbers of iterations.

    The per-process counts are all-gathered (one collective that every process reaches right after building the
    dataloader and before any training collective), so every process fails with the same message and none hangs.
    Runs first among the ``before_train`` hooks (priority ``VERY_HIGH``).
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loader = getattr(runner.train_loop, 'dataloader', None)
        if loader is None:
            return
        mine = torch.tensor(_loader_stats(loader), dtype=torch.float64)
        world = get_world_size()
        stats = [t.tolist() for t in all_gather(mine)] if world > 1 else [mine.tolist()]
        iters = [int(s[0]) for s in stats]
        if all(i < 0 for i in iters):
            return
        rank = get_rank()
        detail = '; '.join(describe_shards(stats))
        if min(i for i in iters if i >= 0) == 0:
            empty = [r for r, i in enumerate(iters) if i == 0]
            dataset = getattr(loader, 'dataset', None)
            size = len(dataset) if hasattr(dataset, '__len__') else '?'
            raise RuntimeError(
                f'the train data gives {"process" if world > 1 else "this run"} '
                f'{", ".join(f"rank {r}" for r in empty) if world > 1 else ""} 0 iterations per epoch (data set of '
                f'{size} samples over {world} process(es); {detail}): its shard is empty or shorter than one batch '
                'with drop_last=True. Use fewer processes, a smaller batch_size, drop_last=False or more data '
                f'(raised on every process; this is rank {rank})'.replace('  ', ' '))
        if world > 1 and len(set(i for i in iters if i >= 0)) > 1:
            raise RuntimeError(
                f'the processes get different numbers of iterations per epoch ({detail}): the longer ones would wait '
                'forever for the others in the gradient all-reduce. Use a sampler that gives every process the same '
                f'number of samples (DefaultSampler with round_up=True) (raised on every process; this is rank '
                f'{rank})')
