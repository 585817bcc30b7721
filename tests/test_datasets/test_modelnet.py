"""ModelNet40Dataset and ScanObjectNNDataset on the h5 layouts (generated, plus hand-made bad inputs)."""
import os.path as osp
import shutil

import h5py
import numpy as np
import pytest
from mmdet3d.registry import DATASETS

from mmxmodal.datasets import ModelNet40Dataset, ScanObjectNNDataset
from mmxmodal.datasets.modelnet import SCANOBJECTNN_CLASSES
from mmxmodal_bench.synthetic.objects import OBJECT_CLASSES

from .conftest import SYNTH_OBJECTS_KW

N_CLS = len(OBJECT_CLASSES)


def _mn(root):
    return osp.join(root, 'modelnet40_ply_hdf5_2048')


def test_modelnet40_dataset(synthetic_objects_root):
    mn = _mn(synthetic_objects_root)
    train = DATASETS.build(dict(type='ModelNet40Dataset', data_root=mn, split='train'))
    test = ModelNet40Dataset(mn, split='test', with_normals=True)
    assert len(train) == SYNTH_OBJECTS_KW['cls_train_per_class'] * N_CLS
    assert len(test) == SYNTH_OBJECTS_KW['cls_test_per_class'] * N_CLS
    assert train.metainfo['classes'] == OBJECT_CLASSES
    info = train.get_data_info(5)
    assert set(info) >= {'sample_idx', 'points', 'gt_label', 'img_paths'}
    assert info['sample_idx'] == 5 and info['gt_label'] == 5 % N_CLS and info['img_paths'] == []
    assert info['points'].dtype == np.float32 and info['points'].shape == (2048, 3)
    p6 = test.get_data_info(0)['points']
    assert p6.shape == (2048, 6)
    np.testing.assert_allclose(np.linalg.norm(p6[:, 3:], axis=1), 1, atol=1e-4)
    with h5py.File(osp.join(mn, 'ply_data_test0.h5'), 'r') as f:
        np.testing.assert_array_equal(p6[:, :3], f['data'][0])
        np.testing.assert_array_equal(p6[:, 3:], f['normal'][0])


def test_modelnet40_views_and_pipeline(synthetic_objects_root):
    mn = _mn(synthetic_objects_root)
    pipeline = [dict(type='LoadObjectPoints', use_normals=True), dict(type='LoadRenderedImage', choice='random'),
                dict(type='PackObjectInputs')]
    ds = ModelNet40Dataset(mn, split='train', with_normals=True, views_dir='../modelnet40_views', pipeline=pipeline)
    info = ds.get_data_info(7)
    assert [osp.basename(p) for p in info['img_paths']] == [f'{k:02d}.png' for k in range(4)]
    assert osp.dirname(info['img_paths'][0]) == osp.join(synthetic_objects_root, 'modelnet40_views', 'train', '00007')
    for i in range(len(ds)):
        out = ds[i]
        assert tuple(out['inputs']['points'].shape) == (2048, 6)
        assert tuple(out['inputs']['img'].shape) == (3, 64, 64)
        assert int(out['data_samples'].gt_label) == i % N_CLS
    # few-shot subset: one sample per class, deterministic
    shots = ModelNet40Dataset(mn, split='train', num_shots=1)
    labels = [shots.get_data_info(i)['gt_label'] for i in range(len(shots))]
    assert sorted(labels) == list(range(N_CLS))
    again = ModelNet40Dataset(mn, split='train', num_shots=1)
    assert [again.get_data_info(i)['sample_idx'] for i in range(len(again))] == \
        [shots.get_data_info(i)['sample_idx'] for i in range(len(shots))]
    with pytest.raises(FileNotFoundError, match='no_views'):
        ModelNet40Dataset(mn, split='train', views_dir='../no_views')


def _write(path, **arrays):
    with h5py.File(path, 'w') as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)


