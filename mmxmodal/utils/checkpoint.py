"""Checkpoint loading without executing pickled code.

mmengine 0.10 loads local checkpoints with a plain ``torch.load``. Importing mmxmodal replaces that loader (for
local files, the ``''`` scheme) with :func:`safe_load`: ``torch.load(weights_only=True)`` with an allow-list of the
few non-tensor types that mmengine's own checkpoints contain (the message hub's ``HistoryBuffer``, numpy arrays
and scalars, ``OrderedDict``). Any other global in the pickle - for instance a tampered file that would call
``os.system`` - is refused before anything runs, with an error naming the file and the global.

mmengine's ``HistoryBuffer`` pickles its statistics *functions* (``getattr(HistoryBuffer, 'mean')``), which a
weights-only load must refuse; mmxmodal makes it pickle only its data (the functions are class-level and restored
on load), so checkpoints written by runs that import mmxmodal load weights-only, resume included.
"""
import collections
import re
import os.path as osp
import pickle
from typing import Any, List, Optional

import numpy as np
import torch


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
                              'if you trust the file, convert it with torch.load(weights_only=False) yourself.'
                              ) from e
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise CheckpointError(f'cannot read checkpoint {filename}: {type(e).__name__}: {e}') from e


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer`` state without function objects (restored from the class on ``__setstate__``)."""
    return {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}


def register_safe_loader() -> None:
    """Make mmengine's ``load_checkpoint`` / ``Runner.resume`` / ``init_cfg=Pretrained`` use :func:`safe_load` for
    local files."""
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    CheckpointLoader.register_scheme(prefixes='', loader=safe_load, force=True)


register_safe_loader()
