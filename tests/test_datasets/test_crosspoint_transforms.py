"""CrossPoint data path: point views (ranges, independence, invertibility), colour jitter, packing, split tags and
the synthetic pretraining pipeline built from the config."""
import os.path as osp

import numpy as np
import pytest
import torch

import mmxmodal  # noqa: F401
from mmxmodal.datasets.transforms.image_views import RandomColorJitter
from mmxmodal.datasets.transforms.object_formatting import PackObjectInputs
from mmxmodal.datasets.transforms.point_views import (ObjectPointAugment, ObjectPointViews, invert_view,
                                                      rotation_about_axis)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROSSPOINT_AUG = dict(scale_range=(0.5, 2.0), rot_range=(0.0, 2 * np.pi), up_axis=1, translate_range=0.5,
                      translate_mode='extent', jitter_std=0.01, jitter_clip=0.05, dropout_max_ratio=0.875)


def _cloud(n=1024, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 3)) * [0.7, 0.3, 0.2] + [3.0, -1.0, 2.0]
    return pts.astype(np.float32)


def test_rotation_about_y_matches_crosspoint_angle_axis():
    # CrossPoint: R = cos I + sin [u]x + (1 - cos) u u^T with u = e_y
    a = 0.7
    u = np.array([0.0, 1.0, 0.0])
    ux = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    ref = np.cos(a) * np.eye(3) + np.sin(a) * ux + (1 - np.cos(a)) * np.outer(u, u)
    np.testing.assert_allclose(rotation_about_axis(a, 1), ref, atol=1e-12)
    for axis in range(3):
        R = rotation_about_axis(1.1, axis)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(R), 1.0)
        np.testing.assert_allclose(R[:, axis], np.eye(3)[axis])


def test_normalize_only_gives_unit_sphere():
    aug = ObjectPointAugment(scale_range=None, rot_range=None, translate_range=0, jitter_std=0,
                             dropout_max_ratio=0)
    out, info = aug.augment(_cloud())
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    assert np.isclose(np.linalg.norm(out, axis=1).max(), 1.0, atol=1e-5)
    np.testing.assert_allclose(invert_view(out, info), _cloud(), atol=1e-4)


def test_views_ranges_independent_and_invertible():
    pts = _cloud()
    np.random.seed(0)
    t = ObjectPointViews(num_views=2, **CROSSPOINT_AUG)
    scales, angles = [], []
    for trial in range(40):
        res = t(dict(points=pts.copy(), sample_idx=trial))
        views, infos = res['points'], res['point_views']
        assert views.shape == (2, len(pts), 3) and views.dtype == np.float32 and len(infos) == 2
        assert not np.allclose(views[0], views[1])  # independent draws
        for v, info in zip(views, infos):
            s = info['scale']
            assert 0.5 <= s[0] <= 2.0 and np.all(s == s[0])  # isotropic U(0.5, 2)
            assert 0.0 <= info['rot_angle'] < 2 * np.pi
            R = info['rotation']
            np.testing.assert_allclose(R[1], [0, 1, 0], atol=1e-6)  # rotation about the up (y) axis
            # translation within +-0.5 x the extent of the scaled, rotated cloud
            M = info['matrix']
            lin = (pts - info['centroid']) / info['radius'] @ (M[:3, :3] * info['radius']).T
            extent = lin.max(0) - lin.min(0)
            assert np.all(np.abs(info['translation']) <= 0.5 * extent + 1e-5)
            assert len(info['dropped']) <= len(pts)
            kept = np.setdiff1d(np.arange(len(pts)), info['dropped'])
            if 0 not in info['dropped']:
                # dropped points are overwritten with the (augmented) first point
                np.testing.assert_array_equal(v[info['dropped']], np.broadcast_to(v[0], (len(info['dropped']), 3)))
            # invertible: back to the object frame up to the clipped jitter (<= clip per axis in the view frame)
            back = invert_view(v, info)
            bound = np.sqrt(3) * info['jitter_clip'] * info['radius'] / s[0] + 1e-4
            err = np.linalg.norm(back[kept] - pts[kept], axis=1)
            assert err.max() <= bound, (err.max(), bound)
            # forward map reproduces the view up to jitter
            fwd = pts[kept] @ M[:3, :3].T + M[:3, 3]
            assert np.abs(fwd - v[kept]).max() <= info['jitter_clip'] + 1e-5
            scales.append(s[0])
            angles.append(info['rot_angle'])
    assert min(scales) < 0.8 and max(scales) > 1.6  # covers the range
    assert np.ptp(angles) > np.pi


def test_jitter_is_clipped_and_dropout_ratio_bounded():
    pts = _cloud(4096)
    aug = ObjectPointAugment(scale_range=None, rot_range=None, translate_range=0, jitter_std=0.05,
                             jitter_clip=0.02, dropout_max_ratio=0.5)
    np.random.seed(1)
    ratios = []
    for _ in range(20):
        out, info = aug.augment(pts)
        base = pts @ info['matrix'][:3, :3].T + info['matrix'][:3, 3]
        kept = np.setdiff1d(np.arange(len(pts)), info['dropped'])
        assert np.abs(out[kept] - base[kept]).max() <= 0.02 + 1e-6
        ratios.append(len(info['dropped']) / len(pts))
    assert max(ratios) <= 0.5 + 0.05 and max(ratios) > 0.1


