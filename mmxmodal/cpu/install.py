"""Install / uninstall the CPU patches (see :mod:`mmxmodal.cpu` for the table of what is patched and why)."""
import functools
import logging
import os
import subprocess
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

_MISSING = object()
# (owner, attribute, value before install) of every installed patch, per group, in installation order
_SAVED: Dict[str, List[Tuple[Any, str, Any]]] = {}


def _version_tuple(v: str) -> Tuple[int, ...]:
    out = []
    for part in v.split('+')[0].split('.')[:3]:
        digits = ''.join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def _in_range(version: str, lo: str, hi: str) -> bool:
    return _version_tuple(lo) <= _version_tuple(version) < _version_tuple(hi)


def _log(msg: str, level: int = logging.INFO) -> None:
    from mmengine.logging import print_log
    print_log(msg, logger='current', level=level)


def _set(group: str, owner: Any, attr: str, value: Any) -> None:
    """Replace ``owner.attr`` and remember the previous value (the raw class-dict entry, so staticmethods survive)."""
    old = owner.__dict__.get(attr, _MISSING) if isinstance(owner, type) else getattr(owner, attr, _MISSING)
    _SAVED.setdefault(group, []).append((owner, attr, old))
    setattr(owner, attr, value)


# ----------------------------------------------------------------------------------------------- mmcv point ops
def _mmcv_point_ops(group: str) -> Optional[str]:
    """Guard, then patch mmcv's point-op Functions. Returns None when installed, else the reason for skipping."""
    try:
        import mmcv
    except ImportError:
        return 'mmcv is not installed'
    if not _in_range(mmcv.__version__, '2.0.0', '2.2.0'):
        return f'written for mmcv 2.0-2.1, found {mmcv.__version__}'
    try:
        from importlib import import_module  # the modules: mmcv.ops re-exports functions under the same names
        bq, fps, gp, grp, kn, ti, tn = (import_module(f'mmcv.ops.{n}') for n in (
            'ball_query', 'furthest_point_sample', 'gather_points', 'group_points', 'knn', 'three_interpolate',
            'three_nn'))
    except ImportError as e:  # mmcv built without ops (mmcv-lite)
        return f'mmcv has no compiled ops ({e})'
    from mmxmodal.models.ops import point_ops as P

    def forward_on(cls, cpu_forward: Callable, device_arg: int) -> None:
        cuda_forward = cls.forward

        def forward(ctx, *args):
            t = args[device_arg] if device_arg < len(args) else None
            if t is None and device_arg + 1 < len(args):  # KNN(center_xyz=None)
                t = args[device_arg + 1]
            if isinstance(t, Tensor) and t.is_cuda:
                return cuda_forward(ctx, *args)
            return cpu_forward(ctx, *args)

        forward.__doc__ = cuda_forward.__doc__
        _set(group, cls, 'forward', staticmethod(forward))

    def backward_on(cls, cpu_backward: Callable) -> None:
        cuda_backward = cls.backward

        def backward(ctx, *grads):
            if grads[0].is_cuda:
                return cuda_backward(ctx, *grads)
            return cpu_backward(ctx, *grads)

        _set(group, cls, 'backward', staticmethod(backward))

    def nondiff(ctx, out):
        ctx.mark_non_differentiable(out)
        return out

    forward_on(fps.FurthestPointSampling, lambda ctx, xyz, m: nondiff(ctx, P.fps_cpu(xyz, m)), 0)
    forward_on(fps.FurthestPointSamplingWithDist, lambda ctx, d, m: nondiff(ctx, P.fps_with_dist_cpu(d, m)), 0)

    def bq_cpu(ctx, min_r, max_r, ns, xyz, center, xyz_cnt=None, center_cnt=None):
        assert min_r < max_r
        if xyz_cnt is not None and center_cnt is not None:
            return nondiff(ctx, P.stack_ball_query_cpu(max_r, ns, xyz, center, xyz_cnt, center_cnt))
        return nondiff(ctx, P.ball_query_cpu(min_r, max_r, ns, xyz, center))

    forward_on(bq.BallQuery, bq_cpu, 3)
    forward_on(kn.KNN, lambda ctx, k, xyz, c=None, tr=False: nondiff(ctx, P.knn_cpu(k, xyz, c, tr)), 1)

    def tn_cpu(ctx, target, source):
        dist, idx = P.three_nn_cpu(target, source)
        ctx.mark_non_differentiable(idx)
        return dist, idx

    forward_on(tn.ThreeNN, tn_cpu, 0)

    def grp_fwd(ctx, features, idx, features_cnt=None, idx_cnt=None):
        if features_cnt is not None and idx_cnt is not None:
            rows, valid = P._stack_rows(features_cnt, idx, idx_cnt)
            ctx.mmx = ('stack', rows, valid, features.shape[0])
            return P.stack_grouping_cpu(features, features_cnt, idx, idx_cnt)
        ctx.mmx = ('dense', idx, features.shape[2])
        return P._flat_gather(features, idx)

    def grp_bwd(ctx, grad):
        if ctx.mmx[0] == 'stack':
            _, rows, valid, n = ctx.mmx  # grad (M, C, S) -> (N, C)
            g = (grad.permute(0, 2, 1) * valid[..., None].to(grad.dtype)).reshape(-1, grad.shape[1])
            out = grad.new_zeros(n, grad.shape[1]).index_add_(0, rows.reshape(-1), g)
            return out, None, None, None
        _, idx, n = ctx.mmx
        return P._flat_scatter(grad, idx, n), None, None, None

    forward_on(grp.GroupingOperation, grp_fwd, 0)
    backward_on(grp.GroupingOperation, grp_bwd)

    def gp_fwd(ctx, features, idx):
        ctx.mmx = (idx, features.shape[2])
        ctx.mark_non_differentiable(idx)
        return P._flat_gather(features, idx)

    def gp_bwd(ctx, grad):
        idx, n = ctx.mmx
        return P._flat_scatter(grad, idx, n), None

    forward_on(gp.GatherPoints, gp_fwd, 0)
    backward_on(gp.GatherPoints, gp_bwd)

    def ti_fwd(ctx, features, idx, weight):
        ctx.mmx = (idx, weight, features.shape[2])
        return P.three_interpolate_cpu(features, idx, weight)

    def ti_bwd(ctx, grad):
        idx, weight, m = ctx.mmx
        return P._flat_scatter(grad[..., None] * weight[:, None], idx, m), None, None

    forward_on(ti.ThreeInterpolate, ti_fwd, 0)
    backward_on(ti.ThreeInterpolate, ti_bwd)
    return None


