"""Distributed training without CUDA: gloo instead of nccl, no ``cuda.set_device``, DDP without device ids.

mmengine's PyTorch launcher calls ``torch.cuda.set_device(LOCAL_RANK)`` and wraps models with
``device_ids=[LOCAL_RANK]``; both fail on machines without a GPU. On such machines (only), this module makes
``tools/dist_train.sh CONFIG N`` run N CPU processes over gloo with unchanged configs. On a GPU machine nothing is
changed.
"""
import logging

import torch


def patch_cpu_distributed() -> bool:
    """Apply the CPU fallbacks when CUDA is unavailable. Idempotent; returns True when patched."""
    if torch.cuda.is_available():
        return False
    from mmengine.dist import utils as dist_utils
    from mmengine.logging import print_log
    from mmengine.model.wrappers import distributed as mm_ddp

    if getattr(dist_utils._init_dist_pytorch, '_mmxmodal_cpu', False):
        return True

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
        if backend != 'gloo':
            print_log(f'no CUDA device: using the gloo backend instead of {backend}', logger='current',
                      level=logging.WARNING)
        torch.distributed.init_process_group(backend='gloo', **kwargs)

    _init_dist_pytorch._mmxmodal_cpu = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch

    ddp_init = mm_ddp.MMDistributedDataParallel.__init__

    def __init__(self, module, detect_anomalous_params: bool = False, **kwargs):
        if not any(p.is_cuda for p in module.parameters()):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        ddp_init(self, module=module, detect_anomalous_params=detect_anomalous_params, **kwargs)

    mm_ddp.MMDistributedDataParallel.__init__ = __init__
    return True


CPU_DISTRIBUTED_PATCHED = patch_cpu_distributed()
