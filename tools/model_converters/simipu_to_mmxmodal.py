# Copyright (c) mmxmodal contributors.
"""Convert SimIPU's released image-backbone weights (github.com/zhyever/SimIPU) to this project's keys.

SimIPU releases mmdet-style checkpoints whose image encoder is stored under ``backbone.`` (with DataParallel's
``module.`` in some files). This project's SimIPU stores it under ``img_backbone.``, which is what the fine-tuning
configs (``configs/finetune/fcos3d_..._simipu.py``: ``CheckedPretrained``, ``prefix='img_backbone.'``) load::

    python tools/model_converters/simipu_to_mmxmodal.py simipu_r50_kitti.pth simipu_r50_img.pth [--trust]

Other keys (necks, heads, point branch of the released detector) are dropped and listed in ``meta``.
"""
import argparse
import sys
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch


def convert(sd: Dict[str, torch.Tensor], src_prefix: str = 'backbone.',
            dst_prefix: str = 'img_backbone.') -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Keys under ``src_prefix`` renamed to ``dst_prefix``; returns (state dict, dropped keys)."""
    if sd and all(k.startswith('module.') for k in sd):
        sd = OrderedDict((k[len('module.'):], v) for k, v in sd.items())
    out = OrderedDict((dst_prefix + k[len(src_prefix):], v) for k, v in sd.items() if k.startswith(src_prefix))
    if not out:
        raise ValueError(f'no key starts with {src_prefix!r}; prefixes found: '
                         f'{sorted({k.split(".")[0] + "." for k in sd})[:10]}')
    meta = getattr(sd, '_metadata', None)
    if meta is not None:  # module versions, renamed with the keys
        src, dst = src_prefix[:-1], dst_prefix[:-1]
        out._metadata = OrderedDict((dst + k[len(src):], v) for k, v in meta.items()
                                    if k == src or k.startswith(src_prefix))
    return out, [k for k in sd if not k.startswith(src_prefix)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released SimIPU checkpoint')
    parser.add_argument('dst', help='output checkpoint with this project\'s keys')
    parser.add_argument('--src-prefix', default='backbone.', help='image encoder prefix in SRC')
    parser.add_argument('--dst-prefix', default='img_backbone.', help='prefix in the output')
    parser.add_argument('--trust', action='store_true', help='allow non-weights-only files (runs their pickle)')
    args = parser.parse_args(argv)
    ckpt = torch.load(args.src, map_location='cpu', weights_only=not args.trust)
    sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state, dropped = convert(sd, args.src_prefix, args.dst_prefix)
    torch.save(dict(state_dict=state, meta=dict(converted_from='SimIPU', dropped_keys=dropped)), args.dst)
    print(f'wrote {args.dst}: {len(state)} tensors under {args.dst_prefix!r}; dropped {len(dropped)} keys')
    return 0


if __name__ == '__main__':
    sys.exit(main())
