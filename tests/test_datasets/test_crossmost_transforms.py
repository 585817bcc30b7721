"""Weak / strong view transforms of Cross-MoST (RandAugment, resized crop, point crop, two-view stacking)."""
import numpy as np
import pytest

from mmdet3d.registry import TRANSFORMS

import mmxmodal  # noqa: F401


def _img(h=40, w=48):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rand_augment_changes_uint8_image_and_is_seeded_by_numpy():
    t = TRANSFORMS.build(dict(type='ObjectRandAugment', num_ops=2, magnitude=9))
    img = _img()
    np.random.seed(3)
    a = t(dict(img=img.copy()))['img']
    np.random.seed(3)
    b = t(dict(img=img.copy()))['img']
    assert a.dtype == np.uint8 and a.shape == img.shape
    assert np.array_equal(a, b)
    outs = [t(dict(img=img.copy()))['img'] for _ in range(5)]
    assert any(not np.array_equal(o, img) for o in outs)
    assert TRANSFORMS.build(dict(type='ObjectRandAugment', prob=0.0))(dict(img=img.copy()))['img'] is not None


def test_resized_crop_flip():
    img = _img()
    out = TRANSFORMS.build(dict(type='RandomResizedCropFlip', size=16, scale=(1.0, 1.0), flip_prob=0.0))(
        dict(img=img.copy()))
    assert out['img'].shape == (16, 16, 3) and out['crop_box'] == (0, 0, 48, 40) and not out['flip']
    np.random.seed(0)
    flipped = TRANSFORMS.build(dict(type='RandomResizedCropFlip', size=16, scale=(1.0, 1.0), flip_prob=1.0))(
        dict(img=img.copy()))
    assert np.array_equal(flipped['img'], out['img'][:, ::-1])
    crop = TRANSFORMS.build(dict(type='RandomResizedCropFlip', size=16, scale=(0.2, 0.3), flip_prob=0.0))(
        dict(img=img.copy()))
    x0, y0, x1, y1 = crop['crop_box']
    assert 0.1 < (x1 - x0) * (y1 - y0) / (40 * 48) < 0.4


def test_point_crop_keeps_a_local_subset_and_size():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(200, 3)).astype(np.float32)
    np.random.seed(1)
    out = TRANSFORMS.build(dict(type='RandomPointCrop', ratio=(0.5, 0.5)))(dict(points=pts.copy()))
    assert out['points'].shape == (200, 3)
    seed, keep = out['point_crop']
    assert keep == 100
    uniq = np.unique(out['points'], axis=0)
    assert len(uniq) == 100
    # the kept points are the 100 nearest to the seed point
    d = ((pts - pts[seed])**2).sum(1)
    assert np.isclose(((uniq - pts[seed])**2).sum(1).max(), np.sort(d)[99])
    same = TRANSFORMS.build(dict(type='RandomPointCrop', prob=0.0))(dict(points=pts.copy()))
    assert np.array_equal(same['points'], pts) and same['point_crop'] is None


def test_weak_strong_views_and_packing():
    pts = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    views = TRANSFORMS.build(dict(
        type='WeakStrongViews',
        weak=[dict(type='RandomResizedCropFlip', size=16, scale=(1.0, 1.0), flip_prob=0.0),
              dict(type='ObjectPointAugment', scale_range=None, rot_range=None, translate_range=0.0,
                   jitter_std=0.0, dropout_max_ratio=0.0)],
        strong=[dict(type='RandomResizedCropFlip', size=16, scale=(0.3, 0.6)),
                dict(type='ObjectRandAugment'),
                dict(type='ObjectPointAugment'),
                dict(type='RandomPointCrop', ratio=(0.5, 0.9))]))
    out = views(dict(points=pts.copy(), img=_img(), gt_label=3, sample_idx=0))
    assert out['points'].shape == (2, 64, 3)
    assert isinstance(out['img'], list) and [i.shape for i in out['img']] == [(16, 16, 3), (16, 16, 3)]
    # weak view = normalised points only; strong view differs
    c = pts - pts.mean(0)
    assert np.allclose(out['points'][0], c / np.linalg.norm(c, axis=1).max(), atol=1e-5)
    assert not np.allclose(out['points'][1], out['points'][0])
    packed = TRANSFORMS.build(dict(type='PackObjectInputs', keys=('points', 'img')))(out)
    assert tuple(packed['inputs']['points'].shape) == (2, 64, 3)
    assert tuple(packed['inputs']['img'].shape) == (2, 3, 16, 16)
    assert int(packed['data_samples'].gt_label) == 3


def test_views_must_agree_in_size():
    views = TRANSFORMS.build(dict(type='WeakStrongViews',
                                  weak=[dict(type='RandomResizedCropFlip', size=16, scale=(1.0, 1.0))],
                                  strong=[dict(type='RandomResizedCropFlip', size=8, scale=(1.0, 1.0))],
                                  keys=('img', )))
    out = views(dict(img=_img()))
    with pytest.raises(Exception):
        TRANSFORMS.build(dict(type='PackObjectInputs', keys=('img', )))(out)
