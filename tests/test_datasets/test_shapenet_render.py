"""ShapeNetRenderDataset and the object loading transforms (LoadObjectPoints, LoadRenderedImage)."""
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmdet3d.registry import DATASETS, TRANSFORMS

from mmxmodal.datasets import ShapeNetRenderDataset
from mmxmodal_bench.synthetic.objects import CLASS_SYNSETS, write_ply
from mmxmodal.datasets.transforms import LoadObjectPoints, LoadRenderedImage

from .conftest import SYNTH_OBJECTS_KW


def _copy_root(src, dst):
    """Copy the ShapeNetRender part of the session root (the session root itself must stay untouched)."""
    for sub in ('ShapeNet', 'ShapeNetRendering'):
        shutil.copytree(osp.join(src, sub), osp.join(dst, sub))
    return str(dst)


def _first(root):
    syn = sorted(os.listdir(osp.join(root, 'ShapeNet')))[0]
    obj = sorted(os.listdir(osp.join(root, 'ShapeNet', syn)))[0][:-4]
    return syn, obj


def test_dataset_lists_objects(synthetic_objects_root):
    ds = DATASETS.build(dict(type='ShapeNetRenderDataset', data_root=synthetic_objects_root))
    assert isinstance(ds, ShapeNetRenderDataset)
    assert len(ds) == SYNTH_OBJECTS_KW['num_objects']
    syn_sorted = sorted(CLASS_SYNSETS.values())
    assert ds.metainfo['synsets'] == tuple(syn_sorted)
    names = {v: k for k, v in CLASS_SYNSETS.items()}
    assert ds.metainfo['classes'] == tuple({'monitor': 'display'}.get(names[s], names[s]) for s in syn_sorted)
    info = ds.get_data_info(0)
    assert set(info) >= {'sample_idx', 'pts_path', 'img_paths', 'gt_label', 'synset', 'object_id'}
    assert info['sample_idx'] == 0 and info['gt_label'] == -1
    assert info['pts_path'] == osp.join(synthetic_objects_root, 'ShapeNet', info['synset'], info['object_id'] + '.ply')
    assert [osp.basename(p) for p in info['img_paths']] == [f'{k:02d}.png' for k in range(4)]
    assert all(osp.isfile(p) for p in info['img_paths'])
    assert [ds.get_data_info(i)['sample_idx'] for i in range(len(ds))] == list(range(len(ds)))
    # labelled variant and synset filter
    ds2 = ShapeNetRenderDataset(synthetic_objects_root, synsets=['03001627', '04379243'], use_synset_label=True)
    assert ds2.metainfo['classes'] == ('chair', 'table')
    assert sorted({ds2.get_data_info(i)['gt_label'] for i in range(len(ds2))}) == [0, 1]


def test_dataset_pipeline(synthetic_objects_root):
    pipeline = [dict(type='LoadObjectPoints', use_normals=True), dict(type='LoadRenderedImage', choice='first'),
                dict(type='PackObjectInputs', keys=('points', 'img'))]
    ds = ShapeNetRenderDataset(synthetic_objects_root, pipeline=pipeline)
    for i in (0, len(ds) - 1):
        out = ds[i]
        pts, img = out['inputs']['points'], out['inputs']['img']
        assert tuple(pts.shape) == (2048, 6) and tuple(img.shape) == (3, 64, 64)
        ds_sample = out['data_samples']
        assert ds_sample.metainfo['img_path'] == ds.get_data_info(i)['img_paths'][0]
        assert int(ds_sample.gt_label) == -1
    # raw transforms: contract dtypes and the three choices
    info = ds.get_data_info(1)
    res = LoadObjectPoints()(dict(info))
    assert res['points'].dtype == np.float32 and res['points'].shape == (2048, 3)
    np.testing.assert_allclose(np.linalg.norm(LoadObjectPoints(use_normals=True)(dict(info))['points'][:, 3:],
                                              axis=1), 1, atol=1e-4)
    res = LoadRenderedImage(choice='first')(dict(info))
    assert res['img'].dtype == np.uint8 and res['img'].shape == (64, 64, 3) and res['img_shape'] == (64, 64)
    ref = cv2.imread(info['img_paths'][0])[..., ::-1]
    np.testing.assert_array_equal(res['img'], ref)  # RGB order
    np.random.seed(0)
    picked = {LoadRenderedImage(choice='random')(dict(info))['img_path'] for _ in range(20)}
    assert len(picked) > 1 and picked <= set(info['img_paths'])
    res = LoadRenderedImage(choice='all')(dict(info))
    assert len(res['img']) == 4 and res['img_path'] == info['img_paths']
    packed = TRANSFORMS.build(dict(type='PackObjectInputs'))(res)
    assert tuple(packed['inputs']['img'].shape) == (4, 3, 64, 64)


