"""Cross-MoST bench data: a captioned SOURCE set and a shifted, unlabelled TARGET set of synthetic objects.

Built from the public functions of :mod:`mmxmodal_bench.synthetic.objects` (``build_object``,
``sample_surface``, ``random_cameras``, ``render``, ``partial_scan``); every object comes from its own random
stream ``(seed, set, index)``, so the sets are disjoint object instances.

* **source** (``source.npz`` + ``source_captions.json``): full surface clouds (``points`` (N, P, 3)), renders
  (``images`` (N * V, H, W, 3) uint8, elevation 5-40 deg; ``source_style='studio'``: default lights, grey
  gradient background; ``'varied'``: random two-colour gradients and mildly jittered lighting, see
  :func:`source_render`),
  ``image_object`` (N * V,) and one caption per render that names the object ("a photo of a chair."), as web
  captions would. This is what the small CLIP and the ULIP-style point alignment are trained on.
* **target** (ModelNet40 h5 layout + views, read by ``ModelNet40Dataset``), with a real shift from the source
  (:class:`TargetShift`): other viewpoints (low / high elevations, in-plane roll), other lighting (gamma, gain,
  colour cast), cluttered backgrounds (random colour or noise texture behind the object mask), and partial, noisy
  scans (one viewpoint, z-buffer visibility, Gaussian noise) instead of full surfaces::

      <out>/target/modelnet40_ply_hdf5_2048/ply_data_{train,test}0.h5   # train: self-training (labels unused)
      <out>/target/modelnet40_views/{train,test}/<row:05d>/NN.png          # test: held-out evaluation
      <out>/target_val/modelnet40_ply_hdf5_2048/ply_data_test0.h5          # val: every choice is made here
      <out>/target_val/modelnet40_views/test/<row:05d>/NN.png

  Labels are stored in every split (the monitor hook compares pseudo-labels with the train labels for the log);
  no training step reads them.

    python -m mmxmodal_bench.crossmost_data --out-dir data/crossmost_shift --seed 0
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, fields
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mmxmodal_bench.synthetic import objects as synth

CAPTION_TEMPLATES = (
    'a photo of a {}.',
    'a {}.',
    'a rendering of a {}.',
    'a 3d model of a {}.',
    'a picture of my {}.',
    'a {} on a plain background.',
    'a small {}.',
    'a large {}.',
    'an image of the {}.',
    'a close-up photo of a {}.',
)

# random streams of this module (disjoint from objects.py's streams 0-2 and from each other)
STREAM_SOURCE, STREAM_TRAIN, STREAM_VAL, STREAM_TEST, STREAM_SOURCE_STYLE = 101, 102, 103, 104, 105
SOURCE_STYLES = ('studio', 'varied')


@dataclass
class TargetShift:
    """How the target renders and scans differ from the source."""
    elevation_low: Tuple[float, float] = (-20.0, 0.0)  # source: 5-40 deg
    elevation_high: Tuple[float, float] = (45.0, 70.0)
    in_plane: float = 25.0  # +- degrees of camera roll (source: 0)
    distance: Tuple[float, float] = (2.6, 3.4)
    gamma: Tuple[float, float] = (0.7, 1.6)  # lighting: rgb ** gamma * gain * tint
    gain: Tuple[float, float] = (0.55, 1.0)
    tint: float = 0.2
    background: str = 'clutter'  # 'clutter' (random colour or noise texture) | 'source'
    partial: bool = True  # one-viewpoint scan (partial_scan) instead of the full surface
    noise: float = 0.01  # scan noise std (unit-sphere units)


def make_shift(shift: Union[TargetShift, dict, None]) -> TargetShift:
    """A :class:`TargetShift` from itself, ``None`` (the defaults) or a dict of some of its fields."""
    if shift is None:
        return TargetShift()
    if isinstance(shift, TargetShift):
        return shift
    known = {f.name for f in fields(TargetShift)}
    unknown = set(shift) - known
    if unknown:
        raise ValueError(f'unknown TargetShift fields {sorted(unknown)}; known: {sorted(known)}')
    return TargetShift(**{k: tuple(v) if isinstance(v, list) else v for k, v in shift.items()})


def caption(cls_name: str, rng: np.random.Generator) -> str:
    """A caption naming the object, drawn from :data:`CAPTION_TEMPLATES`."""
    return CAPTION_TEMPLATES[int(rng.integers(len(CAPTION_TEMPLATES)))].format(cls_name.replace('_', ' '))


def _streams(seed: int, stream: int, index: int) -> List[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence([seed, stream, index]).spawn(4)]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: a random saturated colour, or low-frequency colour noise (clutter)."""
    import cv2
    if rng.random() < 0.4:
        return np.broadcast_to(rng.uniform(0.05, 0.95, 3), (size, size, 3)).copy()
    coarse = rng.uniform(0.0, 1.0, (int(rng.integers(3, 9)),) * 2 + (3, )).astype(np.float32)
    return np.clip(cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC), 0, 1)


