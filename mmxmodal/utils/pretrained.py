"""``CheckedPretrained``: the one weight initialiser of this project's fine-tuning configs.

mmengine 0.10's ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` has three silent failures that
``init_cfg=dict(type='CheckedPretrained', checkpoint=..., prefix=...)`` turns into errors or fixes:

* ``prefix`` given, no key has it: a bare ``AssertionError`` (gone under ``python -O``). Here:
  :class:`CheckpointPrefixError` naming the file, the prefix and the prefixes that exist.
* ``prefix`` matches keys that do not fit the module, or ``prefix=None`` on a whole-model checkpoint: mmengine loads
  with ``strict=False`` and only logs missing keys, so the module keeps its random weights. Here: a fraction
  ``min_loaded`` (default all) of the module's weights must load with matching shapes, else an error lists the
  missing keys, shape mismatches and the prefixes that would fit.
* ``prefix`` loading drops the state dict's ``_metadata`` (module versions). mmdet3d's spconv-2 loader
  (``mmdet3d/models/layers/spconv/overwrite_spconv/write_spconv2.py``) then treats the kernels as spconv-1 layout and
  permutes them ("size mismatch", random init kept). Here the metadata is stripped of the prefix and kept, so a
  SimIPU ``pts_middle_encoder.*`` entry loads into any ``SparseEncoder``. Use it through ``override`` on the
  detector (``SparseEncoder`` has no ``init_cfg``)::

      model = dict(init_cfg=dict(type='Constant', val=0., layer=[],  # initialises nothing, carries the override
                                 override=dict(type='CheckedPretrained', name='pts_middle_encoder',
                                               checkpoint=ckpt, prefix='pts_middle_encoder.')))

  Being a type other than ``'Pretrained'``, ``BaseModule.init_weights`` applies it *before* the children's own
  ``init_weights``; so every sub-module whose weights all came from the checkpoint is marked initialised and keeps
  them (e.g. mmdet's ResNet would zero the last BN of each block).
"""
from collections import Counter, OrderedDict
from typing import Dict, List, Optional

from mmengine.logging import print_log
from mmengine.registry import WEIGHT_INITIALIZERS


class CheckpointPrefixError(KeyError):
    """The checkpoint has no (usable) weights under the requested prefix."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def checkpoint_prefixes(state_dict: Dict[str, object], depth: int = 1, limit: int = 20) -> List[str]:
    """The ``depth``-component key prefixes of a state dict with their key counts, e.g. ``['point_encoder. (42
    keys)', 'img_backbone. (122 keys)']`` (most frequent first)."""
    counts = Counter('.'.join(k.split('.')[:depth]) + '.' for k in state_dict if '.' in k)
    return [f'{p} ({n} keys)' for p, n in counts.most_common(limit)]


def _state_dict_of(checkpoint) -> Dict[str, object]:
    sd = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(sd, dict):
        raise CheckpointPrefixError(f'checkpoint has no state dict (got {type(sd).__name__})')
    return sd


def strip_prefix(state_dict: Dict[str, object], prefix: str, filename: str = '<checkpoint>') -> 'OrderedDict':
    """Keys under ``prefix`` with the prefix removed; :class:`CheckpointPrefixError` naming the prefixes that exist
    when there are none."""
    if not prefix.endswith('.'):
        prefix += '.'
    out = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items() if k.startswith(prefix))
    meta = getattr(state_dict, '_metadata', None)
    if meta is not None:  # module versions, with the prefix removed (the sub-module itself becomes '')
        out._metadata = OrderedDict()
        for k, v in meta.items():
            if k == prefix[:-1]:
                out._metadata[''] = v
            elif k.startswith(prefix):
                out._metadata[k[len(prefix):]] = v
    if not out:
        found = checkpoint_prefixes(state_dict) or ['(no dotted keys)']
        raise CheckpointPrefixError(f'{filename}: no weight has the prefix {prefix!r} (expected by init_cfg '
                                    f'prefix=...); the checkpoint has the prefixes: {", ".join(found)}')
    return out


def _suggest_prefixes(state_dict: Dict[str, object], module_keys: List[str]) -> List[str]:
    keys = set(module_keys)
    scores = Counter()
    for k in state_dict:
        parts = k.split('.')
        for i in range(1, len(parts)):
            if '.'.join(parts[i:]) in keys:
                scores['.'.join(parts[:i]) + '.'] += 1
    return [f'{p} ({n} of {len(keys)} weights)' for p, n in scores.most_common(3)]