def test_dataset_errors(synthetic_objects_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        ShapeNetRenderDataset(str(tmp_path / 'nowhere'))
    empty = tmp_path / 'empty'
    (empty / 'ShapeNet').mkdir(parents=True)
    (empty / 'ShapeNetRendering').mkdir()
    with pytest.raises(FileNotFoundError, match='no synset folders'):
        ShapeNetRenderDataset(str(empty))
    with pytest.raises(FileNotFoundError, match='ShapeNetRendering'):
        (tmp_path / 'half' / 'ShapeNet').mkdir(parents=True)
        ShapeNetRenderDataset(str(tmp_path / 'half'))

    root = _copy_root(synthetic_objects_root, tmp_path / 'copy')
    syn, obj = _first(root)
    n = len(ShapeNetRenderDataset(root))
    # a listed view is missing -> error naming renderings.txt and the file
    os.remove(osp.join(root, 'ShapeNetRendering', syn, obj, 'rendering', '02.png'))
    with pytest.raises(FileNotFoundError, match=r'renderings\.txt.*02\.png'):
        ShapeNetRenderDataset(root)
    # no rendering folder -> error naming it, or skipped with a warning
    shutil.rmtree(osp.join(root, 'ShapeNetRendering', syn, obj))
    with pytest.raises(FileNotFoundError, match=osp.join(syn, obj, 'rendering')):
        ShapeNetRenderDataset(root)
    with pytest.warns(UserWarning, match=obj):
        ds = ShapeNetRenderDataset(root, skip_missing=True)
    assert len(ds) == n - 1 and obj not in {ds.get_data_info(i)['object_id'] for i in range(len(ds))}


def test_load_object_points_formats(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(100, 3)).astype(np.float32)
    nrm = rng.normal(size=(100, 3)).astype(np.float32)
    full = np.concatenate([pts, nrm], 1)
    write_ply(str(tmp_path / 'b.ply'), pts, nrm)
    write_ply(str(tmp_path / 'a.ply'), pts, nrm, ascii=True)
    np.save(tmp_path / 'c.npy', full)
    np.savetxt(tmp_path / 'd.txt', full, fmt='%.6f', delimiter=',')  # modelnet40_normal_resampled style
    np.savetxt(tmp_path / 'e.txt', pts, fmt='%.6f')
    load = LoadObjectPoints(use_normals=True)
    for name in ('b.ply', 'a.ply', 'c.npy', 'd.txt'):
        out = load(dict(pts_path=str(tmp_path / name)))['points']
        assert out.dtype == np.float32 and out.shape == (100, 6), name
        np.testing.assert_allclose(out, full, atol=1e-5, err_msg=name)
    out = LoadObjectPoints(num_points=10)(dict(pts_path=str(tmp_path / 'e.txt')))['points']
    np.testing.assert_allclose(out, pts[:10], atol=1e-5)
    # pass-through of in-memory points (h5 datasets)
    out = LoadObjectPoints()(dict(points=full.astype(np.float64), sample_idx=3))['points']
    assert out.dtype == np.float32 and out.shape == (100, 3)
    # a PLY written by plyfile (as real ShapeNet PLYs are), with an extra face element after the vertices
    from plyfile import PlyData, PlyElement
    v = np.array([tuple(r) for r in pts], dtype=[('x', 'f4'), ('y', 'f4'), ('z', 'f4')])
    f = np.array([([0, 1, 2],)], dtype=[('vertex_indices', 'i4', (3,))])
    PlyData([PlyElement.describe(v, 'vertex'), PlyElement.describe(f, 'face')]).write(str(tmp_path / 'p.ply'))
    np.testing.assert_allclose(LoadObjectPoints()(dict(pts_path=str(tmp_path / 'p.ply')))['points'], pts)


def test_load_object_points_errors(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(100, 3)).astype(np.float32)
    load = LoadObjectPoints()
    missing = str(tmp_path / 'missing.ply')
    with pytest.raises(FileNotFoundError, match='missing.ply'):
        load(dict(pts_path=missing))
    write_ply(str(tmp_path / 'ok.ply'), pts)
    data = open(tmp_path / 'ok.ply', 'rb').read()
    open(tmp_path / 'trunc.ply', 'wb').write(data[:-50])
    with pytest.raises(ValueError, match=r'trunc\.ply.*truncated'):
        load(dict(pts_path=str(tmp_path / 'trunc.ply')))
    write_ply(str(tmp_path / 'trunc_ascii.ply'), pts, ascii=True)
    text = open(tmp_path / 'trunc_ascii.ply').read().splitlines()
    open(tmp_path / 'trunc_ascii.ply', 'w').write('\n'.join(text[:-10]) + '\n')
    with pytest.raises(ValueError, match=r'trunc_ascii\.ply.*truncated'):
        load(dict(pts_path=str(tmp_path / 'trunc_ascii.ply')))
    bad = pts.copy()
    bad[5, 1] = np.nan
    write_ply(str(tmp_path / 'nan.ply'), bad)
    with pytest.raises(ValueError, match=r'nan\.ply.*NaN'):
        load(dict(pts_path=str(tmp_path / 'nan.ply')))
    np.save(tmp_path / 'x.npy', pts)
    open(tmp_path / 'trunc.npy', 'wb').write(open(tmp_path / 'x.npy', 'rb').read()[:200])
    with pytest.raises(ValueError, match=r'trunc\.npy'):
        load(dict(pts_path=str(tmp_path / 'trunc.npy')))
    open(tmp_path / 'ragged.txt', 'w').write('1,2,3\n4,5\n')
    with pytest.raises(ValueError, match=r'ragged\.txt'):
        load(dict(pts_path=str(tmp_path / 'ragged.txt')))
    open(tmp_path / 'garbage.ply', 'wb').write(b'not a ply at all')
    with pytest.raises(ValueError, match=r'garbage\.ply'):
        load(dict(pts_path=str(tmp_path / 'garbage.ply')))
    with pytest.raises(ValueError, match=r'ok\.ply.*use_normals'):
        LoadObjectPoints(use_normals=True)(dict(pts_path=str(tmp_path / 'ok.ply')))
    with pytest.raises(ValueError, match='sample 7.*NaN'):
        load(dict(points=bad, sample_idx=7))
    with pytest.raises(KeyError):
        load(dict(sample_idx=0))


def test_load_rendered_image_errors_and_alpha(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'nope\.png'):
        LoadRenderedImage(choice='first')(dict(img_paths=[str(tmp_path / 'nope.png')]))
    open(tmp_path / 'bad.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + b'\0' * 20)
    with pytest.raises(ValueError, match=r'bad\.png'):
        LoadRenderedImage(choice='first')(dict(img_paths=[str(tmp_path / 'bad.png')]))
    with pytest.raises(ValueError, match='no img_paths'):
        LoadRenderedImage()(dict(img_paths=[], sample_idx=0))
    with pytest.raises(ValueError, match='choice'):
        LoadRenderedImage(choice='middle')
    # RGBA (real ShapeNetRendering): transparent pixels composited onto the background colour
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4, :, :3] = (10, 20, 200)  # BGR on disk -> RGB (200, 20, 10)
    rgba[:4, :, 3] = 255
    cv2.imwrite(str(tmp_path / 'a.png'), rgba)
    img = LoadRenderedImage(choice='first')(dict(img_paths=[str(tmp_path / 'a.png')]))['img']
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, 0], (200, 20, 10))
    np.testing.assert_array_equal(img[7, 7], (255, 255, 255))
    img = LoadRenderedImage(choice='first', alpha_background=None)(dict(img_paths=[str(tmp_path / 'a.png')]))['img']
    np.testing.assert_array_equal(img[7, 7], (0, 0, 0))