def test_dgcnn_finetune_augment_and_normals():
    pts = np.concatenate([_cloud(256), np.tile([[0.0, 0.0, 1.0]], (256, 1))], 1).astype(np.float32)
    aug = ObjectPointAugment(normalize=False, scale_range=(2 / 3, 3 / 2), anisotropic_scale=True, rot_range=None,
                             translate_range=0.2, translate_mode='absolute', jitter_std=0, dropout_max_ratio=0,
                             shuffle=True)
    np.random.seed(2)
    out, info = aug.augment(pts)
    assert out.shape == pts.shape
    assert np.all((info['scale'] >= 2 / 3) & (info['scale'] <= 1.5)) and len(set(info['scale'].tolist())) == 3
    assert np.all(np.abs(info['translation']) <= 0.2)
    unshuffled = np.empty_like(out)
    unshuffled[info['perm']] = out
    np.testing.assert_allclose(invert_view(unshuffled, info), pts, atol=1e-4)
    np.testing.assert_array_equal(unshuffled[:, 3:], pts[:, 3:])  # normals untouched without rotate_normals
    rot = ObjectPointAugment(rot_range=(0.5, 0.5), scale_range=None, translate_range=0, jitter_std=0,
                             dropout_max_ratio=0, rotate_normals=True)
    out, info = rot.augment(pts)
    np.testing.assert_allclose(out[:, 3:], pts[:, 3:] @ rotation_about_axis(0.5, 1).T, atol=1e-6)
    np.testing.assert_allclose(invert_view(out, info), pts, atol=1e-4)


def test_seeded_augment_is_a_fixed_transform_per_sample():
    t = ObjectPointAugment(seed=3, **CROSSPOINT_AUG)
    a = t(dict(points=_cloud(), sample_idx=5))['points']
    np.random.seed(123)  # the global RNG does not matter
    b = t(dict(points=_cloud(), sample_idx=5))['points']
    c = t(dict(points=_cloud(), sample_idx=6))['points']
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_color_jitter_ranges_and_identity():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    same = RandomColorJitter(brightness=0, contrast=0, saturation=0)(dict(img=img.copy()))
    np.testing.assert_array_equal(same['img'], img)
    assert same['color_jitter'] == {}
    gray = RandomColorJitter(brightness=0, contrast=0, saturation=(0.0, 0.0))(dict(img=img.copy()))['img']
    assert gray.dtype == np.uint8 and np.abs(gray[..., 0].astype(int) - gray[..., 2]).max() <= 1
    dark = RandomColorJitter(brightness=(0.5, 0.5), contrast=0, saturation=0)(dict(img=img.copy()))['img']
    np.testing.assert_allclose(dark, np.round(img * 0.5), atol=1)
    t = RandomColorJitter(0.4, 0.4, 0.4, hue=0.1)
    np.random.seed(0)
    for _ in range(10):
        res = t(dict(img=img.copy()))
        assert res['img'].shape == img.shape and res['img'].dtype == np.uint8
        assert set(res['color_jitter']) == {'brightness', 'contrast', 'saturation', 'hue'}
        for k in ('brightness', 'contrast', 'saturation'):
            assert 0.6 <= res['color_jitter'][k] <= 1.4
        assert abs(res['color_jitter']['hue']) <= 0.1


def test_pack_object_inputs():
    views = np.stack([_cloud(64), _cloud(64, 1)])
    res = PackObjectInputs()(dict(points=views, img=np.zeros((8, 10, 3), np.uint8), gt_label=3, sample_idx=7,
                                  point_views=[{}, {}], img_path='a.png'))
    assert res['inputs']['points'].shape == (2, 64, 3) and res['inputs']['points'].dtype == torch.float32
    assert res['inputs']['img'].shape == (3, 8, 10) and res['inputs']['img'].dtype == torch.uint8
    ds = res['data_samples']
    assert int(ds.gt_label) == 3 and ds.sample_idx == 7 and ds.img_path == 'a.png'
    res = PackObjectInputs(keys=['points'])(dict(points=_cloud(32)))
    assert set(res['inputs']) == {'points'} and int(res['data_samples'].gt_label) == -1


def test_split_concat_dataset_tags_samples(synthetic_objects_root):
    from mmdet3d.registry import DATASETS
    root = osp.join(synthetic_objects_root, 'modelnet40_ply_hdf5_2048')
    pipe = [dict(type='LoadObjectPoints', num_points=128), dict(type='PackObjectInputs', keys=['points'])]
    ds = DATASETS.build(dict(type='SplitConcatDataset', splits=('train', 'test'), datasets=[
        dict(type='ModelNet40Dataset', data_root=root, split='train', pipeline=pipe, test_mode=True),
        dict(type='ModelNet40Dataset', data_root=root, split='test', pipeline=pipe, test_mode=True)]))
    n_train = len(ds.datasets[0])
    assert len(ds) == n_train + len(ds.datasets[1])
    first, last = ds[0], ds[len(ds) - 1]
    assert first['data_samples'].split == 'train' and last['data_samples'].split == 'test'
    assert first['inputs']['points'].shape == (128, 3)
    with pytest.raises(AssertionError):
        DATASETS.build(dict(type='SplitConcatDataset', splits=('train', ), datasets=ds.datasets))


def test_synthetic_pretraining_pipeline_from_config(synthetic_objects_root):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet3d.registry import DATASETS
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(osp.join(ROOT, 'configs/crosspoint/crosspoint_dgcnn_1xb16-10e_synthetic-objects.py'))
    cfg.train_dataloader.dataset.data_root = synthetic_objects_root
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    np.random.seed(0)
    item = ds[0]
    pts, img = item['inputs']['points'], item['inputs']['img']
    assert pts.shape == (2, 256, 3) and img.shape == (3, 64, 64) and img.dtype == torch.uint8
    meta = item['data_samples'].metainfo
    assert len(meta['point_views']) == 2 and 'flip' in meta and 'color_jitter' in meta
    assert int(item['data_samples'].gt_label) == -1
