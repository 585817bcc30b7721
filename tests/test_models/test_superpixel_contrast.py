"""SLidR-style superpixel-pooled contrast: SLIC maps (cached), carried through the image augmentation, and the loss
against a hand computation."""
import os
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def _image(h=48, w=64):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (200, 30, 30)
    img[:, w // 2:] = (30, 30, 200)
    img[h // 2:, :, 1] = 180
    return img


def test_slic_superpixels_and_cache(tmp_path):
    import cv2

    from mmxmodal.datasets.transforms import LoadSuperpixels, slic_superpixels
    img = _image()
    seg = slic_superpixels(img, n_segments=4, compactness=10)
    assert seg.shape == img.shape[:2] and seg.dtype == np.int32
    assert seg.min() == 0 and set(np.unique(seg)) == set(range(seg.max() + 1))
    # the four colour quadrants are never mixed inside one superpixel
    quad = (np.arange(48)[:, None] >= 24) * 2 + (np.arange(64)[None] >= 32)
    for k in np.unique(seg):
        assert len(np.unique(quad[seg == k])) == 1
    path = str(tmp_path / 'cam.png')
    cv2.imwrite(path, img)
    t = LoadSuperpixels(n_segments=4, cache_dir=str(tmp_path / 'cache'))
    out = t(dict(img=[img], img_path=[path]))
    assert (out['superpixels'][0] == seg).all()
    cached = os.listdir(tmp_path / 'cache')
    assert len(cached) == 1 and cached[0].endswith('.npy')
    # the cache is read back (a marked file is returned as is) and keyed by the SLIC arguments
    marked = seg.copy()
    marked[0, 0] = 99
    np.save(osp.join(tmp_path / 'cache', cached[0]), marked)
    assert t(dict(img=[img], img_path=[path]))['superpixels'][0][0, 0] == 99
    LoadSuperpixels(n_segments=8, cache_dir=str(tmp_path / 'cache'))(dict(img=[img], img_path=[path]))
    assert len(os.listdir(tmp_path / 'cache')) == 2
    with pytest.raises(ValueError, match='n_segments'):
        LoadSuperpixels(n_segments=0)
    with pytest.raises(KeyError, match='file names'):
        t(dict(img=[img, img], img_path=[path]))


def test_image_augmentation_carries_the_maps():
    """Resize / crop / flip: every augmented pixel holds the id of the source pixel under its centre (by the
    image's own augmentation matrix, the one the projections use), padding is -1."""
    from mmxmodal.datasets.transforms import MultiViewImageAug
    h, w = 30, 40
    ids = np.arange(h * w, dtype=np.int32).reshape(h, w)
    img = np.zeros((h, w, 3), np.uint8)
    eye = np.eye(4)
    for seed in range(5):
        np.random.seed(seed)
        aug = MultiViewImageAug(final_shape=(24, 36), scale_range=(1.0, 1.4), crop_mode='random', flip_ratio=0.5,
                                pad_size_divisor=16)
        out = aug(dict(img=[img.copy()], superpixels=[ids.copy()], cam2img=[np.eye(3)], lidar2cam=[eye]))
        sp = out['superpixels']
        assert sp.shape == (1, ) + out['img_shape'] and sp.dtype == np.int32
        vh, vw = out['valid_shape'][0]
        inv = np.linalg.inv(out['img_aug_mat'][0])
        v, u = np.mgrid[:vh, :vw] + 0.5
        src = inv @ np.stack([u.ravel(), v.ravel(), np.ones(u.size), np.ones(u.size)])
        su = np.clip(np.floor(src[0] + 1e-9).astype(int), 0, w - 1)
        sv = np.clip(np.floor(src[1] + 1e-9).astype(int), 0, h - 1)
        assert (sp[0, :vh, :vw].ravel() == ids[sv, su]).all(), seed
        assert (sp[0, vh:] == -1).all() and (sp[0, :, vw:] == -1).all()


def _fake_model(loss_cfg):
    from mmdet3d.registry import MODELS

    import mmxmodal  # noqa: F401
    from mmxmodal.models.algorithms.simipu import SimIPU
    fake = SimpleNamespace(img_proj=torch.nn.Identity(), inter_point_proj=torch.nn.Identity(),
                           loss_superpixel=MODELS.build(loss_cfg))
    return lambda *a: SimIPU.superpixel_contrast(fake, *a)


def test_superpixel_contrast_equals_hand_computation():
    from mmxmodal.models.algorithms.simipu import ViewPoints
    from mmxmodal.models.losses.info_nce import info_nce
    torch.manual_seed(0)
    H, W, D = 4, 6, 5
    # one sample, one camera; superpixels: 0 = left 3 columns, 1 = right 3 columns of the top rows, 2 = bottom right
    sp = np.zeros((1, H, W), np.int32)
    sp[0, :, 3:] = 1
    sp[0, 2:, 3:] = 2
    sp[0, 3, 0] = -1  # padding
    feat = torch.randn(1, D, H, W)  # stride 1: cell centres sample the cells exactly
    pts = torch.randn(5, D)
    valid = torch.tensor([True, True, True, True, False])
    # points 0, 1 -> superpixel 0; point 2 -> superpixel 1; point 3 -> padding (dropped); point 4 invalid
    uv = np.array([[0.5, 0.5], [1.2, 2.7], [4.5, 0.2], [0.5, 3.5], [5.5, 3.5]], np.float32)
    meta = dict(superpixels=sp, proj_point_idx=np.arange(5), proj_cam_idx=np.zeros(5, np.int64), proj_uv=uv)
    ds = SimpleNamespace(metainfo=meta)
    view = ViewPoints([valid], [torch.arange(5)], lambda idx: pts[torch.cat(idx)], pts.sum() * 0)
    fn = _fake_model(dict(type='SampledInfoNCELoss', temperature=0.1, max_pairs=None, gather_distributed=False))
    loss, acc, n = fn(view, [feat], [ds], 1, (H, W))
    # by hand: normalised pixel / point embeddings averaged per superpixel; superpixel 2 has no point
    e_pix = F.normalize(feat[0].permute(1, 2, 0).reshape(-1, D), dim=1)
    flat = torch.from_numpy(sp[0].reshape(-1))
    pix = torch.stack([e_pix[flat == k].mean(0) for k in (0, 1)])
    e_pt = F.normalize(pts, dim=1)
    pt = torch.stack([e_pt[[0, 1]].mean(0), e_pt[2]])
    ref = info_nce(pt, pix, temperature=0.1)
    assert n == 2
    assert torch.allclose(loss, ref, atol=1e-6), (loss, ref)
    # gradient reaches the image features and the points
    feat.requires_grad_(True)
    pts.requires_grad_(True)
    loss, _, _ = fn(view, [feat], [ds], 1, (H, W))
    loss.backward()
    assert feat.grad.abs().sum() > 0 and pts.grad[:3].abs().sum() > 0 and pts.grad[3:].abs().sum() == 0


def test_superpixel_contrast_empty_and_missing_maps():
    from mmxmodal.models.algorithms.simipu import ViewPoints
    pts = torch.randn(2, 3, requires_grad=True)
    feat = torch.randn(1, 3, 4, 4, requires_grad=True)
    meta = dict(superpixels=np.zeros((1, 4, 4), np.int32), proj_point_idx=np.zeros(0, np.int64),
                proj_cam_idx=np.zeros(0, np.int64), proj_uv=np.zeros((0, 2), np.float32))
    view = ViewPoints([torch.ones(2, dtype=torch.bool)], [torch.arange(2)], lambda idx: pts[torch.cat(idx)],
                       pts.sum() * 0)
    fn = _fake_model(dict(type='SampledInfoNCELoss', max_pairs=None, gather_distributed=False))
    loss, acc, n = fn(view, [feat], [SimpleNamespace(metainfo=meta)], 1, (4, 4))
    assert n == 0 and float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()
    with pytest.raises(KeyError, match='LoadSuperpixels'):
        fn(view, [feat], [SimpleNamespace(metainfo={})], 1, (4, 4))