# ----------------------------------------------------------------------------------------------- spconv
def _spconv_native_cpu(group: str) -> Optional[str]:
    try:
        with warnings.catch_warnings():  # spconv 2.3.6 uses torch.cuda.amp decorators deprecated in torch 2.4
            warnings.simplefilter('ignore', FutureWarning)
            import spconv
            import spconv.pytorch  # noqa: F401
        from spconv.core import ConvAlgo
        from spconv.pytorch.conv import SparseConvolution
    except ImportError:
        return 'spconv 2.x is not installed'
    version = getattr(spconv, '__version__', '0')
    if not _in_range(version, '2.2.0', '2.4.0'):  # weights are algorithm-independent (KRSC) from 2.2 on
        return f'written for spconv 2.2-2.3, found {version}'
    default_forward = SparseConvolution.forward

    @functools.wraps(default_forward)
    def forward(self, input, *args, **kwargs):
        if input.features.is_cuda or self.algo == ConvAlgo.Native:
            return default_forward(self, input, *args, **kwargs)
        chosen = self.algo
        self.algo = ConvAlgo.Native
        try:
            return default_forward(self, input, *args, **kwargs)
        finally:
            self.algo = chosen

    _set(group, SparseConvolution, 'forward', forward)
    return None


# ----------------------------------------------------------------------------------------------- mmcv _ext on CPU
class _CpuFallbackExt:
    """Stands for ``mmcv._ext`` in one mmcv / mmdet3d module: the named kernels run the PyTorch version of
    :mod:`mmxmodal.models.ops.mmcv_cpu_kernels` when their first tensor argument is on the CPU, mmcv's compiled
    kernel otherwise; every other attribute is mmcv's."""

    def __init__(self, ext: Any, cpu_kernels: Dict[str, Callable]) -> None:
        self._ext = ext
        for name, cpu_kernel in cpu_kernels.items():
            setattr(self, name, self._dispatch(getattr(ext, name), cpu_kernel))

    @staticmethod
    def _dispatch(compiled: Callable, cpu_kernel: Callable) -> Callable:

        @functools.wraps(cpu_kernel)
        def kernel(*args):
            first = next((a for a in args if isinstance(a, Tensor)), None)
            if first is not None and first.is_cuda:
                return compiled(*args)
            return cpu_kernel(*args)

        return kernel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ext, name)


def _mmcv_ext_group(group: str, modules: Sequence[str], kernels: Sequence[str]) -> Optional[str]:
    try:
        import mmcv
    except ImportError:
        return 'mmcv is not installed'
    if not _in_range(mmcv.__version__, '2.0.0', '2.2.0'):
        return f'written for mmcv 2.0-2.1, found {mmcv.__version__}'
    from importlib import import_module
    try:
        mods = [import_module(m) for m in modules]
    except ImportError as e:  # mmcv built without ops (mmcv-lite), or no mmdet3d
        return f'cannot import the kernels\' modules ({e})'
    from mmxmodal.models.ops import mmcv_cpu_kernels as K
    for mod in mods:  # check every module before patching any (a group is installed whole or not at all)
        missing = [k for k in kernels if not hasattr(mod.ext_module, k)]
        if missing:
            return f'{mod.__name__}.ext_module lacks {missing}'
    # get_indice_pairs_{2,3,4}d_forward share one implementation (the dimension is the indices' width)
    cpu = {k: getattr(K, 'get_indice_pairs_forward' if k.startswith('get_indice_pairs_') else k) for k in kernels}
    for mod in mods:
        _set(group, mod, 'ext_module', _CpuFallbackExt(mod.ext_module, cpu))
    return None


