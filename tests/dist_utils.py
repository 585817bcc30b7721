"""Run a function in N CPU processes over gloo (for distributed-equality tests)."""
import os
import socket
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world, port, fn, args, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        torch.save(fn(rank, world, *args), os.path.join(out_dir, f'{rank}.pt'))
    finally:
        dist.destroy_process_group()


def run_distributed(fn, world: int = 2, args=()) -> list:
    """Call ``fn(rank, world, *args)`` in ``world`` gloo processes; return each rank's (torch.save-able) result.

    ``fn`` must be a module-level function (it is pickled for spawn).
    """
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_worker, args=(world, _free_port(), fn, args, d), nprocs=world, join=True)
        return [torch.load(os.path.join(d, f'{r}.pt'), weights_only=False) for r in range(world)]
