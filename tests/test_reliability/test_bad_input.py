"""The bad-input table (docs/reliability.md): every case raises an error naming the file / token / key and what was
expected (``on_error='raise'``, the default and evaluation behaviour), or - with ``on_error='skip'``, the
pretraining configs' setting - skips the sample with a logged warning naming it, counts it, and hands out another
sample. Never a NaN loss, never a silent wrong pairing of image and point cloud."""
import copy
import logging
import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
import torch

import mmxmodal  # noqa: F401
from mmxmodal.datasets.robust import InfoFormatError, PairingError, SampleError
from tests.test_reliability.data import (make_object_root, make_scene_root, object_pipeline, scene_dataset,
                                         scene_points, write_infos)


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope='module')
def objects_master(tmp_path_factory):
    return make_object_root(str(tmp_path_factory.mktemp('rel_objects')))


@pytest.fixture
def objects(objects_master, tmp_path):
    """A private copy of the object root (tests corrupt it)."""
    dst = str(tmp_path / 'objects')
    shutil.copytree(objects_master, dst)
    return dst


@pytest.fixture
def scenes(tmp_path):
    return make_scene_root(str(tmp_path / 'scenes'))


@pytest.fixture
def warnings_log():
    """Messages logged at WARNING or above through mmengine's current logger."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    records = []

    class _Keep(logging.Handler):

        def emit(self, record):
            records.append(record.getMessage())

    handler = _Keep(level=logging.WARNING)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _shapenet(root, on_error='raise', **kw):
    from mmdet3d.registry import DATASETS
    return DATASETS.build(dict(type='ShapeNetRenderDataset', data_root=root, pipeline=object_pipeline(),
                               on_error=on_error, **kw))


def _skipped_before(sample) -> int:
    return int(sample['data_samples'].metainfo.get('skipped_before', 0))


def _assert_skips(ds, bad_idx, bad_name, warnings_log):
    """ds[bad_idx] (skip mode) returns another sample carrying the skip count; the warning names the file."""
    np.random.seed(0)
    out = ds[bad_idx]
    assert out is not None and _skipped_before(out) >= 1
    assert any(bad_name in m and 'skipping bad sample' in m for m in warnings_log), warnings_log
    # counted once per skip, attached to the replacing sample only
    good = next(i for i in range(len(ds)) if i != bad_idx)
    assert _skipped_before(ds[good]) == 0


# ------------------------------------------------------------------------------------------------------ objects
def test_missing_point_file(objects, warnings_log):
    ds, ds_skip = _shapenet(objects), _shapenet(objects, 'skip')
    path = ds.get_data_info(1)['pts_path']
    os.remove(path)  # vanishes after the listing (e.g. network storage)
    with pytest.raises(FileNotFoundError) as e:
        ds[1]
    msg = str(e.value)
    assert isinstance(e.value, SampleError)
    assert path in msg and 'ShapeNetRenderDataset[1]' in msg and 'LoadObjectPoints' in msg
    assert 'point cloud file not found' in msg
    _assert_skips(ds_skip, 1, osp.basename(path), warnings_log)


def test_truncated_point_file(objects, warnings_log):
    ds = _shapenet(objects)
    path = ds.get_data_info(2)['pts_path']
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(ValueError, match=rf'{osp.basename(path)}.*truncated'):
        ds[2]
    _assert_skips(_shapenet(objects, 'skip'), 2, osp.basename(path), warnings_log)


def test_nan_and_inf_point_coordinates(objects, tmp_path, warnings_log):
    from mmxmodal.datasets.transforms.loading import load_points_file
    ds = _shapenet(objects)
    path = ds.get_data_info(0)['pts_path']
    pts = load_points_file(path)
    for bad in (np.nan, np.inf):
        pts_bad = pts.copy()
        pts_bad[3, 1] = bad
        npy = osp.splitext(path)[0] + '.npy'
        np.save(npy, pts_bad)
        os.remove(path) if osp.exists(path) else None
        ds = _shapenet(objects)
        idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['pts_path'] == npy)
        with pytest.raises(ValueError, match=rf'{osp.basename(npy)}.*NaN/inf'):
            ds[idx]
    _assert_skips(_shapenet(objects, 'skip'), idx, osp.basename(npy), warnings_log)


def test_nan_rows_in_h5_are_named_or_dropped(objects, warnings_log):
    import h5py
    from mmdet3d.registry import DATASETS
    root = osp.join(objects, 'modelnet40_ply_hdf5_2048')
    h5 = sorted(f for f in os.listdir(root) if f.startswith('ply_data_train'))[0]
    with h5py.File(osp.join(root, h5), 'r+') as f:
        data = f['data'][()]
        data[1, 5, 0] = np.nan
        f['data'][...] = data
        n = len(data)
    cfg = dict(type='ModelNet40Dataset', data_root=root, split='train', pipeline=[dict(type='LoadObjectPoints')])
    with pytest.raises(ValueError, match=rf'{h5}.*NaN/inf'):
        DATASETS.build(cfg)
    ds = DATASETS.build(dict(cfg, on_error='skip'))
    assert ds.num_skipped_infos == 1 and len(ds) == n - 1
    assert 1 not in [ds.get_data_info(i)['h5_row'] for i in range(len(ds))]
    assert any(h5 in m and 'row 1' in m for m in warnings_log)
    # evaluation (test_mode) never skips
    with pytest.raises(ValueError, match='NaN/inf'):
        DATASETS.build(dict(cfg, on_error='skip', test_mode=True))


def test_unreadable_image(objects, warnings_log):
    ds = _shapenet(objects)
    img = ds.get_data_info(3)['img_paths'][0]
    with open(img, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n not really a png')
    with pytest.raises(ValueError) as e:
        ds[3]
    assert img in str(e.value) and 'cannot decode image' in str(e.value) and 'LoadRenderedImage' in str(e.value)
    _assert_skips(_shapenet(objects, 'skip'), 3, osp.basename(img), warnings_log)


def test_object_image_from_another_object_is_a_pairing_error(objects):
    ds = _shapenet(objects)
    info0, info1 = ds.get_data_info(0), ds.get_data_info(1)
    bad = copy.deepcopy(info0)  # sample 0's cloud with sample 1's views
    bad['img_paths'] = info1['img_paths']
    from mmxmodal.datasets.transforms import PackObjectInputs
    from mmxmodal.datasets.transforms.loading import LoadObjectPoints, LoadRenderedImage
    res = LoadRenderedImage(choice='first')(LoadObjectPoints()(bad))
    with pytest.raises(PairingError, match=rf'{info1["object_id"]}.*{info0["object_id"]}'):
        PackObjectInputs()(res)
    # the right pairing packs
    PackObjectInputs()(LoadRenderedImage(choice='first')(LoadObjectPoints()(copy.deepcopy(info0))))


def test_modelnet_view_rows_are_checked_against_the_points():
    from mmxmodal.datasets.robust import check_object_pairing
    check_object_pairing(dict(sample_idx=0, h5_row=7, img_path='/v/train/00007/00.png'))
    with pytest.raises(PairingError, match=r'train/00003/00\.png belongs to \(3,\).*row 7 of x\.h5'):
        check_object_pairing(dict(sample_idx=7, h5_row=7, h5_path='x.h5', img_path='/v/train/00003/00.png'))


# ------------------------------------------------------------------------------------------------------ scenes
def test_missing_camera_entry_in_an_info(scenes, tmp_path, warnings_log):
    infos = copy.deepcopy(scenes['infos'])
    del infos['data_list'][1]['images']['CAM_BACK']
    ann = write_infos(str(tmp_path / 'missing_cam.pkl'), infos)
    with pytest.raises(KeyError, match=r"token0001: camera 'CAM_BACK' missing"):
        scene_dataset(scenes['root'], ann)
    ds = scene_dataset(scenes['root'], ann, on_error='skip')
    assert len(ds) == 2 and ds.num_skipped_infos == 1
    assert [ds.get_data_info(i)['token'] for i in range(2)] == ['token0000', 'token0002']
    assert any('token0001' in m and 'CAM_BACK' in m for m in warnings_log)


@pytest.mark.parametrize('case', ['shape', 'singular_lidar2cam', 'singular_cam2img', 'nonfinite'])
def test_bad_calibration_matrices(scenes, tmp_path, case, warnings_log):
    infos = copy.deepcopy(scenes['infos'])
    cam = infos['data_list'][2]['images']['CAM_FRONT']
    if case == 'shape':
        cam['cam2img'] = [[40.0, 0.0], [0.0, 40.0]]
        expect = r"token0002: images\['CAM_FRONT'\]\['cam2img'\] has shape \(2, 2\), expected one of"
    elif case == 'singular_lidar2cam':
        cam['lidar2cam'] = [[0., -1., 0., 0.], [0., 0., -1., 0.], [0., 0., 0., 0.], [0., 0., 0., 1.]]
        expect = r"token0002: images\['CAM_FRONT'\]: lidar2cam is singular.*expected an invertible rigid"
    elif case == 'singular_cam2img':
        cam['cam2img'] = [[40.0, 0.0, 32.0], [0.0, 0.0, 24.0], [0.0, 0.0, 1.0]]
        expect = r"token0002: images\['CAM_FRONT'\]: cam2img is singular.*intrinsic"
    else:
        cam['lidar2cam'][0][3] = float('nan')
        expect = r"token0002.*'lidar2cam'.*non-finite"
    ann = write_infos(str(tmp_path / f'{case}.pkl'), infos)
    with pytest.raises(ValueError, match=expect):
        scene_dataset(scenes['root'], ann)
    ds = scene_dataset(scenes['root'], ann, on_error='skip')
    assert len(ds) == 2 and ds.num_skipped_infos == 1
    assert any('token0002' in m for m in warnings_log)


def test_nan_inf_lidar_coordinates(scenes, warnings_log):
    pts = scene_points(np.random.default_rng(1))
    pts[10, 0] = np.nan
    pts[11, 2] = np.inf
    pts.tofile(scenes['lidar'][0])
    ds = scene_dataset(scenes['root'], scenes['ann_file'])
    with pytest.raises(ValueError) as e:
        ds[0]
    msg = str(e.value)
    assert scenes['lidar'][0] in msg and '2 of 400 points have NaN/Inf' in msg and 'token0000' in msg
    _assert_skips(scene_dataset(scenes['root'], scenes['ann_file'], on_error='skip'), 0,
                  osp.basename(scenes['lidar'][0]), warnings_log)


def test_cloud_empty_after_range_filtering(scenes, warnings_log):
    far = scene_points(np.random.default_rng(2))
    far[:, 0] += 500.0  # everything beyond the point-cloud range
    far.tofile(scenes['lidar'][1])
    ds = scene_dataset(scenes['root'], scenes['ann_file'])
    with pytest.raises(ValueError, match=re.escape(osp.basename(scenes['lidar'][1])) +
                       r'.*after PointsRangeFilter: 0 points, expected at least 1'):
        ds[1]
    _assert_skips(scene_dataset(scenes['root'], scenes['ann_file'], on_error='skip'), 1,
                  osp.basename(scenes['lidar'][1]), warnings_log)


def test_truncated_and_missing_lidar_files(scenes, warnings_log):
    path = scenes['lidar'][2]
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) - 6])  # not a whole number of 5-float points
    ds = scene_dataset(scenes['root'], scenes['ann_file'])
    with pytest.raises(ValueError) as e:
        ds[2]
    assert 'LoadPointsFromFile' in str(e.value) and f'{path}: 7994 bytes is not a whole number of points of 5' \
        in str(e.value) and 'truncated?' in str(e.value)
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=r'token0002.*point cloud file not found: ' + re.escape(path)):
        ds[2]
    _assert_skips(scene_dataset(scenes['root'], scenes['ann_file'], on_error='skip'), 2, osp.basename(path),
                  warnings_log)


def test_unreadable_camera_image(scenes, warnings_log):
    img = scenes['images'][1]['CAM_BACK']
    with open(img, 'wb') as f:
        f.write(b'\xff\xd8\xff truncated jpeg')
    ds = scene_dataset(scenes['root'], scenes['ann_file'])
    with pytest.raises(Exception) as e:
        ds[1]
    msg = str(e.value)
    assert isinstance(e.value, SampleError) and 'LoadMultiViewImageFromFiles' in msg and 'token0001' in msg
    assert f'image file cannot be decoded (empty, truncated or not an image): {img}' in msg
    _assert_skips(scene_dataset(scenes['root'], scenes['ann_file'], on_error='skip'), 1, 'token0001',
                  warnings_log)


def test_every_point_outside_every_camera_gives_zero_positives_and_a_finite_loss(scenes):
    from mmxmodal.models.losses import SampledInfoNCELoss
    scene_points(np.random.default_rng(3), visible=False).tofile(scenes['lidar'][0])
    ds = scene_dataset(scenes['root'], scenes['ann_file'])
    meta = ds[0]['data_samples'].metainfo
    assert len(meta['proj_point_idx']) == 0 and meta['proj_uv'].shape == (0, 2)
    assert len(ds[1]['data_samples'].metainfo['proj_point_idx']) > 50  # the normal scans do project
    # point-pixel loss over zero positives: exact 0, finite, still back-propagates
    loss_fn = SampledInfoNCELoss(max_pairs=64)
    q = torch.zeros(0, 16, requires_grad=True)
    k = torch.zeros(0, 16, requires_grad=True)
    loss, acc = loss_fn(q, k)
    assert torch.isfinite(loss) and loss.item() == 0.0 and acc.item() == 0.0
    loss.backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_image_from_another_sample_is_a_pairing_error(scenes, tmp_path, warnings_log):
    infos = copy.deepcopy(scenes['infos'])
    # sample 0 lists sample 2's front image (1 s later): a silent wrong pairing without the check
    infos['data_list'][0]['images']['CAM_FRONT'] = copy.deepcopy(infos['data_list'][2]['images']['CAM_FRONT'])
    ann = write_infos(str(tmp_path / 'swapped.pkl'), infos)
    ds = scene_dataset(scenes['root'], ann)
    with pytest.raises(PairingError, match=r'token0000.*CAM_FRONT.*\+0\.988 s from the LiDAR scan.*not of the same'):
        ds[0]
    _assert_skips(scene_dataset(scenes['root'], ann, on_error='skip'), 0, 'token0000', warnings_log)


def test_kitti_frame_numbers_must_match():
    from mmxmodal.datasets.robust import check_scene_pairing
    check_scene_pairing(dict(lidar_path='v/000007.bin', filename=['i/000007.png']))
    with pytest.raises(PairingError, match='000008 != 000007'):
        check_scene_pairing(dict(lidar_path='v/000007.bin', filename=['i/000008.png']))


@pytest.mark.parametrize('layout', ['nuscenes_v1', 'kitti_v1'])
def test_info_pkl_in_the_old_mmdet3d_layout(scenes, tmp_path, layout):
    v2 = scenes['infos']
    if layout == 'nuscenes_v1':
        old = dict(infos=[dict(lidar_path='x.bin', token=d['token'], cams={}) for d in v2['data_list']],
                   metadata=dict(version='v1.0-mini'))
        name = 'nuscenes_infos_train.pkl'
    else:
        old = [dict(image=dict(image_idx=i), point_cloud=dict(velodyne_path=f'{i:06d}.bin')) for i in range(3)]
        name = 'kitti_infos_train.pkl'
    ann = write_infos(str(tmp_path / name), old)
    dataset = 'nuscenes' if layout == 'nuscenes_v1' else 'kitti'
    for on_error in ('raise', 'skip'):  # a whole file in the wrong layout is never skipped
        with pytest.raises(InfoFormatError) as e:
            scene_dataset(scenes['root'], ann, on_error=on_error)
        msg = str(e.value)
        assert ann in msg and 'old mmdet3d v1 layout' in msg
        assert f'tools/dataset_converters/update_infos_to_v2.py --dataset {dataset}' in msg
        assert f'tools/create_data.py {dataset}' in msg


# ------------------------------------------------------------------------------------------------------ checkpoints
def _crosspoint_like_checkpoint(path):
    from mmdet3d.registry import MODELS
    enc = MODELS.build(dict(type='DGCNNEncoder', k=4, edge_channels=(8, 8, 8, 8), emb_dims=16))
    sd = {f'point_encoder.{k}': v for k, v in enc.state_dict().items()}
    sd.update({'point_head.fc.weight': torch.zeros(4, 4), 'img_backbone.conv1.weight': torch.zeros(2, 3, 1, 1)})
    torch.save(dict(meta=dict(epoch=1), state_dict=sd), path)
    return enc


def test_checkpoint_without_the_expected_prefix(tmp_path):
    from mmengine.model import BaseModule
    from mmdet3d.registry import MODELS
    from mmxmodal.utils.pretrained import CheckpointPrefixError
    ckpt = str(tmp_path / 'crosspoint.pth')
    src = _crosspoint_like_checkpoint(ckpt)

    def encoder(init_cfg):
        return MODELS.build(dict(type='DGCNNEncoder', k=4, edge_channels=(8, 8, 8, 8), emb_dims=16,
                                 init_cfg=init_cfg))

    # stock Pretrained with a prefix no key has: mmengine's bare AssertionError (importing mmxmodal changes nothing)
    m = encoder(dict(type='Pretrained', checkpoint=ckpt, prefix='pts_backbone.'))
    assert isinstance(m, BaseModule)
    with pytest.raises(AssertionError):
        m.init_weights()
    # CheckedPretrained: an error naming the prefix and the prefixes that exist
    with pytest.raises(CheckpointPrefixError) as e:
        encoder(dict(type='CheckedPretrained', checkpoint=ckpt, prefix='pts_backbone.')).init_weights()
    msg = str(e.value)
    assert ckpt in msg and "'pts_backbone.'" in msg and 'point_encoder. (' in msg and 'img_backbone. (1 keys)' in msg
    # loading the wrong sub-module (or none) is an error instead of random weights
    for init in (dict(type='CheckedPretrained', checkpoint=ckpt, prefix='pts_backbone.'),
                 dict(type='CheckedPretrained', checkpoint=ckpt),
                 dict(type='CheckedPretrained', checkpoint=ckpt, prefix='img_backbone.')):
        with pytest.raises(CheckpointPrefixError) as e:
            encoder(init).init_weights()
        if 'prefix' not in init:
            assert "prefixes that fit this module: point_encoder." in str(e.value)
    # the right prefix loads every weight
    good = encoder(dict(type='CheckedPretrained', checkpoint=ckpt, prefix='point_encoder.'))
    good.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(good.state_dict()[k], v), k
