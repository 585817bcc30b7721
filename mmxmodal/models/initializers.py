"""``PretrainedVersioned``: mmengine's prefix ``Pretrained`` init that keeps the checkpoint's module versions.

mmengine's ``PretrainedInit`` with ``prefix`` strips the prefix into a plain dict and so drops the state dict's
``_metadata`` (the ``_version`` of every saved module). mmdet3d's spconv-2 loader
(``mmdet3d/models/layers/spconv/overwrite_spconv/write_spconv2.py``) reads that version and, when it is missing,
treats the kernels as spconv-1 layout and permutes them: every sparse-conv weight then fails with "size mismatch"
and keeps its random init. ``PretrainedVersioned`` strips the prefix from the keys *and* from the metadata, so a
SimIPU ``pts_middle_encoder.*`` entry loads into any ``SparseEncoder`` (CenterPoint ``pts_middle_encoder``, SECOND
``middle_encoder``). Use it through ``override`` on the detector (``SparseEncoder`` has no ``init_cfg``)::

    model = dict(init_cfg=dict(type='Constant', val=0., layer=[],  # initialises nothing, carries the override
                               override=dict(type='PretrainedVersioned', name='pts_middle_encoder',
                                             checkpoint=ckpt, prefix='pts_middle_encoder.')))

Note: being a type other than ``'Pretrained'``, ``BaseModule.init_weights`` applies it *before* the children's
own ``init_weights``; the target must not re-initialise itself (true for mmdet3d's ``SparseEncoder``).
"""
from collections import OrderedDict

from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict


def strip_prefix_keep_metadata(state_dict: dict, prefix: str) -> OrderedDict:
    """Entries of ``state_dict`` under ``prefix`` with the prefix removed, ``_metadata`` included."""
    if not prefix.endswith('.'):
        prefix += '.'
    out = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items() if k.startswith(prefix))
    meta = getattr(state_dict, '_metadata', None)
    if meta is not None:
        out._metadata = OrderedDict()
        for k, v in meta.items():
            if k == prefix[:-1]:
                out._metadata[''] = v
            elif k.startswith(prefix):
                out._metadata[k[len(prefix):]] = v
    return out


@WEIGHT_INITIALIZERS.register_module(name='PretrainedVersioned')
class PretrainedVersionedInit(PretrainedInit):
    """``PretrainedInit`` whose ``prefix`` loading keeps the state-dict metadata (module versions).

    Args:
        checkpoint: checkpoint path / URL.
        prefix: key prefix of the sub-module in the checkpoint (e.g. ``'pts_middle_encoder.'``).
        map_location: ``torch.load`` map location.
    """

    def __call__(self, module) -> None:
        if self.prefix is None:
            return super().__call__(module)
        print_log(f'load {self.prefix} in model from: {self.checkpoint}', logger='current')
        checkpoint = _load_checkpoint(self.checkpoint, map_location=self.map_location)
        state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else checkpoint
        sub = strip_prefix_keep_metadata(state_dict, self.prefix)
        if not sub:
            raise KeyError(f'{self.prefix} is not in the pretrained model {self.checkpoint}')
        load_state_dict(module, sub, strict=False, logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())
