"""Checkpoints that load weights-only, in stock mmengine and here; nothing upstream is replaced.

Under torch >= 2.6 ``torch.load`` is weights-only by default, so mmengine 0.10's local loader already refuses
pickled code. It also refuses mmengine's own checkpoints: the message hub's ``HistoryBuffer`` pickles as the class
plus numpy arrays and statistics functions (``getattr``). This module offers, each chosen explicitly:

* :class:`PlainCheckpointHook` (``custom_hooks=[dict(type='PlainCheckpointHook')]``, added by ``tools/train.py``):
  the message hub is saved as plain tensors / lists, so the checkpoint loads in stock mmengine (weights-only) in a
  process that never imported mmxmodal; on ``--resume`` the hook rebuilds the ``HistoryBuffer`` objects.
* the ``safe://`` scheme (``load_from='safe://work_dirs/x/epoch_1.pth'``, also in ``init_cfg`` checkpoints):
  :func:`safe_load`, weights-only with an allow-list of mmengine's checkpoint types (``HistoryBuffer``, numpy
  arrays and scalars, ``OrderedDict``); any other global - e.g. ``os.system`` in a tampered file, or the
  ``getattr`` of a stock mmengine checkpoint - is refused before anything runs, with an error naming the file.
* a stock (trusted) mmengine checkpoint is converted once with
  ``python tools/model_converters/strip_checkpoint.py IN OUT --trust`` (see :func:`strip_trusted_checkpoint`).
"""
import collections
import os.path as osp
import pickle
import re
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner.checkpoint import CheckpointLoader

from mmdet3d.registry import HOOKS

SAFE_SCHEME = 'safe://'
_HB_TAG = '__mmxmodal_history_buffer__'


class CheckpointError(RuntimeError):
    """A checkpoint could not be loaded safely (names the file and the reason)."""


def _numpy_globals() -> List[Any]:
    out: List[Any] = [np.ndarray, np.dtype]
    try:  # numpy 1.x keeps the reconstructors in numpy.core, numpy 2.x in numpy._core
        from numpy.core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 2
        from numpy._core.multiarray import _reconstruct, scalar
    out += [_reconstruct, scalar]
    for name in dir(np.dtypes) if hasattr(np, 'dtypes') else []:
        obj = getattr(np.dtypes, name)
        if isinstance(obj, type) and issubclass(obj, np.dtype):
            out.append(obj)
    return out


def safe_globals() -> List[Any]:
    """Types allowed in a checkpoint besides tensors and plain containers."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer, collections.OrderedDict, collections.defaultdict, *_numpy_globals()]


def safe_load(filename: str, map_location: Optional[Any] = None) -> Any:
    """``torch.load(filename, weights_only=True)`` with mmengine's checkpoint types allowed.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: the file is not a readable checkpoint or contains a disallowed global.
    """
    if filename.startswith(SAFE_SCHEME):
        filename = filename[len(SAFE_SCHEME):]
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r'GLOBAL ([\w.]+)', str(e))
        first = f'it references {found.group(1)}' if found else str(e).strip().splitlines()[0]
        raise CheckpointError(f'refused to load checkpoint {filename}: it is not a plain weights file '
                              f'({first}). Only tensors, containers and mmengine checkpoint types are loaded; '
                              'if you trust the file, strip it to weights once with '
                              f'`python tools/model_converters/strip_checkpoint.py {filename} OUT.pth --trust`'
                              ) from e
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise CheckpointError(f'cannot read checkpoint {filename}: {type(e).__name__}: {e}') from e


def load_from_safe(filename: str, map_location: Optional[Any] = None) -> Any:
    """mmengine checkpoint loader of the ``safe://`` scheme (see :func:`safe_load`)."""
    return safe_load(filename, map_location)


if SAFE_SCHEME not in CheckpointLoader._schemes:  # a new scheme; the local ('') loader stays mmengine's
    CheckpointLoader.register_scheme(prefixes=SAFE_SCHEME, loader=load_from_safe)


