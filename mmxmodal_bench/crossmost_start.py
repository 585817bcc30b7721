"""A label-free zero-shot start for Cross-MoST, made here: a small CLIP and a ULIP-style aligned point encoder.

1. :func:`train_source_clip`: a small CLIP (open_clip ``CLIP`` with :data:`TINY_CLIP_CFG`) trained contrastively on
   the SOURCE image-caption pairs (:mod:`mmxmodal_bench.crossmost_data`; captions name the object, as web captions
   would). Captions that name the same object are positives of each other (identical captions have identical text
   embeddings, so a one-hot target would contradict itself). Written in open_clip's hub layout
   (``open_clip_config.json`` + ``open_clip_pytorch_model.bin``), which ``load_local_clip(local_dir=...)`` and
   ``CLIPViTEncoder(local_dir=...)`` load like a real CLIP.
2. :func:`align_point_encoder`: ULIP-style triplets on the source set: a point encoder + projection into CLIP's
   space trained with InfoNCE against the frozen CLIP's image embedding (one-hot: the object's own render) and
   text embedding (positives: captions naming the same object). Written as a checkpoint with ``point_encoder.*``
   and ``point_proj.*`` keys, loaded by the Cross-MoST config through ``init_cfg=dict(type='CheckedPretrained',
   checkpoint=..., prefix=...)``.
3. The zero-shot classifier is the CLIP text embedding of the TARGET class names (``classifier_init='text'`` of
   ``CrossMoST``); no target label is used anywhere.
"""
from __future__ import annotations

import json
import os
import re
import os.path as osp
import time
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mmxmodal.models.clip_utils import OPENAI_MEAN, OPENAI_STD, TINY_CLIP_CFG

from .crossmost_data import load_source


def _log(msg: str) -> None:
    from mmengine.logging import print_log
    print_log(msg, logger='current')


def _caption_classes(captions: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Index of the object each caption names (whole words; the longest matching name wins)."""
    pats = [(len(c), i, re.compile(r'\b' + re.escape(c.replace('_', ' ')) + r'\b')) for i, c in enumerate(classes)]
    out = []
    for cap in captions:
        hits = [(n, i) for n, i, pat in pats if pat.search(cap)]
        if not hits:
            raise ValueError(f'caption {cap!r} names none of {list(classes)}')
        out.append(max(hits)[1])
    return np.array(out, np.int64)


def _soft_targets(key: torch.Tensor) -> torch.Tensor:
    """(B,) group ids -> (B, B) row-normalised positive matrix (same id = positive)."""
    t = (key[:, None] == key[None, :]).float()
    return t / t.sum(1, keepdim=True)


def _soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * logits.log_softmax(-1)).sum(-1).mean()


def _augment_images(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1]: random resized crop (scale 0.7-1), flip, brightness / contrast jitter."""
    b, _, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(b):
        s = float(torch.empty(1).uniform_(0.7, 1.0, generator=gen))
        ch, cw = max(8, int(h * s ** 0.5)), max(8, int(w * s ** 0.5))
        y0 = int(torch.randint(0, h - ch + 1, (1, ), generator=gen))
        x0 = int(torch.randint(0, w - cw + 1, (1, ), generator=gen))
        crop = x[i:i + 1, :, y0:y0 + ch, x0:x0 + cw]
        crop = F.interpolate(crop, size=(h, w), mode='bilinear', align_corners=False)
        if float(torch.rand(1, generator=gen)) < 0.5:
            crop = crop.flip(-1)
        out[i] = crop[0]
    gain = torch.empty(b, 1, 1, 1).uniform_(0.8, 1.2, generator=gen)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    contrast = torch.empty(b, 1, 1, 1).uniform_(0.8, 1.2, generator=gen)
    return ((out - mean) * contrast + mean * gain).clamp(0, 1)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)) / torch.tensor(OPENAI_STD).view(1, 3, 1, 1)


def save_open_clip(model: torch.nn.Module, cfg: dict, out_dir: str) -> Dict[str, str]:
    """Write ``model`` in open_clip's hub layout (``open_clip_config.json`` + ``open_clip_pytorch_model.bin``)."""
    os.makedirs(out_dir, exist_ok=True)
    size = cfg['vision_cfg']['image_size']
    paths = dict(local_dir=out_dir, config=osp.join(out_dir, 'open_clip_config.json'),
                 checkpoint=osp.join(out_dir, 'open_clip_pytorch_model.bin'))
    with open(paths['config'], 'w') as f:
        json.dump(dict(model_cfg=cfg, preprocess_cfg=dict(size=size, mean=list(OPENAI_MEAN), std=list(OPENAI_STD),
                                                          interpolation='bicubic', resize_mode='shortest')),
                  f, indent=2)
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, paths['checkpoint'])
    return paths


