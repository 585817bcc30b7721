# Copyright (c) mmxmodal contributors.
"""Convert a ULIP Point-BERT checkpoint (github.com/salesforce/ULIP, ``ULIP_PointBERT``) to this project's keys.

ULIP saves ``{'state_dict': {'module.point_encoder.*', 'module.pc_projection', <CLIP text/image towers>}, ...}``.
The point tower maps onto :class:`~mmxmodal.models.encoders.PointTransformerEncoder` built in the Point-BERT layout
(``num_groups=512, group_size=32, embed_dims=384, depth=12, num_heads=6, group_dims=256, pos_every_block=True``,
``out_channels`` = the CLIP width, 512 for ViT-B/16):

    point_encoder.encoder.first_conv.* / second_conv.*     -> point_encoder.group_embed.first.* / second.*
    point_encoder.reduce_dim / cls_token / cls_pos / pos_embed / norm -> same names
    point_encoder.blocks.blocks.{i}.norm1 / norm2           -> point_encoder.blocks.{i}.norm1 / norm2
    ...attn.qkv.weight (+ bias, zeros when qkv_bias=False)  -> ...self_attn.in_proj_weight / in_proj_bias
    ...attn.proj / mlp.fc1 / mlp.fc2                        -> ...self_attn.out_proj / linear1 / linear2
    pc_projection (768, 512), x @ P                         -> point_encoder.proj.weight = P^T, proj.bias = 0
    (not in ULIP) point_encoder.mask_token                  -> trunc-normal(0.02), seed 0, listed in meta

    python tools/model_converters/ulip_pointbert_to_mmxmodal.py ULIP_PointBERT.pt ulip_pointbert.pth [--trust]

then ``model.point_encoder.init_cfg=dict(type='CheckedPretrained', checkpoint='ulip_pointbert.pth',
prefix='point_encoder.')``. CLIP towers and optimizer state are dropped (listed in ``meta``).
"""
import argparse
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

_BLOCK = {'norm1': 'norm1', 'norm2': 'norm2', 'attn.proj': 'self_attn.out_proj', 'mlp.fc1': 'linear1',
          'mlp.fc2': 'linear2'}


def convert(sd: Dict[str, torch.Tensor]) -> Tuple['OrderedDict[str, torch.Tensor]', List[str], List[str]]:
    """ULIP state dict -> (``point_encoder.*`` state dict, dropped keys, keys initialised here)."""
    if sd and all(k.startswith('module.') for k in sd):
        sd = OrderedDict((k[len('module.'):], v) for k, v in sd.items())
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    dropped, made = [], []
    dim = None
    for k, v in sd.items():
        if not k.startswith('point_encoder.'):
            if k == 'pc_projection':
                out['point_encoder.proj.weight'] = v.t().contiguous()
                out['point_encoder.proj.bias'] = v.new_zeros(v.shape[1])
            else:
                dropped.append(k)
            continue
        r = k[len('point_encoder.'):]
        m = re.fullmatch(r'encoder\.(first|second)_conv\.(\d+)\.(\w+)', r)
        if m:
            out[f'point_encoder.group_embed.{m.group(1)}.{m.group(2)}.{m.group(3)}'] = v
            continue
        m = re.fullmatch(r'blocks\.blocks\.(\d+)\.(.+)\.(weight|bias)', r)
        if m:
            i, name, kind = m.groups()
            if name == 'attn.qkv':
                out[f'point_encoder.blocks.{i}.self_attn.in_proj_{kind}'] = v
                if kind == 'weight':
                    dim = v.shape[1]
            elif name in _BLOCK:
                out[f'point_encoder.blocks.{i}.{_BLOCK[name]}.{kind}'] = v
            else:
                dropped.append(k)
            continue
        if re.fullmatch(r'(reduce_dim|pos_embed\.\d+|norm)\.(weight|bias)|cls_token|cls_pos', r):
            out[f'point_encoder.{r}'] = v
            continue
        dropped.append(k)  # e.g. the classification head of a fine-tuned Point-BERT
    if dim is None:
        raise ValueError('no ULIP Point-BERT key (point_encoder.blocks.blocks.0.attn.qkv.weight) found; top-level '
                         f'prefixes: {sorted({k.split(".")[0] for k in sd})[:10]}')
    for i in sorted({int(k.split('.')[2]) for k in out if k.startswith('point_encoder.blocks.')}):
        bias = f'point_encoder.blocks.{i}.self_attn.in_proj_bias'
        if bias not in out:  # Point-BERT's qkv has no bias
            out[bias] = torch.zeros(3 * dim, dtype=out[f'point_encoder.blocks.{i}.self_attn.in_proj_weight'].dtype)
    g = torch.Generator().manual_seed(0)
    out['point_encoder.mask_token'] = (torch.randn(1, 1, dim, generator=g) * 0.02).clamp(-0.04, 0.04)
    made.append('point_encoder.mask_token')
    return out, dropped, made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='ULIP checkpoint (ULIP_PointBERT)')
    parser.add_argument('dst', help='output checkpoint with this project\'s keys')
    parser.add_argument('--trust', action='store_true', help='allow non-weights-only files (runs their pickle)')
    args = parser.parse_args(argv)
    ckpt = torch.load(args.src, map_location='cpu', weights_only=not args.trust)
    sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state, dropped, made = convert(sd)
    torch.save(dict(state_dict=state, meta=dict(converted_from='ULIP Point-BERT', dropped_keys=dropped,
                                                initialised_keys=made)), args.dst)
    print(f'wrote {args.dst}: {len(state)} tensors; dropped {len(dropped)} keys; initialised {made}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
