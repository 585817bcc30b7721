"""Local-only CLIP loading (open_clip) and a tiny randomly initialised CLIP for tests and embedded data.

Nothing here touches a model hub: checkpoints are local files, configs are local json, the tokenizer is open_clip's
bundled BPE vocabulary. Supported sources (see :func:`load_local_clip`):

* ``local_dir``: a folder in open_clip's hub layout, ``open_clip_config.json`` (``{"model_cfg", "preprocess_cfg"}``)
  + ``open_clip_pytorch_model.bin`` -> ``open_clip.create_model('local-dir:<folder>')``.
* ``model_name`` + ``pretrained``: a built-in architecture name (e.g. ``'ViT-B-16'``) or the path of a model-config
  json (added with ``open_clip.add_model_config``) and a local open_clip state-dict file.
* ``openai_checkpoint``: an OpenAI-CLIP state dict (``visual.conv1.weight`` ... ``text_projection``), architecture
  inferred from the shapes (``open_clip.model.build_model_from_openai_state_dict``).

:func:`make_tiny_clip` writes one small random CLIP in all three forms.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

#: Tiny CLIP (open_clip model config): ViT 2 x 128 (2 heads), patch 8 at 64 px; text 2 x 64 with the real
#: 49408-token BPE vocabulary and 77-token context; QuickGELU so that the OpenAI-format copy is the same network.
TINY_CLIP_NAME = 'mmxmodal-TinyCLIP-ViT-64'
TINY_CLIP_CFG = dict(
    embed_dim=64,
    quick_gelu=True,
    vision_cfg=dict(image_size=64, layers=2, width=128, head_width=64, patch_size=8),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=2),
)

#: Prompt templates used for class-name embeddings (a subset of CLIP's ImageNet / PointCLIP templates).
DEFAULT_TEMPLATES = (
    'a photo of a {}.',
    'a rendering of a {}.',
    'a 3D model of a {}.',
    'a point cloud of a {}.',
    'a depth map of a {}.',
)


def _no_hub() -> None:
    os.environ.setdefault('HF_HUB_OFFLINE', '1')


def load_local_clip(model_name: Optional[str] = None,
                    pretrained: Optional[str] = None,
                    local_dir: Optional[str] = None,
                    openai_checkpoint: Optional[str] = None,
                    image_size: Optional[int] = None) -> Tuple[nn.Module, object, Dict]:
    """Build an open_clip model from local files only.

    Args:
        model_name: built-in open_clip architecture name, or a path to a model-config json.
        pretrained: local open_clip checkpoint file for ``model_name`` (None: random weights, for shape tests).
        local_dir: folder with ``open_clip_config.json`` and the weights (hub layout).
        openai_checkpoint: local OpenAI-CLIP state dict file.
        image_size: override the input resolution (positional embeddings are resized when loading).

    Returns:
        (model in fp32, tokenizer, preprocess dict with ``mean``/``std`` in [0, 1] units).
    """
    _no_hub()
    import open_clip
    from open_clip.model import build_model_from_openai_state_dict
    preprocess = dict(mean=OPENAI_MEAN, std=OPENAI_STD)
    if openai_checkpoint is not None:
        if not osp.isfile(openai_checkpoint):
            raise FileNotFoundError(f'OpenAI CLIP checkpoint not found: {openai_checkpoint}')
        sd = torch.load(openai_checkpoint, map_location='cpu', weights_only=True)
        if 'state_dict' in sd and 'visual.proj' not in sd:
            sd = {k[7:] if k.startswith('module.') else k: v for k, v in sd['state_dict'].items()}
        sd = {k: v for k, v in sd.items() if k not in ('input_resolution', 'context_length', 'vocab_size')}
        model = build_model_from_openai_state_dict(dict(sd), cast_dtype=None).float()
        model.load_state_dict({k: v.float() for k, v in sd.items()})  # undo the builder's fp16 rounding
        if image_size is not None and image_size != model.visual.image_size[0]:
            raise ValueError('image_size override is not supported for OpenAI-format checkpoints')
        return model, open_clip.get_tokenizer(''), preprocess
    if local_dir is not None:
        if not osp.isfile(osp.join(local_dir, 'open_clip_config.json')):
            raise FileNotFoundError(f'{local_dir} has no open_clip_config.json')
        name, ckpt = f'local-dir:{local_dir}', None
        with open(osp.join(local_dir, 'open_clip_config.json')) as f:
            preprocess.update({k: tuple(v) for k, v in json.load(f).get('preprocess_cfg', {}).items()
                               if k in ('mean', 'std')})
    else:
        if model_name is None:
            raise ValueError('give local_dir, openai_checkpoint or model_name (+ pretrained)')
        if model_name.startswith('hf-hub:'):
            raise ValueError('hub models are not allowed; pass a local checkpoint file')
        if model_name.endswith('.json'):
            open_clip.add_model_config(model_name)
            model_name = osp.splitext(osp.basename(model_name))[0]
        if pretrained is not None and not osp.isfile(pretrained):
            raise FileNotFoundError(f'CLIP checkpoint must be a local file, got {pretrained!r}')
        name, ckpt = model_name, pretrained
    model = open_clip.create_model(name, pretrained=ckpt, precision='fp32', device='cpu',
                                   force_image_size=image_size, pretrained_image=False, pretrained_text=False)
    return model.float(), open_clip.get_tokenizer(name), preprocess


@torch.no_grad()
def text_class_embeddings(clip_model: nn.Module, tokenizer, class_names: Sequence[str],
                          templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
    """CLIP zero-shot class embeddings: per class, L2-normalised text embeddings of every prompt template are
    averaged and re-normalised. -> (C, D) float32, unit rows."""
    was_training = clip_model.training
    clip_model.eval()
    out = []
    for name in class_names:
        tokens = tokenizer([t.format(name.replace('_', ' ')) for t in templates])
        emb = F.normalize(clip_model.encode_text(tokens).float(), dim=-1).mean(0)
        out.append(F.normalize(emb, dim=0))
    clip_model.train(was_training)
    return torch.stack(out)


def make_tiny_clip(out_dir: str, seed: int = 0, cfg: Optional[Dict] = None) -> Dict[str, str]:
    """Write a small randomly initialised CLIP in open_clip's and OpenAI's checkpoint formats.

    Files written in ``out_dir``:
        ``open_clip_config.json``        hub-layout config (``model_cfg`` + ``preprocess_cfg``)
        ``open_clip_pytorch_model.bin``  open_clip state dict (``create_model('local-dir:out_dir')`` or
                                         ``create_model(<config json>, pretrained=<this file>)``)
        ``<TINY_CLIP_NAME>.json``        the model config alone, for ``open_clip.add_model_config``
        ``openai_clip_state_dict.pt``    OpenAI-CLIP state dict (architecture inferred from shapes)

    Returns:
        dict of those paths (``config``, ``checkpoint``, ``model_config``, ``openai_checkpoint``, ``local_dir``).
    """
    import open_clip
    cfg = dict(TINY_CLIP_CFG if cfg is None else cfg)
    os.makedirs(out_dir, exist_ok=True)
    g = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = open_clip.CLIP(**json.loads(json.dumps(cfg)))
    torch.random.set_rng_state(g)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    paths = dict(local_dir=out_dir,
                 config=osp.join(out_dir, 'open_clip_config.json'),
                 checkpoint=osp.join(out_dir, 'open_clip_pytorch_model.bin'),
                 model_config=osp.join(out_dir, f'{TINY_CLIP_NAME}.json'),
                 openai_checkpoint=osp.join(out_dir, 'openai_clip_state_dict.pt'))
    size = cfg['vision_cfg']['image_size']
    with open(paths['config'], 'w') as f:
        json.dump(dict(model_cfg=cfg, preprocess_cfg=dict(size=size, mean=list(OPENAI_MEAN), std=list(OPENAI_STD),
                                                          interpolation='bicubic', resize_mode='shortest')),
                  f, indent=2)
    with open(paths['model_config'], 'w') as f:
        json.dump(cfg, f, indent=2)
    torch.save(sd, paths['checkpoint'])
    torch.save(sd, paths['openai_checkpoint'])  # open_clip's CLIP keeps OpenAI's key names
    return paths
