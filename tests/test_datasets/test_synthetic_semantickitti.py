"""Synthetic SemanticKITTI root: labels from the ray hits, stock converter and dataset, camera infos, bad input."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest

import mmxmodal  # noqa: F401
from mmxmodal.datasets.converters import semantickitti as skc
from mmxmodal_bench.synthetic import semantickitti as sk
from mmxmodal_bench.synthetic.scene import SEMANTIC_CLASSES, generate_street_scene, kitti_rig

#: small root: 2 train sequences + val + test, 2 frames each (a few seconds)
KW = dict(sequences=dict(train=[0, 1], val=[8], test=[11]), frames_per_sequence=2, seed=0, image_size=(310, 94),
          num_azimuths=256, keep_gt=True)



@pytest.fixture(autouse=True, scope='module')
def _mmdet3d_scope():
    from mmdet3d.utils import register_all_modules
    register_all_modules()

@pytest.fixture(scope='module')
def root(tmp_path_factory):
    out = sk.generate_semantickitti_root(str(tmp_path_factory.mktemp('semantickitti')), **KW)
    out['infos'] = skc.create_semantickitti_infos(out['root'])
    return out


@pytest.fixture
def private_root(root, tmp_path):
    """A copy of the root that a test may corrupt."""
    dst = str(tmp_path / 'sk')
    shutil.copytree(root['root'], dst, ignore=shutil.ignore_patterns('*.pkl'))
    return dst


def _scan(root, key):
    seq, fid = key.split('/')
    base = osp.join(root, 'sequences', seq)
    pts = np.fromfile(osp.join(base, 'velodyne', f'{fid}.bin'), '<f4').reshape(-1, 4)
    lab = np.fromfile(osp.join(base, 'labels', f'{fid}.label'), '<u4')
    return pts, lab


def test_layout(root):
    r = root['root']
    assert root['frames']['test'] == ['11/000000', '11/000001']
    for split, keys in root['frames'].items():
        for key in keys:
            pts, lab = _scan(r, key)
            assert len(pts) == len(lab) and len(pts) > 10000
            assert set(np.unique(lab & 0xFFFF).tolist()) <= set(skc.RAW_CLASSES)
            assert 0 <= pts[:, 3].min() and pts[:, 3].max() <= 1
            seq = key.split('/')[0]
            assert osp.isfile(osp.join(r, 'sequences', seq, 'image_2', key.split('/')[1] + '.png'))
    for seq in ('00', '01', '08', '11'):
        calib = skc.read_calib(osp.join(r, 'sequences', seq, 'calib.txt'))
        assert set(calib) == {'P0', 'P1', 'P2', 'P3', 'Tr'}
        for name in ('poses.txt', 'times.txt'):
            with open(osp.join(r, 'sequences', seq, name)) as f:
                assert len(f.read().splitlines()) == 2
        with open(osp.join(r, 'sequences', seq, 'poses.txt')) as f:
            first, second = (np.array(line.split(), float).reshape(3, 4) for line in f.read().splitlines())
        assert np.allclose(first, np.eye(4)[:3], atol=1e-9)  # frame 0 is the reference
        # the ego drives straight ahead: camera 0 moves along its own z axis (forward), 0-11 m/s
        assert np.allclose(second[:, :3], np.eye(3), atol=1e-9) and np.allclose(second[:2, 3], 0, atol=1e-6)
        assert -1e-6 <= second[2, 3] <= 11.5
    skc.validate_semantickitti_root(r)


def test_labels_come_from_the_ray_hits(root):
    """Ground points are ground classes near z = -1.73 m (sensor height), object points carry their object's class,
    things carry their instance id, moving objects get moving ids, and the learning classes are not trivial."""
    ground = {skc.LEARNING_MAP[i] for i in (40, 44, 48, 60, 72)}
    seen = set()
    for key, gt in root['gt'].items():
        pts, lab = _scan(root['root'], key)
        raw, inst = lab & 0xFFFF, lab >> 16
        is_ground = gt['instance_ids'] == 1
        learn = np.array([skc.LEARNING_MAP[int(v)] for v in raw])
        assert np.isin(learn[is_ground], list(ground)).all()
        assert not np.isin(learn[~is_ground], list(ground)).any()
        assert np.abs(pts[is_ground, 2] + 1.73).max() < 0.1
        cls = np.array(SEMANTIC_CLASSES)[gt['semantic']]
        things = np.isin(cls, ['car', 'truck', 'bus', 'person', 'bicyclist', 'bicycle'])
        assert (inst[things] == gt['instance_ids'][things]).all() and (inst[~things] == 0).all()
        assert np.isin(raw[cls == 'car'], [10, 252]).all() and np.isin(raw[cls == 'building'], [50]).all()
        seen |= set(learn.tolist())
    names = {skc.LEARNING_CLASSES[i] for i in seen if i < 19}
    assert {'car', 'truck', 'bus', 'person', 'bicyclist', 'road', 'parking', 'sidewalk', 'building', 'pole',
            'vegetation', 'trunck'} <= names


def test_semantic_flag_and_extras_keep_existing_outputs():
    """scan_lidar(semantic=True) returns the same points; extras only add objects after the others."""
    lidar, _, _ = kitti_rig((310, 94), 256)
    a = generate_street_scene(np.random.default_rng(5), -0.05, 1.0)
    b = generate_street_scene(np.random.default_rng(5), -0.05, 1.0, extras=True)
    assert len(b.objects) > len(a.objects)
    for oa, ob in zip(a.objects, b.objects):
        assert oa.kind == ob.kind and np.array_equal(oa.center, ob.center)
    f0 = a.scan_lidar(lidar, 0.05, 0.0, np.random.default_rng(1))
    f1 = a.scan_lidar(lidar, 0.05, 0.0, np.random.default_rng(1), semantic=True)
    assert f0.semantic is None and f1.points.tobytes() == f0.points.tobytes()
    assert len(f1.semantic) == len(f1.points)


def test_learning_map_is_mmdet3d_labels_map():
    from mmengine.config import Config

    from mmxmodal.datasets.converters.mmdet3d_tools import mmdet3d_tools_dir
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet3d_tools_dir()), 'configs', '_base_', 'datasets',
                                   'semantickitti.py'))
    assert dict(cfg.labels_map) == skc.LEARNING_MAP
    assert tuple(cfg.class_names) == skc.LEARNING_CLASSES


def test_stock_converter_and_stock_dataset(root, tmp_path):
    """mmdet3d's own converter lists the generated frames (stock sequence lists); the stock SemanticKittiDataset with
    the stock pipeline of _base_/datasets/semantickitti.py iterates them, labels mapped to 0..19."""
    from mmengine.config import Config

    from mmdet3d.registry import DATASETS
    from mmdet3d.utils import register_all_modules
    from mmxmodal.datasets.converters.mmdet3d_tools import mmdet3d_tools_dir
    register_all_modules()
    stock = skc.stock_semantickitti_infos(root['root'], str(tmp_path))
    assert stock['listed']['train'] > 10000  # the stock lists hold the real frame counts ...
    assert stock['counts'] == dict(train=4, val=2, test=2)  # ... of which the generated frames are kept
    import mmengine
    ours = mmengine.load(root['infos']['pkls']['train'])['data_list']
    theirs = mmengine.load(stock['pkls']['train'])['data_list']
    for a, b in zip(ours, theirs):
        for k, v in b.items():
            if k == 'lidar_points':
                assert a[k]['lidar_path'] == v['lidar_path']
            else:
                assert a[k] == v, k
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet3d_tools_dir()), 'configs', '_base_', 'datasets',
                                   'semantickitti.py'))
    for split, pkl in (('train', stock['pkls']['train']), ('val', root['infos']['pkls']['val']),
                       ('test', root['infos']['pkls']['test'])):
        dcfg = (cfg.train_dataloader if split == 'train' else cfg.test_dataloader).dataset.copy()
        assert dcfg.type == 'SemanticKittiDataset'
        dcfg.update(data_root=root['root'], ann_file=pkl)
        ds = DATASETS.build(dcfg)
        assert len(ds) == 2 * len(KW['sequences'][split])
        for i in range(len(ds)):
            out = ds[i]
            mask = out['data_samples'].gt_pts_seg.pts_semantic_mask
            mask = np.asarray(mask)
            assert len(mask) == len(out['inputs']['points']) > 10000
            assert mask.min() >= 0 and mask.max() <= 19 and len(np.unique(mask)) >= 8


def test_paired_scene_dataset_projects_points_onto_their_surfaces(root):
    """SemanticKITTI infos with CAM2 load in PairedSceneDataset; LiDAR points projected with its lidar2img land on
    pixels of their own instance (ground on ground, objects on the same object)."""
    from mmdet3d.registry import DATASETS
    ds = DATASETS.build(dict(type='PairedSceneDataset', data_root=root['root'],
                             ann_file=root['infos']['pkls']['train'], cam_names=['CAM2'],
                             data_prefix=dict(pts='', img=''), pipeline=[], test_mode=True))
    assert len(ds) == 4
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        key = info['token']
        gt = root['gt'][key]
        pts = np.fromfile(info['lidar_path'], '<f4').reshape(-1, 4)
        assert osp.isfile(info['images']['CAM2']['img_path'])
        assert key.split('/')[1] in osp.basename(info['images']['CAM2']['img_path'])
        P = info['lidar2img'][0]
        h = np.concatenate([pts[:, :3], np.ones((len(pts), 1))], 1) @ P.T
        H, W = gt['instance_mask'].shape
        with np.errstate(divide='ignore', invalid='ignore'):
            u, v = h[:, 0] / h[:, 2], h[:, 1] / h[:, 2]
        ok = (h[:, 2] > 1) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        pix = gt['instance_mask'][v[ok].astype(int), u[ok].astype(int)]
        inst = gt['instance_ids'][ok]
        assert ok.sum() > 1000
        assert (pix == inst).mean() > 0.9  # parallax and object motion account for the rest
        static = inst == 1
        assert (pix[static] == 1).mean() > 0.95


def test_same_seed_same_bytes(tmp_path):
    kw = dict(KW, sequences=dict(train=[0], val=[8], test=[11]), frames_per_sequence=1, keep_gt=False)
    a = sk.generate_semantickitti_root(str(tmp_path / 'a'), **kw)['root']
    b = sk.generate_semantickitti_root(str(tmp_path / 'b'), workers=2, **kw)['root']
    files = sorted(osp.relpath(osp.join(d, n), a) for d, _, ns in os.walk(a) for n in ns)
    assert len(files) == 3 * 6 + 1
    for rel in files:
        with open(osp.join(a, rel), 'rb') as f, open(osp.join(b, rel), 'rb') as g:
            assert f.read() == g.read(), rel


def test_cli(tmp_path):
    import subprocess
    import sys
    tool = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
                    'create_synthetic_data.py')
    out = str(tmp_path / 'cli')
    res = subprocess.run([sys.executable, tool, 'semantickitti', '--out-dir', out, '--train-seqs', '0',
                          '--frames-per-sequence', '1', '--num-azimuths', '128', '--image-size', '160x48'],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    for split in ('train', 'val', 'test'):
        assert osp.isfile(osp.join(out, f'semantickitti_infos_{split}.pkl'))
    assert skc.read_splits(out) == dict(train=[0], val=[8], test=[11])


def test_overlapping_splits_are_refused(tmp_path):
    with pytest.raises(ValueError, match='sequence 01'):
        sk.generate_semantickitti_root(str(tmp_path), sequences=dict(train=[0, 1], val=[1]), frames_per_sequence=1)


# ------------------------------------------------------------------------------------------------- bad input
def _corrupt(r, case):
    base = osp.join(r, 'sequences', '00')
    if case == 'label_length':
        path = osp.join(base, 'labels', '000001.label')
        lab = np.fromfile(path, '<u4')
        lab[:-7].tofile(path)
    elif case == 'unknown_id':
        path = osp.join(base, 'labels', '000001.label')
        lab = np.fromfile(path, '<u4')
        lab[5] = 123 | (lab[5] & 0xFFFF0000)
        lab.tofile(path)
    elif case == 'missing_image':
        path = osp.join(base, 'image_2', '000001.png')
        os.remove(path)
    else:
        path = osp.join(base, 'calib.txt')
        os.remove(path)
    return path


@pytest.mark.parametrize('case', ['label_length', 'unknown_id', 'missing_image', 'missing_calib'])
def test_bad_root_is_named_or_skipped_and_counted(private_root, case, tmp_path):
    path = _corrupt(private_root, case)
    with pytest.raises(skc.SemanticKittiRootError) as e:
        skc.validate_semantickitti_root(private_root)
    assert path in str(e.value)
    with pytest.raises(skc.SemanticKittiRootError) as e:
        skc.create_semantickitti_infos(private_root, str(tmp_path / 'raise'))
    assert path in str(e.value)
    res = skc.create_semantickitti_infos(private_root, str(tmp_path / 'skip'), on_error='skip')
    expected = 2 if case == 'missing_calib' else 1  # a sequence without calibration loses all its frames
    assert res['skipped']['train'] == expected and res['counts']['train'] == 4 - expected
    assert any(path in p for p in res['problems'])
    import mmengine
    infos = mmengine.load(res['pkls']['train'])
    assert len(infos['data_list']) == 4 - expected and infos['metainfo']['skipped_frames'] == expected


def _stock_pipeline():
    return [dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4),
            dict(type='LoadAnnotations3D', with_bbox_3d=False, with_label_3d=False, with_seg_3d=True,
                 seg_3d_dtype='np.int32', seg_offset=2 ** 16, dataset_type='semantickitti'),
            dict(type='CheckPointSegMask', raw_ids=list(skc.LEARNING_MAP)),
            dict(type='PointSegClassMapping'),
            dict(type='Pack3DDetInputs', keys=['points', 'pts_semantic_mask'])]


@pytest.mark.parametrize('case', ['label_length', 'unknown_id'])
def test_bad_label_at_load_time_is_named_or_skipped(root, private_root, case, tmp_path):
    """A .label changed after the infos were written: the stock loader would accept it (wrong length; an unknown id
    maps to class 0 'car'); CheckPointSegMask names the file, or the robust dataset skips and counts it."""
    from mmengine.config import Config

    from mmdet3d.registry import DATASETS
    from mmxmodal.datasets.converters.mmdet3d_tools import mmdet3d_tools_dir
    res = skc.create_semantickitti_infos(private_root, str(tmp_path), camera=False)
    path = _corrupt(private_root, case)
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet3d_tools_dir()), 'configs', '_base_', 'datasets',
                                   'semantickitti.py'))
    kw = dict(data_root=private_root, ann_file=res['pkls']['train'], pipeline=_stock_pipeline(),
              metainfo=cfg.metainfo.to_dict(), ignore_index=19)
    ds = DATASETS.build(dict(type='RobustSemanticKittiDataset', **kw))
    with pytest.raises(ValueError) as e:
        ds[1]
    assert path in str(e.value)
    ds = DATASETS.build(dict(type='RobustSemanticKittiDataset', on_error='skip', **kw))
    out = ds[1]  # refetched: another (good) sample, with the skip(s) attached (the refetch may hit it again)
    assert out['data_samples'].metainfo['skipped_before'] >= 1
    assert not out['data_samples'].metainfo['lidar_path'].endswith('00/velodyne/000001.bin')


def _paired_pipeline():
    return [dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4),
            dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=1),
            dict(type='MultiViewImageAug', final_shape=(96, 320), scale_range=(1.0, 1.0), crop_mode='center'),
            dict(type='ProjectPointsToCameras', min_depth=1.0),
            dict(type='PackPairedSceneInputs')]


def test_simipu_pipeline_loads_image_2_pairs(root):
    """The SimIPU-style paired pipeline (mmdet3d loading + MultiViewImageAug + ProjectPointsToCameras) runs on the
    SemanticKITTI infos: one image_2 per scan, and points project into it."""
    from mmdet3d.registry import DATASETS
    ds = DATASETS.build(dict(type='PairedSceneDataset', data_root=root['root'], ann_file=root['infos']['pkls']['val'],
                             cam_names=['CAM2'], data_prefix=dict(pts='', img=''), pipeline=_paired_pipeline()))
    out = ds[0]
    assert tuple(out['inputs']['img'].shape) == (1, 3, 96, 320)
    meta = out['data_samples'].metainfo
    assert meta['lidar_path'].endswith('08/velodyne/000000.bin')
    assert meta['img_path'].endswith('08/image_2/000000.png')
    assert len(meta['lidar2img']) == 1 and len(meta['proj_point_idx']) > 1000


def test_missing_image_at_load_time_is_named_or_skipped(root, private_root, tmp_path):
    from mmdet3d.registry import DATASETS
    res = skc.create_semantickitti_infos(private_root, str(tmp_path))
    path = _corrupt(private_root, 'missing_image')
    kw = dict(type='PairedSceneDataset', data_root=private_root, ann_file=res['pkls']['train'], cam_names=['CAM2'],
              data_prefix=dict(pts='', img=''), pipeline=_paired_pipeline())
    with pytest.raises(FileNotFoundError) as e:
        DATASETS.build(kw)[1]
    assert path in str(e.value)
    out = DATASETS.build(dict(kw, on_error='skip'))[1]
    assert out['data_samples'].metainfo['skipped_before'] >= 1


def test_create_data_tool_semantickitti(private_root, tmp_path):
    """tools/create_data.py semantickitti with explicit sequences (a real root has no splits.json)."""
    import subprocess
    import sys

    import mmengine
    tool = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools', 'create_data.py')
    os.remove(osp.join(private_root, 'splits.json'))
    res = subprocess.run([sys.executable, tool, 'semantickitti', '--root-path', private_root, '--out-dir',
                          str(tmp_path), '--train-seqs', '0,1', '--val-seqs', '8', '--test-seqs', '11'],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    test = mmengine.load(str(tmp_path / 'semantickitti_infos_test.pkl'))['data_list']
    train = mmengine.load(str(tmp_path / 'semantickitti_infos_train.pkl'))['data_list']
    assert len(train) == 4 and all('pts_semantic_mask_path' in d and 'CAM2' in d['images'] for d in train)
    assert len(test) == 2 and not any('pts_semantic_mask_path' in d for d in test)  # unlabelled unless asked


def test_superpixel_config_trains_on_image_2(root, tmp_path):
    """The SLidR-style config: SLIC maps of image_2 cached on disk, carried through the augmentation, and one loss
    step of its model with the superpixel term (pairs found, finite, gradients in both encoders)."""
    import torch
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    cfg = Config.fromfile(osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'seg',
                                  'simipu-slic_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py'))
    pipeline = cfg.train_dataloader.dataset.pipeline
    types = [t['type'] for t in pipeline]
    assert types.index('LoadMultiViewImageFromFiles') < types.index('LoadSuperpixels') < types.index('MultiViewImageAug')
    pipeline[types.index('LoadSuperpixels')]['cache_dir'] = str(tmp_path / 'sp')
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=root['root'] + '/',
                             ann_file=root['infos']['pkls']['train'], pipeline=pipeline))
    np.random.seed(0)
    batch = pseudo_collate([ds[0], ds[1]])
    assert len(os.listdir(tmp_path / 'sp')) == 2  # one cached map per image
    sp = batch['data_samples'][0].metainfo['superpixels']
    assert sp.shape == (1, 160, 544) and sp.max() > 20 and (sp >= -1).all()
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    losses = model(**model.data_preprocessor(batch, training=True), mode='loss')
    assert losses['nsuperpixels'].item() > 20 and torch.isfinite(losses['loss_superpixel'])
    losses['loss_superpixel'].backward()
    assert model.img_backbone.conv1.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())