def train_source_clip(data_dir: str, out_dir: str, seed: int = 0, epochs: int = 30, batch_size: int = 64,
                      lr: float = 1e-3, cfg: Optional[dict] = None) -> dict:
    """Train a small CLIP on the source image-caption pairs; write it to ``out_dir`` (open_clip hub layout).

    Returns:
        dict(local_dir, final_loss, train_retrieval_acc (image -> its caption's object among the class prompts),
        seconds).
    """
    import open_clip
    cfg = json.loads(json.dumps(TINY_CLIP_CFG if cfg is None else cfg))
    src = load_source(data_dir)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = open_clip.CLIP(**cfg)
    tokenizer = open_clip.get_tokenizer('ViT-B-32')  # the bundled BPE vocabulary (no download)
    images = torch.from_numpy(src['images']).permute(0, 3, 1, 2).float() / 255.0
    tokens = tokenizer(list(src['captions']))
    cap_cls = torch.from_numpy(_caption_classes(src['captions'], src['classes']))
    n = images.shape[0]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    steps = epochs * max(1, n // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    t0, step, loss = time.time(), 0, torch.tensor(0.0)
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for b in range(n // batch_size):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            img = _normalise(_augment_images(images[idx], gen))
            fi = F.normalize(model.encode_image(img), dim=-1)
            ft = F.normalize(model.encode_text(tokens[idx]), dim=-1)
            logits = model.logit_scale.exp().clamp(max=100) * fi @ ft.t()
            tgt = _soft_targets(cap_cls[idx])
            loss = 0.5 * (_soft_ce(logits, tgt) + _soft_ce(logits.t(), tgt))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        if (ep + 1) % 10 == 0 or ep == epochs - 1:
            _log(f'[source CLIP] epoch {ep + 1}/{epochs} loss {float(loss):.4f}')
    paths = save_open_clip(model, cfg, out_dir)
    acc = clip_zero_shot_accuracy(model, tokenizer, images, src['labels'][src['image_object']], src['classes'])
    res = dict(local_dir=paths['local_dir'], final_loss=float(loss), source_zero_shot_acc=acc,
               seconds=round(time.time() - t0, 1))
    with open(osp.join(out_dir, 'train_info.json'), 'w') as f:
        json.dump(res, f, indent=2)
    return res


@torch.no_grad()
def clip_zero_shot_accuracy(model, tokenizer, images: torch.Tensor, labels: np.ndarray,
                            classes: Sequence[str]) -> float:
    """Top-1 (%) of CLIP zero-shot classification (prompt-ensemble text embeddings of ``classes``)."""
    from mmxmodal.models.clip_utils import text_class_embeddings
    model.eval()
    w = text_class_embeddings(model, tokenizer, classes)
    pred = []
    for s in range(0, images.shape[0], 256):
        fi = F.normalize(model.encode_image(_normalise(images[s:s + 256])), dim=-1)
        pred.append((fi @ w.t()).argmax(1))
    return float(100.0 * (torch.cat(pred).numpy() == np.asarray(labels)).mean())


def _point_batch(points: np.ndarray, num_points: int, rng: np.random.Generator) -> torch.Tensor:
    """(B, P, 3) full clouds -> (B, num_points, 3): random subset, unit-sphere normalised, random scale and
    jitter, random point dropout (replaced by duplicates)."""
    out = []
    for p in points:
        q = p[rng.choice(len(p), num_points, replace=False)].astype(np.float64)
        q -= q.mean(0)
        q /= np.sqrt((q ** 2).sum(1)).max() or 1.0
        q *= rng.uniform(0.85, 1.15)
        q += np.clip(rng.normal(0, 0.01, q.shape), -0.03, 0.03)
        drop = rng.random(num_points) < rng.uniform(0, 0.3)
        if drop.any() and (~drop).any():
            q[drop] = q[~drop][0]
        out.append(q)
    return torch.from_numpy(np.stack(out)).float()


def align_point_encoder(data_dir: str, clip_dir: str, out_ckpt: str, point_encoder: dict, point_proj: dict,
                        seed: int = 0, epochs: int = 30, batch_size: int = 32, lr: float = 1e-3,
                        num_points: int = 256, temperature: float = 0.07) -> dict:
    """ULIP-style alignment of a point encoder to the frozen source CLIP (image + text), on the source set.

    Args:
        point_encoder / point_proj: MODELS configs (as in the Cross-MoST config); ``point_proj`` maps the encoder
            output to CLIP's embedding size.
    Returns:
        dict(checkpoint, final_loss, source_zero_shot_acc (points vs the class-name text embeddings), seconds).
    """
    import mmxmodal  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope

    from mmxmodal.models.clip_utils import load_local_clip, text_class_embeddings
    init_default_scope('mmdet3d')
    src = load_source(data_dir)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    clip, tokenizer, _ = load_local_clip(local_dir=clip_dir)
    clip.eval()
    images = torch.from_numpy(src['images']).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        img_emb = torch.cat([F.normalize(clip.encode_image(_normalise(images[s:s + 256])), dim=-1)
                             for s in range(0, images.shape[0], 256)])
        txt_emb = F.normalize(clip.encode_text(tokenizer(list(src['captions']))), dim=-1)
        class_emb = text_class_embeddings(clip, tokenizer, src['classes'])
    cap_cls = torch.from_numpy(_caption_classes(src['captions'], src['classes']))
    owner = src['image_object']
    views_of = [np.nonzero(owner == i)[0] for i in range(len(src['points']))]
    enc, proj = MODELS.build(point_encoder), MODELS.build(point_proj)
    params = list(enc.parameters()) + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    n = len(src['points'])
    steps = epochs * max(1, n // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    t0, loss = time.time(), torch.tensor(0.0)
    enc.train(), proj.train()
    for ep in range(epochs):
        perm = rng.permutation(n)
        for b in range(n // batch_size):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            view = np.array([rng.choice(views_of[i]) for i in idx])  # one random render (and its caption)
            feat = enc(_point_batch(src['points'][idx], num_points, rng))
            feat = feat[0] if isinstance(feat, (tuple, list)) else feat
            fp = F.normalize(proj(feat), dim=-1)
            li = fp @ img_emb[view].t() / temperature
            lt = fp @ txt_emb[view].t() / temperature
            tgt = _soft_targets(cap_cls[view])
            loss = 0.5 * (F.cross_entropy(li, torch.arange(len(idx))) + F.cross_entropy(li.t(), torch.arange(len(idx))))
            loss = loss + 0.5 * (_soft_ce(lt, tgt) + _soft_ce(lt.t(), tgt))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if (ep + 1) % 10 == 0 or ep == epochs - 1:
            _log(f'[ULIP alignment] epoch {ep + 1}/{epochs} loss {float(loss):.4f}')
    enc.eval(), proj.eval()
    with torch.no_grad():
        feats = []
        for s in range(0, n, 64):
            f = enc(_point_batch(src['points'][s:s + 64], num_points, np.random.default_rng(0)))
            feats.append(F.normalize(proj(f[0] if isinstance(f, (tuple, list)) else f), dim=-1))
        acc = float(100.0 * ((torch.cat(feats) @ class_emb.t()).argmax(1).numpy() == src['labels']).mean())
    sd = {f'point_encoder.{k}': v for k, v in enc.state_dict().items()}
    sd.update({f'point_proj.{k}': v for k, v in proj.state_dict().items()})
    os.makedirs(osp.dirname(osp.abspath(out_ckpt)), exist_ok=True)
    meta = dict(method='ULIP-style alignment to the source CLIP (image + text)', clip_dir=clip_dir, seed=seed,
                epochs=epochs, final_loss=float(loss), source_zero_shot_acc=acc)
    torch.save(dict(state_dict=sd, meta=dict(ulip=meta)), out_ckpt)
    return dict(checkpoint=out_ckpt, final_loss=float(loss), source_zero_shot_acc=acc,
                seconds=round(time.time() - t0, 1))


#: the point encoder / projection of ``configs/crossmost/crossmost_tinyclip-dgcnn_1xb16-10e_synthetic-shift.py``
POINT_ENCODER = dict(type='DGCNNEncoder', k=10, edge_channels=(32, 32, 64, 64), emb_dims=128)
POINT_PROJ = dict(type='ProjectionHead', in_channels=256, hidden_channels=128, out_channels=64)


def make_start(data_dir: str, seed: int = 0, clip_epochs: int = 30, ulip_epochs: int = 30,
               point_encoder: dict = POINT_ENCODER, point_proj: dict = POINT_PROJ) -> dict:
    """``<data_dir>/source_clip/`` (small CLIP) and ``<data_dir>/ulip_dgcnn.pth`` (aligned point encoder), skipped
    when both exist. Returns what each step reported."""
    clip_dir = osp.join(data_dir, 'source_clip')
    ulip = osp.join(data_dir, 'ulip_dgcnn.pth')
    info_path = osp.join(data_dir, 'start_info.json')
    if osp.isfile(info_path) and osp.isfile(ulip) and osp.isfile(osp.join(clip_dir, 'open_clip_pytorch_model.bin')):
        with open(info_path) as f:
            return json.load(f)
    info = dict(clip=train_source_clip(data_dir, clip_dir, seed=seed, epochs=clip_epochs))
    info['ulip'] = align_point_encoder(data_dir, clip_dir, ulip, point_encoder, point_proj, seed=seed,
                                       epochs=ulip_epochs)
    with open(info_path, 'w') as f:
        json.dump(info, f, indent=2)
    return info


def main(argv=None) -> None:
    import argparse
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-dir', required=True, help='written by mmxmodal_bench.crossmost_data')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--clip-epochs', type=int, default=30)
    p.add_argument('--ulip-epochs', type=int, default=30)
    a = p.parse_args(argv)
    print(json.dumps(make_start(a.data_dir, a.seed, a.clip_epochs, a.ulip_epochs)))


if __name__ == '__main__':
    main()