def _mark_loaded_modules_initialised(module, loaded: set) -> None:
    """Mark ``module`` and every sub-module whose weights all came from the checkpoint as initialised, so their own
    ``init_weights`` (run after a non-``'Pretrained'`` init, e.g. ResNet's zero-init of the last BN of each block)
    does not overwrite the loaded weights."""
    from mmengine.model import BaseModule
    for name, m in module.named_modules():
        if not isinstance(m, BaseModule):
            continue
        pre = f'{name}.' if name else ''
        keys = [pre + k for k in m.state_dict()]
        if keys and all(k in loaded for k in keys):
            m._is_init = True


@WEIGHT_INITIALIZERS.register_module(name='CheckedPretrained')
class CheckedPretrainedInit:
    """``Pretrained`` init that fails loudly unless the checkpoint really initialises the module.

    Args:
        checkpoint: checkpoint file or URL (any mmengine scheme, e.g. ``safe://`` of
            :mod:`mmxmodal.utils.checkpoint`).
        prefix: sub-module prefix in the checkpoint (``'point_encoder.'`` for CrossPoint / Cross-MoST point
            encoders, ``'img_backbone.'`` / ``'pts_middle_encoder.'`` ... for SimIPU); None = keys as they are.
        min_loaded: fraction of the module's state-dict entries that must be loaded with the right shape
            (1.0 = all; e.g. 0.9 to allow a new head).
        map_location: as ``torch.load``.
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None, min_loaded: float = 1.0,
                 map_location: str = 'cpu') -> None:
        self.checkpoint, self.prefix, self.min_loaded, self.map_location = (checkpoint, prefix, min_loaded,
                                                                            map_location)

    def __call__(self, module) -> None:
        from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
        # the log line of mmengine's Pretrained init, so logs read the same
        print_log(f'load {self.prefix} in model from: {self.checkpoint}' if self.prefix else
                  f'load model from: {self.checkpoint}', logger='current')
        full = _state_dict_of(_load_checkpoint(self.checkpoint, map_location=self.map_location))
        if self.prefix:
            sd = strip_prefix(full, self.prefix, self.checkpoint)
        else:
            sd = OrderedDict(full)
            if hasattr(full, '_metadata'):
                sd._metadata = full._metadata
        if sd and all(k.startswith('module.') for k in sd):  # DDP-wrapped checkpoint
            sd = strip_prefix(sd, 'module.', self.checkpoint)
        own = module.state_dict()
        matched = [k for k in own if k in sd and tuple(sd[k].shape) == tuple(own[k].shape)]
        missing = [k for k in own if k not in sd]
        shape_bad = [f'{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}' for k in own
                     if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
        frac = len(matched) / max(len(own), 1)
        where = f'{self.checkpoint}' + (f' (prefix {self.prefix!r})' if self.prefix else '')
        if frac < self.min_loaded:
            hint = _suggest_prefixes(full, list(own))
            raise CheckpointPrefixError(
                f'{where} initialises only {len(matched)} of {len(own)} weights of {type(module).__name__} '
                f'(min_loaded={self.min_loaded}). Missing: {missing[:8]}{" ..." if len(missing) > 8 else ""}; '
                f'shape mismatches: {shape_bad[:5]}; checkpoint prefixes: {", ".join(checkpoint_prefixes(full))}'
                + (f'; prefixes that fit this module: {", ".join(hint)}' if hint else ''))
        to_load = OrderedDict((k, sd[k]) for k in matched)
        if hasattr(sd, '_metadata'):
            to_load._metadata = sd._metadata  # module versions (spconv-2 kernel layout)
        load_state_dict(module, to_load, strict=False, logger='current')
        _mark_loaded_modules_initialised(module, set(matched))
        print_log(f'CheckedPretrained: loaded {len(matched)} of {len(own)} weights of {type(module).__name__} from '
                  f'{where}', logger='current')
        if hasattr(module, '_params_init_info'):
            from mmengine.model.weight_init import update_init_info
            update_init_info(module, init_info=f'CheckedPretrained: load from {where}')
