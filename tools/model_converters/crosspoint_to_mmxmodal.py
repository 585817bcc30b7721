# Copyright (c) mmxmodal contributors.
"""Convert CrossPoint's released weights (github.com/MohamedAfham/CrossPoint) to this project's keys.

CrossPoint saves the point model (``DGCNN`` of ``models/dgcnn.py``) and the image model (torchvision ResNet with
``inv_head``) as separate ``state_dict`` files, often with DataParallel's ``module.`` prefix. Mapping (point):

    conv{i}.0.weight, bn{i}.* (= conv{i}.1.*), i = 1..4  -> point_encoder.edge_convs.{i-1}.conv.weight / .bn.*
    conv5.0.weight, bn5.* (= conv5.1.*)                  -> point_encoder.conv5.weight / point_encoder.bn5.*
    inv_head.0.*, inv_head.1.*, inv_head.3.*             -> point_head.fc1.*, point_head.bn.*, point_head.fc2.*
    linear1..3, bn6, bn7 (classification head)           -> dropped (listed)

and (image, ``--img``): ``conv1/bn1/layer*`` -> ``img_backbone.*`` (mmdet's ResNet uses torchvision's names),
``inv_head.*`` -> ``img_head.*`` as above, ``fc.*`` dropped. The output loads with
``init_cfg=dict(type='CheckedPretrained', checkpoint=OUT, prefix='point_encoder.')``::

    python tools/model_converters/crosspoint_to_mmxmodal.py best_model.pth crosspoint_dgcnn.pth \
        [--img img_model_best.pth] [--trust]

``--trust`` loads files that are not weights-only (e.g. saved with extra Python objects); it runs their pickle.
"""
import argparse
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

_HEAD = {'0': 'fc1', '1': 'bn', '3': 'fc2'}


def _state_dict(path: str, trust: bool) -> Dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location='cpu', weights_only=not trust)
    for key in ('state_dict', 'model_state_dict', 'model'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    if not isinstance(ckpt, dict) or not ckpt:
        raise ValueError(f'{path}: no state dict found')
    if all(k.startswith('module.') for k in ckpt):
        ckpt = OrderedDict((k[len('module.'):], v) for k, v in ckpt.items())
    return ckpt


def convert_point(sd: Dict[str, torch.Tensor]) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """CrossPoint ``DGCNN`` state dict -> (``point_encoder.*`` / ``point_head.*`` state dict, dropped keys)."""
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    dropped = []
    for k, v in sd.items():
        m = re.fullmatch(r'conv([1-4])\.0\.weight', k)
        if m:
            out[f'point_encoder.edge_convs.{int(m.group(1)) - 1}.conv.weight'] = v
            continue
        m = re.fullmatch(r'(?:bn([1-4])|conv([1-4])\.1)\.(\w+)', k)
        if m:
            i = int(m.group(1) or m.group(2)) - 1
            out[f'point_encoder.edge_convs.{i}.bn.{m.group(3)}'] = v
            continue
        if k == 'conv5.0.weight':
            out['point_encoder.conv5.weight'] = v
            continue
        m = re.fullmatch(r'(?:bn5|conv5\.1)\.(\w+)', k)
        if m:
            out[f'point_encoder.bn5.{m.group(1)}'] = v
            continue
        m = re.fullmatch(r'inv_head\.([013])\.(\w+)', k)
        if m:
            out[f'point_head.{_HEAD[m.group(1)]}.{m.group(2)}'] = v
            continue
        dropped.append(k)
    if not any(k.startswith('point_encoder.edge_convs.') for k in out):
        raise ValueError('no CrossPoint DGCNN key (conv1.0.weight, bn1.*, ...) found; keys start with: '
                         f'{sorted({k.split(".")[0] for k in sd})[:10]}')
    return out, dropped


def convert_img(sd: Dict[str, torch.Tensor]) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """CrossPoint image model (torchvision ResNet + ``inv_head``) -> ``img_backbone.*`` / ``img_head.*``."""
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    dropped = []
    for k, v in sd.items():
        m = re.fullmatch(r'inv_head\.([013])\.(\w+)', k)
        if m:
            out[f'img_head.{_HEAD[m.group(1)]}.{m.group(2)}'] = v
        elif re.match(r'(conv1|bn1|layer[1-4])\.', k):
            out[f'img_backbone.{k}'] = v
        else:
            dropped.append(k)
    return out, dropped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help="CrossPoint point model (DGCNN) state dict")
    parser.add_argument('dst', help='output checkpoint with this project\'s keys')
    parser.add_argument('--img', help='CrossPoint image model state dict (optional)')
    parser.add_argument('--trust', action='store_true', help='allow non-weights-only files (runs their pickle)')
    args = parser.parse_args(argv)
    state, dropped = convert_point(_state_dict(args.src, args.trust))
    if args.img:
        img, dropped_img = convert_img(_state_dict(args.img, args.trust))
        state.update(img)
        dropped += [f'img:{k}' for k in dropped_img]
    torch.save(dict(state_dict=state, meta=dict(converted_from='CrossPoint', dropped_keys=dropped)), args.dst)
    print(f'wrote {args.dst}: {len(state)} tensors; dropped {len(dropped)} keys'
          + (f' ({", ".join(dropped[:8])}{" ..." if len(dropped) > 8 else ""})' if dropped else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