def shifted_render(obj, rng: np.random.Generator, image_size: int, shift: TargetShift) -> np.ndarray:
    """One target view: shifted viewpoint, lighting and background. -> (H, W, 3) uint8."""
    lo, hi = shift.elevation_low, shift.elevation_high
    el = rng.uniform(*lo) if rng.random() < 0.5 else rng.uniform(*hi)
    cam = synth.Camera(float(rng.uniform(0, 360)), float(el), float(rng.uniform(*shift.distance)), 50.0,
                       image_size, image_size, float(rng.uniform(-shift.in_plane, shift.in_plane)))
    rgb, mask = synth.render(obj, cam)
    img = rgb.astype(np.float32) / 255.0
    tint = 1.0 + rng.uniform(-shift.tint, shift.tint, 3)
    img = np.clip(img ** rng.uniform(*shift.gamma) * rng.uniform(*shift.gain) * tint, 0, 1)
    if shift.background == 'clutter':
        img = np.where(mask[..., None], img, _background(rng, image_size))
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def source_render(obj, cam, style: str, rng: np.random.Generator) -> np.ndarray:
    """One source view -> (H, W, 3) uint8.

    ``'studio'``: the default lights and grey gradient background. ``'varied'`` (closer to web photos, which a real
    CLIP saw): a vertical gradient between two random colours and mildly jittered lighting (gamma 0.8-1.25,
    gain 0.8-1). Neither is the target's shift (noise-texture clutter, gamma up to 1.6, gain down to 0.55, colour
    cast, low / high elevations with roll).
    """
    if style == 'studio':
        return synth.render(obj, cam)[0]
    if style != 'varied':
        raise ValueError(f'source style {style!r} is not one of {SOURCE_STYLES}')
    rgb, _ = synth.render(obj, cam, bg_top=tuple(rng.uniform(0.05, 0.95, 3)), bg_bottom=tuple(rng.uniform(0.05, 0.95, 3)))
    img = (rgb.astype(np.float32) / 255.0) ** rng.uniform(0.8, 1.25) * rng.uniform(0.8, 1.0)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def make_source(seed: int, classes: Sequence[str], per_class: int, views: int, image_size: int,
                num_points: int, style: str = 'studio') -> Dict[str, np.ndarray]:
    """Source objects: full clouds, renders in ``style`` (:func:`source_render`) and one caption per render."""
    pts, labels, images, owner, captions = [], [], [], [], []
    for i in range(per_class * len(classes)):
        c = i % len(classes)
        s_shape, s_pts, s_view, s_cap = _streams(seed, STREAM_SOURCE, i)
        s_style = np.random.default_rng([seed, STREAM_SOURCE_STYLE, i])
        obj = synth.build_object(classes[c], s_shape)
        p, _ = synth.sample_surface(obj, num_points, s_pts)
        pts.append(p)
        labels.append(c)
        for cam in synth.random_cameras(s_view, views, image_size):
            images.append(source_render(obj, cam, style, s_style))
            owner.append(i)
            captions.append(caption(classes[c], s_cap))
    return dict(points=np.stack(pts), labels=np.array(labels, np.int64), images=np.stack(images),
                image_object=np.array(owner, np.int64), captions=np.array(captions))


def make_target(seed: int, stream: int, classes: Sequence[str], per_class: int, views: int, image_size: int,
                num_points: int, shift: TargetShift) -> Tuple[np.ndarray, np.ndarray, List[List[np.ndarray]]]:
    """Target objects of one split -> (points (N, P, 3), labels (N,), views per object)."""
    pts, labels, views_all = [], [], []
    for i in range(per_class * len(classes)):
        c = i % len(classes)
        s_shape, s_pts, s_view, s_scan = _streams(seed, stream, i)
        obj = synth.build_object(classes[c], s_shape)
        if shift.partial:
            p = synth.partial_scan(obj, num_points, s_scan, noise=shift.noise)
        else:
            p, _ = synth.sample_surface(obj, num_points, s_pts)
            p = p + s_scan.normal(0, shift.noise, p.shape).astype(np.float32)
        pts.append(p.astype(np.float32))
        labels.append(c)
        views_all.append([shifted_render(obj, s_view, image_size, shift) for _ in range(views)])
    return np.stack(pts), np.array(labels, np.int64), views_all