def _mmcv_sparse_conv_cpu(group: str) -> Optional[str]:
    return _mmcv_ext_group(group, ['mmcv.ops.sparse_ops'], [
        'get_indice_pairs_2d_forward', 'get_indice_pairs_3d_forward', 'get_indice_pairs_4d_forward',
        'indice_conv_forward', 'indice_conv_backward'])


def _mmcv_dynamic_scatter_cpu(group: str) -> Optional[str]:
    modules = ['mmcv.ops.scatter_points']
    try:
        import mmdet3d
        if _in_range(mmdet3d.__version__, '1.1.0', '1.5.0'):
            modules.append('mmdet3d.models.data_preprocessors.voxelize')
    except ImportError:
        pass
    return _mmcv_ext_group(group, modules, ['dynamic_point_to_voxel_forward', 'dynamic_point_to_voxel_backward'])


# ----------------------------------------------------------------------------------------------- distributed
def _init_dist_pytorch_cpu(backend: str, init_backend: str = 'torch', **kwargs) -> None:
    """mmengine's PyTorch-launcher init without ``torch.cuda.set_device``, over gloo."""
    if backend != 'gloo':
        _log(f'no CUDA device: using the gloo backend instead of {backend}', logging.WARNING)
    torch.distributed.init_process_group(backend='gloo', **kwargs)


def _init_dist_slurm_cpu(backend: str, port: Optional[int] = None, init_backend: str = 'torch', **kwargs) -> None:
    """mmengine's slurm init (same environment variables) without ``torch.cuda``, over gloo."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    local_rank = int(os.environ.get('SLURM_LOCALID', proc_id))
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ.update(WORLD_SIZE=str(ntasks), LOCAL_RANK=str(local_rank), RANK=str(proc_id))
    if backend != 'gloo':
        _log(f'no CUDA device: using the gloo backend instead of {backend}', logging.WARNING)
    torch.distributed.init_process_group(backend='gloo', **kwargs)


def _gloo_without_cuda(group: str) -> Optional[str]:
    if torch.cuda.is_available():
        return 'CUDA is available (nothing to change)'
    import mmengine
    if not _in_range(mmengine.__version__, '0.10.0', '0.11.0'):
        return f'written for mmengine 0.10, found {mmengine.__version__}'
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import distributed as mm_ddp
    ddp_init = mm_ddp.MMDistributedDataParallel.__init__

    @functools.wraps(ddp_init)
    def __init__(self, module, detect_anomalous_params: bool = False, **kwargs):
        if not any(p.is_cuda for p in module.parameters()):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        ddp_init(self, module=module, detect_anomalous_params=detect_anomalous_params, **kwargs)

    _set(group, dist_utils, '_init_dist_pytorch', _init_dist_pytorch_cpu)
    _set(group, dist_utils, '_init_dist_slurm', _init_dist_slurm_cpu)
    _set(group, mm_ddp.MMDistributedDataParallel, '__init__', __init__)
    return None


GROUPS: Dict[str, Callable[[str], Optional[str]]] = {
    'mmcv-point-ops': _mmcv_point_ops,
    'spconv-native-cpu': _spconv_native_cpu,
    'mmcv-sparse-conv-cpu': _mmcv_sparse_conv_cpu,
    'mmcv-dynamic-scatter-cpu': _mmcv_dynamic_scatter_cpu,
    'gloo-without-cuda': _gloo_without_cuda,
}


def installed() -> List[str]:
    """Names of the installed groups."""
    return list(_SAVED)


def install(groups: Optional[Sequence[str]] = None) -> List[str]:
    """Install the CPU patches (all groups by default). Idempotent; returns the installed group names.

    A group whose guard fails (another library version, no CUDA-less need) is skipped with a log line.
    """
    for name in groups or GROUPS:
        if name not in GROUPS:
            raise KeyError(f'unknown mmxmodal.cpu group {name!r}; known: {sorted(GROUPS)}')
        if name in _SAVED:
            continue
        reason = GROUPS[name](name)
        if reason is None:
            _log(f'mmxmodal.cpu: installed {name}')
        else:
            _SAVED.pop(name, None)
            _log(f'mmxmodal.cpu: {name} not installed: {reason}',
                 logging.WARNING if 'written for' in reason else logging.DEBUG)
    return installed()


def uninstall(groups: Optional[Sequence[str]] = None) -> None:
    """Restore the upstream objects of the given (default: all) installed groups."""
    for name in list(groups or reversed(list(_SAVED))):
        for owner, attr, old in reversed(_SAVED.pop(name, [])):
            if old is _MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, old)