def test_modelnet40_layout_fallbacks_and_errors(synthetic_objects_root, tmp_path):
    root = tmp_path / 'mn'
    shutil.copytree(_mn(synthetic_objects_root), root)
    # no train_files.txt: the h5 files are globbed
    (root / 'train_files.txt').unlink()
    assert len(ModelNet40Dataset(str(root), split='train')) == SYNTH_OBJECTS_KW['cls_train_per_class'] * N_CLS
    # real ModelNet40 names when shape_names.txt is absent, but labels must fit the classes
    (root / 'shape_names.txt').unlink()
    assert len(ModelNet40Dataset(str(root), split='train').metainfo['classes']) == 40
    with pytest.raises(ValueError, match='split'):
        ModelNet40Dataset(str(root), split='val')
    with pytest.raises(FileNotFoundError, match='nowhere'):
        ModelNet40Dataset(str(tmp_path / 'nowhere'))

    bad = tmp_path / 'bad'
    bad.mkdir()
    with pytest.raises(FileNotFoundError, match='no train h5 files'):
        ModelNet40Dataset(str(bad))
    (bad / 'train_files.txt').write_text('data/modelnet40_ply_hdf5_2048/ply_data_train0.h5\n')
    with pytest.raises(FileNotFoundError, match=r'ply_data_train0\.h5'):
        ModelNet40Dataset(str(bad))
    pts = np.zeros((4, 16, 3), np.float32)
    _write(bad / 'ply_data_train0.h5', data=pts, label=np.zeros((4, 1), np.uint8))
    assert len(ModelNet40Dataset(str(bad))) == 4
    with pytest.raises(KeyError, match=r'ply_data_train0\.h5.*normal'):
        ModelNet40Dataset(str(bad), with_normals=True)
    _write(bad / 'ply_data_train0.h5', data=pts, label=np.full((4, 1), 99, np.uint8))
    with pytest.raises(ValueError, match=r'ply_data_train0\.h5: label out of range'):
        ModelNet40Dataset(str(bad))
    _write(bad / 'ply_data_train0.h5', data=pts, label=np.zeros((3, 1), np.uint8))
    with pytest.raises(ValueError, match=r'ply_data_train0\.h5.*3 rows'):
        ModelNet40Dataset(str(bad))
    _write(bad / 'ply_data_train0.h5', points=pts)
    with pytest.raises(KeyError, match=r'ply_data_train0\.h5.*missing h5 datasets'):
        ModelNet40Dataset(str(bad))
    nan = pts.copy()
    nan[0, 0, 0] = np.nan
    _write(bad / 'ply_data_train0.h5', data=nan, label=np.zeros((4, 1), np.uint8))
    with pytest.raises(ValueError, match=r'ply_data_train0\.h5.*NaN'):
        ModelNet40Dataset(str(bad))
    (bad / 'ply_data_train0.h5').write_bytes(b'\x89HDF\r\n\x1a\n' + b'\0' * 10)
    with pytest.raises(OSError, match=r'ply_data_train0\.h5'):
        ModelNet40Dataset(str(bad))


def test_scanobjectnn_dataset(synthetic_objects_root, tmp_path):
    root = osp.join(synthetic_objects_root, 'ScanObjectNN')
    pipeline = [dict(type='LoadObjectPoints'), dict(type='PackObjectInputs', keys=('points', ))]
    train = DATASETS.build(dict(type='ScanObjectNNDataset', data_root=root, split='train', pipeline=pipeline))
    test = ScanObjectNNDataset(root, split='test')
    assert len(train) == SYNTH_OBJECTS_KW['cls_train_per_class'] * N_CLS
    assert len(test) == SYNTH_OBJECTS_KW['cls_test_per_class'] * N_CLS
    assert train.metainfo['classes'] == OBJECT_CLASSES
    out = train[3]
    assert tuple(out['inputs']['points'].shape) == (2048, 3) and int(out['data_samples'].gt_label) == 3
    # partial scans of the same instances as the ModelNet40-layout rows: close to the full surface, but covering
    # only the side seen from one viewpoint
    from scipy.spatial import cKDTree
    full = ModelNet40Dataset(_mn(synthetic_objects_root), split='train')
    near, cover = [], []
    for i in range(len(train)):
        scan, pts = train.get_data_info(i)['points'], full.get_data_info(i)['points']
        near.append(np.median(cKDTree(pts).query(scan)[0]))
        cover.append(np.mean(cKDTree(scan).query(pts)[0] < 0.05))
    assert np.max(near) < 0.06  # ~ the spacing of 2048 surface points
    assert np.mean(cover) < 0.85
    with pytest.raises(KeyError, match=r'training_objectdataset\.h5.*with_normals'):
        ScanObjectNNDataset(root, split='train', with_normals=True)
    # real layout without shape_names.txt: ScanObjectNN's own 15 classes
    real = tmp_path / 'h5_files' / 'main_split_nobg'
    real.mkdir(parents=True)
    _write(real / 'test_objectdataset.h5', data=np.zeros((2, 32, 3), np.float32), label=np.array([0, 14]))
    ds = ScanObjectNNDataset(str(tmp_path / 'h5_files'), split='test', split_dir='main_split_nobg')
    assert ds.metainfo['classes'] == SCANOBJECTNN_CLASSES and len(ds) == 2
    with pytest.raises(FileNotFoundError, match=r'training_objectdataset\.h5'):
        ScanObjectNNDataset(str(tmp_path / 'h5_files'), split='train', split_dir='main_split_nobg')