def write_modelnet_split(root: str, split: str, classes: Sequence[str], points: np.ndarray, labels: np.ndarray,
                         views: List[List[np.ndarray]]) -> None:
    """Write one split in the ModelNet40 h5 layout (+ ``modelnet40_views/<split>/<row>/NN.png``)."""
    import h5py
    mn = osp.join(root, 'modelnet40_ply_hdf5_2048')
    os.makedirs(mn, exist_ok=True)
    name = f'ply_data_{split}0.h5'
    with h5py.File(osp.join(mn, name), 'w', libver='earliest', track_order=False) as f:
        f.create_dataset('data', data=points.astype(np.float32), track_times=False)
        f.create_dataset('label', data=labels[:, None].astype(np.uint8), track_times=False)
    with open(osp.join(mn, f'{split}_files.txt'), 'w') as f:
        f.write(f'data/modelnet40_ply_hdf5_2048/{name}\n')
    with open(osp.join(mn, 'shape_names.txt'), 'w') as f:
        f.write(''.join(c + '\n' for c in classes))
    for row, imgs in enumerate(views):
        folder = osp.join(root, 'modelnet40_views', split, f'{row:05d}')
        os.makedirs(folder, exist_ok=True)
        for k, img in enumerate(imgs):
            synth.write_png(osp.join(folder, f'{k:02d}.png'), img)
        with open(osp.join(folder, 'renderings.txt'), 'w') as f:
            f.write(''.join(f'{k:02d}.png\n' for k in range(len(imgs))))


def generate(out_dir: str, seed: int = 0, classes: Optional[Sequence[str]] = None, source_per_class: int = 30,
             source_views: int = 3, train_per_class: int = 40, val_per_class: int = 15, test_per_class: int = 20,
             target_views: int = 2, image_size: int = 64, num_points: int = 1024,
             shift: Union[TargetShift, dict, None] = None, source_style: str = 'studio') -> dict:
    """Generate the source and the target sets into ``out_dir`` (skipped when ``meta.json`` matches).

    ``shift``: a :class:`TargetShift`, or a dict of its fields (the rest keep their defaults), e.g. from a JSON
    ``--data-kwargs``.

    ``source_style``: how the source (captioned) images are rendered, see :func:`source_render`.
    """
    if source_style not in SOURCE_STYLES:
        raise ValueError(f'source_style {source_style!r} is not one of {SOURCE_STYLES}')
    classes = list(synth.OBJECT_CLASSES if classes is None else classes)
    shift = make_shift(shift)
    meta = dict(generator='mmxmodal_bench.crossmost_data', seed=seed, classes=classes,
                source_per_class=source_per_class, source_views=source_views, train_per_class=train_per_class,
                val_per_class=val_per_class, test_per_class=test_per_class, target_views=target_views,
                image_size=image_size, num_points=num_points, shift=asdict(shift))
    if source_style != 'studio':  # the meta (and so the cache key) of studio sets stays as it was
        meta['source_style'] = source_style
    meta_path = osp.join(out_dir, 'meta.json')
    if osp.isfile(meta_path):
        with open(meta_path) as f:
            if json.load(f) == json.loads(json.dumps(meta)):
                return meta
    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    stale = osp.join(out_dir, 'start_info.json')  # a start made on other data (mmxmodal_bench.crossmost_start)
    if osp.isfile(stale):
        os.remove(stale)
    src = make_source(seed, classes, source_per_class, source_views, image_size, num_points, source_style)
    np.savez_compressed(osp.join(out_dir, 'source.npz'), **{k: v for k, v in src.items() if k != 'captions'})
    with open(osp.join(out_dir, 'source_captions.json'), 'w') as f:
        json.dump(src['captions'].tolist(), f)
    for split, stream, n, root, as_split in (
            ('train', STREAM_TRAIN, train_per_class, 'target', 'train'),
            ('test', STREAM_TEST, test_per_class, 'target', 'test'),
            ('val', STREAM_VAL, val_per_class, 'target_val', 'test')):
        p, y, v = make_target(seed, stream, classes, n, target_views, image_size, num_points, shift)
        write_modelnet_split(osp.join(out_dir, root), as_split, classes, p, y, v)
    meta['seconds'] = round(time.time() - t0, 1)
    with open(meta_path, 'w') as f:
        json.dump({k: v for k, v in meta.items() if k != 'seconds'}, f, indent=2)
    return meta


def load_source(out_dir: str) -> Dict[str, np.ndarray]:
    """The source set written by :func:`generate` (``captions`` as a list of str)."""
    path = osp.join(out_dir, 'source.npz')
    if not osp.isfile(path):
        raise FileNotFoundError(f'source set not found: {path} (run mmxmodal_bench.crossmost_data)')
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    with open(osp.join(out_dir, 'source_captions.json')) as f:
        out['captions'] = json.load(f)
    with open(osp.join(out_dir, 'meta.json')) as f:
        out['classes'] = json.load(f)['classes']
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out-dir', required=True)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--source-per-class', type=int, default=30)
    p.add_argument('--train-per-class', type=int, default=40)
    p.add_argument('--val-per-class', type=int, default=15)
    p.add_argument('--test-per-class', type=int, default=20)
    p.add_argument('--source-style', choices=SOURCE_STYLES, default='studio')
    a = p.parse_args(argv)
    meta = generate(a.out_dir, a.seed, source_per_class=a.source_per_class, train_per_class=a.train_per_class,
                    val_per_class=a.val_per_class, test_per_class=a.test_per_class, source_style=a.source_style)
    print(json.dumps(meta))


if __name__ == '__main__':
    main()
