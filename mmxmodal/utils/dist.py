"""Distributed helpers for losses that need the global batch.

All helpers are no-ops in a single process, so the same loss code runs with and without ``torch.distributed``.
"""
from typing import List, Tuple

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True when a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 (equal sizes) whose backward returns this rank's slice of the summed gradient.

    Each process builds its loss on the gathered tensor; the gradient of the *sum of all processes' losses* with
    respect to the local input is the all-reduced gradient restricted to the local rows. DDP then averages
    parameter gradients over processes, so the loss must be divided by nothing extra: a 2-process run gives the
    same gradients as one process on the concatenated batch when each process's loss is the mean over its own
    rows (see ``info_nce``).
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.rank = dist.get_rank()
        ctx.n = x.shape[0]
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return torch.cat(out, 0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Tensor]:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return (grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n], )


def gather_sizes(n: int, device: torch.device) -> List[int]:
    """Row counts of every process (``[n]`` without distribution)."""
    if not is_distributed():
        return [n]
    t = torch.tensor([n], device=device, dtype=torch.long)
    out = [torch.zeros_like(t) for _ in range(get_world_size())]
    dist.all_gather(out, t)
    return [int(s.item()) for s in out]


def gather_with_grad(x: Tensor) -> Tuple[Tensor, int]:
    """Concatenate ``x`` (N_r, ...) from all processes along dim 0, keeping gradients to the local rows.

    Processes may hold different N_r (rows are padded for the collective and cut afterwards).

    Returns:
        (gathered (sum_r N_r, ...), offset of this process's rows in the gathered tensor)
    """
    if not is_distributed():
        return x, 0
    sizes = gather_sizes(x.shape[0], x.device)
    n_max = max(sizes)
    if n_max == 0:
        return x, 0
    pad = x.new_zeros((n_max - x.shape[0], ) + tuple(x.shape[1:]))
    padded = torch.cat([x, pad], 0) if pad.shape[0] else x
    full = _GatherWithGrad.apply(padded)
    parts = [full[r * n_max:r * n_max + s] for r, s in enumerate(sizes)]
    return torch.cat(parts, 0), sum(sizes[:get_rank()])


def all_reduce_mean(x: Tensor) -> Tensor:
    """Mean of ``x`` over processes, differentiable (each process gets the gradient of its own share)."""
    if not is_distributed():
        return x
    return _AllReduceMean.apply(x)


class _AllReduceMean(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        y = x.detach().clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y / dist.get_world_size()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Tensor]:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return (grad / dist.get_world_size(), )


def close_process_group() -> None:
    """Leave the default process group in order, while the interpreter is fully alive (a no-op without one).

    ``destroy_process_group`` only drops ``torch.distributed``'s own references to the group; a runner's
    ``MMDistributedDataParallel`` wrapper keeps it alive until the runner is collected. Left to interpreter
    finalisation, gloo's worker threads can abort the process ("terminate called without an active exception",
    the SIGABRT of one rank under ``dist_train.sh`` on CPU). So the caller drops its runner first, reference
    cycles are collected here, and every rank waits for the others (one may still be saving its last checkpoint)
    before the group is destroyed.
    """
    import gc
    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()