# ----------------------------------------------------------------------------------------------- plain saving
def _to_plain(obj: Any) -> Any:
    """``HistoryBuffer`` -> tagged dict of tensors, numpy -> tensors / Python scalars, recursively."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {_HB_TAG: True, 'log_history': torch.as_tensor(np.asarray(log, dtype=np.float64)),
                'count_history': torch.as_tensor(np.asarray(count, dtype=np.float64)),
                'max_length': int(obj.max_length)}
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, collections.OrderedDict):
        out = collections.OrderedDict((k, _to_plain(v)) for k, v in obj.items())
        if hasattr(obj, '_metadata'):
            out._metadata = obj._metadata
        return out
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, '_fields'):
        return type(obj)(_to_plain(v) for v in obj)
    return obj


def _from_plain(obj: Any) -> Any:
    """Inverse of :func:`_to_plain` for the message hub's history buffers."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if isinstance(obj, dict) and obj.get(_HB_TAG) is True:
        return HistoryBuffer(obj['log_history'].tolist(), obj['count_history'].tolist(), obj['max_length'])
    if isinstance(obj, dict):
        return type(obj)((k, _from_plain(v)) for k, v in obj.items())
    return obj


@HOOKS.register_module()
class PlainCheckpointHook(Hook):
    """Save checkpoints that ``torch.load(weights_only=True)`` reads without any allow-list.

    ``before_save_checkpoint`` turns the message hub's ``HistoryBuffer`` objects and numpy values (message hub and
    ``meta``) into tensors / Python scalars; ``after_load_checkpoint`` rebuilds the history buffers, so ``--resume``
    keeps the logged statistics. Stock mmengine resumes such a file too (it skips the history, with a warning).
    """

    priority = 'VERY_LOW'  # after hooks that add entries to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in ('message_hub', 'meta'):
            if key in checkpoint:
                checkpoint[key] = _to_plain(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = _from_plain(checkpoint['message_hub'])


def add_plain_checkpoint_hook(cfg) -> bool:
    """Append :class:`PlainCheckpointHook` to ``cfg.custom_hooks`` unless present; True when added."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if any(isinstance(h, dict) and str(h.get('type', '')).split('.')[-1] == 'PlainCheckpointHook' for h in hooks):
        return False
    hooks.append(dict(type='mmdet3d.PlainCheckpointHook'))
    cfg.custom_hooks = hooks
    return True


# ----------------------------------------------------------------------------------------------- trusted strip
def strip_trusted_checkpoint(src: str, dst: str, keep_meta: bool = True) -> Dict[str, Any]:
    """Convert a checkpoint the user trusts (e.g. written by stock mmengine) into a weights-only file.

    Runs ``torch.load(weights_only=False)`` - i.e. executes the pickle - so call it only on files you trust. Writes
    ``{'state_dict': ..., 'meta': {...}}`` (plain types only) to ``dst`` and returns it.
    """
    ckpt = torch.load(src, map_location='cpu', weights_only=False)
    sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise CheckpointError(f'{src}: no state dict of tensors found (top-level keys: '
                              f'{list(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__})')
    state_dict = collections.OrderedDict((k, v.detach().cpu()) for k, v in sd.items())
    if hasattr(sd, '_metadata'):  # module versions (spconv-2 layout, BN versions)
        state_dict._metadata = collections.OrderedDict((k, dict(v)) for k, v in sd._metadata.items())
    out: Dict[str, Any] = dict(state_dict=state_dict)
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if keep_meta and isinstance(meta, dict):
        out['meta'] = {k: _to_plain(v) for k, v in meta.items()
                       if isinstance(_to_plain(v), (str, int, float, bool, type(None), list, tuple, dict))}
        out['meta']['stripped_from'] = osp.basename(src)
    torch.save(out, dst)
    torch.load(dst, map_location='cpu', weights_only=True)  # the result must load without an allow-list
    return out
