"""SimIPU data path: paired-scene dataset, two-view transform, multi-camera augmentation and projection.

The projection check runs the project's pipeline (mmdet3d loading + ``MultiViewImageAug`` + ``ProjectPointsToCameras``)
on the generated nuScenes root and compares every valid projection with nuscenes-devkit's chain
(``LidarPointCloud`` -> ego -> global -> ego -> camera -> ``view_points``) followed by the recorded resize / crop /
flip applied by hand.
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch

import mmxmodal  # noqa: F401
from mmxmodal.datasets.transforms.multiview_image_aug import MultiViewImageAug, image_aug_matrix
from mmxmodal.datasets.transforms.projection import project_points
from mmxmodal.datasets.transforms.scene_views import GlobalTwoViews

CAMERAS = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT']


def _prefix():
    return dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP', **{c: f'samples/{c}' for c in CAMERAS})


def _dataset(root, pipeline=(), ann_file='nuscenes_infos_train.pkl', **kw):
    from mmdet3d.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    return DATASETS.build(dict(type='PairedSceneDataset', data_root=root, ann_file=ann_file,
                               data_prefix=_prefix(), pipeline=list(pipeline), **kw))


# ------------------------------------------------------------------------------------------------- dataset
def test_paired_scene_dataset_reads_all_cameras_and_no_labels(synthetic_nuscenes):
    ds = _dataset(synthetic_nuscenes['root'])
    assert len(ds) > 0
    info = ds.get_data_info(0)
    assert info['cam_names'] == CAMERAS
    assert 'ann_info' not in info and 'instances' not in info and 'eval_ann_info' not in info
    assert osp.isfile(info['lidar_path'])
    assert len(info['lidar_sweeps']) == 2 and all(osp.isfile(s['lidar_points']['lidar_path'])
                                                  for s in info['lidar_sweeps'])
    for cam in CAMERAS:
        item = info['images'][cam]
        assert osp.isfile(item['img_path']) and cam in item['img_path']
        for key in ('cam2img', 'lidar2cam', 'lidar2img'):
            assert item[key].shape == (4, 4)
        np.testing.assert_allclose(item['lidar2img'], item['cam2img'] @ item['lidar2cam'])
    data = ds[0]  # the empty pipeline returns the info itself
    assert data['box_type_3d'].__name__ == 'LiDARInstance3DBoxes'


def test_paired_scene_dataset_errors_name_sample_and_key(synthetic_nuscenes, tmp_path):
    import mmengine
    infos = mmengine.load(synthetic_nuscenes['infos'][0])
    token = infos['data_list'][0]['token']
    bad = copy.deepcopy(infos)
    del bad['data_list'][0]['images']['CAM_BACK']
    mmengine.dump(bad, tmp_path / 'missing.pkl')
    with pytest.raises(KeyError, match=rf"{token}: camera 'CAM_BACK' missing"):
        _dataset(synthetic_nuscenes['root'], ann_file=str(tmp_path / 'missing.pkl'), cam_names=CAMERAS)
    bad = copy.deepcopy(infos)
    bad['data_list'][0]['images']['CAM_FRONT']['lidar2cam'] = [[1.0, 0.0], [0.0, 1.0]]
    mmengine.dump(bad, tmp_path / 'shape.pkl')
    with pytest.raises(ValueError, match=rf"{token}.*'CAM_FRONT'.*'lidar2cam'.*\(2, 2\)"):
        _dataset(synthetic_nuscenes['root'], ann_file=str(tmp_path / 'shape.pkl'))


# ------------------------------------------------------------------------------------------------- two views
def test_global_two_views_record_exact_transforms():
    from mmdet3d.structures.points import LiDARPoints
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(-50, 50, (5000, 3)), rng.uniform(0, 1, (5000, 2))], 1).astype(np.float32)
    np.random.seed(3)
    t = GlobalTwoViews(flip_ratio=0.5, identity_first_view=False)
    flips = []
    for _ in range(20):
        res = t(dict(points=LiDARPoints(pts.copy(), points_dim=5)))
        v1, v2, mats = res['points'].tensor.numpy(), res['points_view2'].tensor.numpy(), res['view_trans']
        assert v1.shape == v2.shape == pts.shape
        np.testing.assert_array_equal(v1[:, 3:], pts[:, 3:])  # features untouched, same order
        np.testing.assert_array_equal(v2[:, 3:], pts[:, 3:])
        rel = mats[1] @ np.linalg.inv(mats[0])  # view2 = T2 T1^-1 view1
        pred = v1[:, :3].astype(np.float64) @ rel[:3, :3].T + rel[:3, 3]
        np.testing.assert_allclose(pred, v2[:, :3], atol=2e-4)
        for m in mats:
            lin = m[:3, :3]
            s = np.cbrt(abs(np.linalg.det(lin)))
            assert 0.75 <= s <= 1.25
            np.testing.assert_allclose(lin.T @ lin, s * s * np.eye(3), atol=1e-9)  # similarity
            angle = np.arctan2(lin[1, 0], lin[0, 0]) if np.linalg.det(lin) > 0 else None
            flips.append(np.linalg.det(lin) < 0)
            if angle is not None:
                assert abs(angle) <= np.pi / 2 + 1e-9
            np.testing.assert_allclose(lin[2], [0, 0, s], atol=1e-12)  # rotation about z only
    assert 0 < np.mean(flips) < 1
    res = GlobalTwoViews()(dict(points=LiDARPoints(pts.copy(), points_dim=5)))  # SimIPU default: view 1 = scan
    np.testing.assert_array_equal(res['view_trans'][0], np.eye(4))
    np.testing.assert_array_equal(res['points'].tensor.numpy(), pts)


# ------------------------------------------------------------------------------------------------- images
def _toy_camera():
    k = np.array([[200., 0., 160.5], [0., 200., 90.25], [0., 0., 1.]])
    lidar2cam = np.array([[0., -1., 0., 0.1], [0., 0., -1., 0.2], [1., 0., 0., -0.3], [0., 0., 0., 1.]])
    return k, lidar2cam


@pytest.mark.parametrize('flip', [False, True])
def test_multiview_image_aug_moves_pixels_with_the_matrix(flip):
    """A marked pixel of the original image lands where the updated lidar2img projects its 3D point."""
    k, l2c = _toy_camera()
    h, w = 180, 320
    rng = np.random.default_rng(1)
    for trial in range(10):
        # a point in front of the camera that projects onto the centre of an integer pixel
        u0, v0 = rng.integers(60, w - 60), rng.integers(40, h - 40)
        depth = rng.uniform(5, 30)
        cam = np.array([(u0 + 0.5 - k[0, 2]) / k[0, 0] * depth, (v0 + 0.5 - k[1, 2]) / k[1, 1] * depth, depth])
        lidar = np.linalg.inv(l2c) @ np.append(cam, 1.0)
        img = np.zeros((h, w, 3), np.uint8)
        img[v0 - 2:v0 + 3, u0 - 2:u0 + 3] = 255  # 5x5 block centred on the pixel
        aug = MultiViewImageAug(final_shape=(96, 160), scale_range=(0.9, 1.2), crop_mode='random',
                                flip_ratio=1.0 if flip else 0.0, interpolation='nearest')
        np.random.seed(trial)
        res = aug(dict(img=[img], cam2img=[k], lidar2cam=[l2c]))
        assert res['flip'] == [flip]
        uv, depth_out, valid = project_points(lidar[None, :3], np.stack(res['lidar2img']), res['valid_shape'])
        out = res['img'][0][..., 0].astype(np.float64)
        if out.max() == 0:  # the block was cropped away: the projection must say so
            assert not valid[0, 0]
            continue
        ys, xs = np.nonzero(out)
        centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5])  # continuous coordinates of the block centre
        assert valid[0, 0] or not (0 <= uv[0, 0, 0] < res['valid_shape'][0, 1])
        np.testing.assert_allclose(uv[0, 0], centre, atol=1.0)
        np.testing.assert_allclose(depth_out[0, 0], depth, rtol=1e-9)


def test_image_aug_matrix_composition():
    m = image_aug_matrix((0.5, 0.25), (10, 4), flip_width=100.0)
    p = m @ np.array([40.0 * 3, 80.0 * 3, 3.0, 1.0])  # (u d, v d, d, 1) with u = 40, v = 80, d = 3
    np.testing.assert_allclose(p[:2] / p[2], [100 - (40 * 0.5 - 10), 80 * 0.25 - 4])


def test_points_behind_or_outside_are_never_positives():
    k, l2c = _toy_camera()
    c2l = np.linalg.inv(l2c)
    cam_pts = np.array([[0.5, 0.2, 10.0],   # in front, inside
                        [-0.5, -0.2, -10.0],  # behind: (u, v) = mirror inside the image, must be rejected
                        [100.0, 0.0, 10.0],  # in front, right of the image
                        [0.0, 0.0, 1e-4]])  # on the camera plane
    lidar = (c2l[:3, :3] @ cam_pts.T).T + c2l[:3, 3]
    k4 = np.eye(4)
    k4[:3, :3] = k
    uv, depth, valid = project_points(lidar, (k4 @ l2c)[None], np.array([[180, 320]]))
    assert valid[0].tolist() == [True, False, False, False]
    # the point behind the camera would fall inside the image without the depth test
    u, v = k[0, 0] * -0.5 / -10.0 + k[0, 2], k[1, 1] * -0.2 / -10.0 + k[1, 2]
    assert 0 <= u < 320 and 0 <= v < 180
    assert depth[0, 1] == pytest.approx(-10.0)


# ------------------------------------------------------------------------------------------------- devkit
def _devkit_pixels(nusc, sample_token: str, cam: str, points_lidar: np.ndarray):
    """nuscenes-devkit chain of ``NuScenesExplorer.map_pointcloud_to_image`` for the given LiDAR points.

    Returns (N, 2) pixels and (N,) depths in the original image."""
    from nuscenes.utils.data_classes import LidarPointCloud
    from nuscenes.utils.geometry_utils import view_points
    from pyquaternion import Quaternion
    sample = nusc.get('sample', sample_token)
    pointsensor = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
    cam_sd = nusc.get('sample_data', sample['data'][cam])
    pc = LidarPointCloud(np.concatenate([points_lidar[:, :3].T, np.zeros((1, len(points_lidar)))], 0))
    cs = nusc.get('calibrated_sensor', pointsensor['calibrated_sensor_token'])
    pc.rotate(Quaternion(cs['rotation']).rotation_matrix)
    pc.translate(np.array(cs['translation']))
    pose = nusc.get('ego_pose', pointsensor['ego_pose_token'])
    pc.rotate(Quaternion(pose['rotation']).rotation_matrix)
    pc.translate(np.array(pose['translation']))
    pose = nusc.get('ego_pose', cam_sd['ego_pose_token'])
    pc.translate(-np.array(pose['translation']))
    pc.rotate(Quaternion(pose['rotation']).rotation_matrix.T)
    cs = nusc.get('calibrated_sensor', cam_sd['calibrated_sensor_token'])
    pc.translate(-np.array(cs['translation']))
    pc.rotate(Quaternion(cs['rotation']).rotation_matrix.T)
    depth = pc.points[2].copy()
    pix = view_points(pc.points[:3], np.array(cs['camera_intrinsic']), normalize=True)
    return pix[:2].T, depth


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_projection_matches_nuscenes_devkit_after_resize_crop_flip(synthetic_nuscenes, seed):
    from nuscenes.nuscenes import NuScenes
    nusc = NuScenes(version=synthetic_nuscenes['version'], dataroot=synthetic_nuscenes['root'], verbose=False)
    pipeline = [
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=6),
        dict(type='MultiViewImageAug', final_shape=(160, 288), scale_range=(0.8, 1.3), crop_mode='random',
             flip_ratio=0.5, pad_size_divisor=32),
        dict(type='ProjectPointsToCameras', min_depth=1.0),
    ]
    ds = _dataset(synthetic_nuscenes['root'], pipeline)
    np.random.seed(seed)
    res = ds[seed % len(ds)]
    pts = res['points'].tensor.numpy()
    flips = res['flip']
    assert len(res['img']) == 6 and all(im.shape == (160, 288, 3) for im in res['img'])
    n_checked = 0
    for c, cam in enumerate(CAMERAS):
        pix, depth = _devkit_pixels(nusc, res['token'], cam, pts)
        sx, sy = res['scale_factor'][c]
        x0, y0 = res['crop_offset'][c]
        h, w = res['valid_shape'][c]
        u = pix[:, 0] * sx - x0
        v = pix[:, 1] * sy - y0
        if flips[c]:
            u = w - u
        mask = res['proj_cam_idx'] == c
        idx = res['proj_point_idx'][mask]
        ours = res['proj_uv'][mask]
        # every positive agrees with the devkit within one pixel, is in front and inside the augmented image
        np.testing.assert_allclose(ours, np.stack([u[idx], v[idx]], 1), atol=1.0)
        assert (depth[idx] > 1.0 - 1e-3).all()
        assert ((u[idx] > -1) & (u[idx] < w + 1) & (v[idx] > -1) & (v[idx] < h + 1)).all()
        # and every devkit-visible point away from the border is a positive (nothing visible is dropped)
        inner = (depth > 1.0 + 1e-3) & (u >= 1) & (u < w - 1) & (v >= 1) & (v < h - 1)
        assert set(np.nonzero(inner)[0]) <= set(idx.tolist())
        n_checked += len(idx)
    assert n_checked > 1000


def test_project_transform_inverts_view_one(synthetic_nuscenes):
    """ProjectPointsToCameras placed after GlobalTwoViews maps view 1 back to the LiDAR frame."""
    base = [
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=6),
        dict(type='MultiViewImageAug', final_shape=(128, 224), pad_size_divisor=32),
    ]
    proj = dict(type='ProjectPointsToCameras', min_depth=1.0)
    ds_a = _dataset(synthetic_nuscenes['root'], base + [proj])
    ds_b = _dataset(synthetic_nuscenes['root'], base + [dict(type='GlobalTwoViews'), proj])
    np.random.seed(0)
    a = ds_a[0]
    np.random.seed(0)  # same image augmentation (drawn before the views)
    b = ds_b[0]
    assert b['crop_offset'] == a['crop_offset'] and len(a['proj_point_idx']) > 100
    # same positives up to float rounding at the image border
    sa = set(zip(a['proj_cam_idx'].tolist(), a['proj_point_idx'].tolist()))
    sb = set(zip(b['proj_cam_idx'].tolist(), b['proj_point_idx'].tolist()))
    assert len(sa ^ sb) <= 0.001 * len(sa)


def test_pipeline_packs_paired_inputs(synthetic_nuscenes):
    pipeline = [
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='LoadPointsFromMultiSweeps', sweeps_num=2, use_dim=[0, 1, 2, 3, 4], pad_empty_sweeps=False),
        dict(type='PointsRangeFilter', point_cloud_range=[-50, -50, -5, 50, 50, 3]),
        dict(type='PointShuffle'),
        dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=6),
        dict(type='MultiViewImageAug', final_shape=(128, 224), flip_ratio=0.5, pad_size_divisor=32),
        dict(type='ProjectPointsToCameras', min_depth=1.0, time_dim=4),
        dict(type='GlobalTwoViews'),
        dict(type='PackPairedSceneInputs'),
    ]
    ds = _dataset(synthetic_nuscenes['root'], pipeline)
    out = ds[0]
    inputs, sample = out['inputs'], out['data_samples']
    assert set(inputs) == {'points', 'points_view2', 'img'}
    assert inputs['points'].shape == inputs['points_view2'].shape and inputs['points'].shape[1] == 5
    assert tuple(inputs['img'].shape) == (6, 3, 128, 224)
    meta = sample.metainfo
    assert len(meta['lidar2img']) == 6 and meta['view_trans'].shape == (2, 4, 4)
    idx = meta['proj_point_idx']
    assert len(idx) > 100 and idx.max() < inputs['points'].shape[0]
    # only key-frame points (time lag 0) are positives: sweeps were taken at other ego poses
    assert torch.all(inputs['points'][torch.as_tensor(idx), 4] == 0)
    assert torch.any(inputs['points'][:, 4] != 0)


# ------------------------------------------------------------------------------------------------- KITTI
def test_kitti_infos_give_cam2_with_its_projection(synthetic_kitti):
    """KITTI v2 infos: only CAM2 has an image; lidar2cam already includes R0_rect; lidar2img = P2 @ lidar2cam."""
    import mmengine
    from mmdet3d.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    base = Config.fromfile(osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets',
                                    'kitti-paired-pretrain.py'))
    pipeline = [dict(t) for t in base.train_pipeline]
    for t in pipeline:
        if t['type'] == 'PointSample':
            t['num_points'] = 4096
        elif t['type'] == 'MultiViewImageAug':
            t['final_shape'] = (160, 512)
    ds = DATASETS.build(dict(type='PairedSceneDataset', data_root=synthetic_kitti['root'],
                             ann_file=synthetic_kitti['infos'][0], data_prefix=base.data_prefix,
                             cam_names=None, pipeline=pipeline))
    info = ds.get_data_info(0)
    assert info['cam_names'] == ['CAM2']
    raw = mmengine.load(synthetic_kitti['infos'][0])['data_list'][0]['images']['CAM2']
    if 'lidar2img' in raw:
        np.testing.assert_allclose(info['images']['CAM2']['lidar2img'], np.asarray(raw['lidar2img']), atol=1e-6)
    np.random.seed(0)
    out = ds[0]
    assert tuple(out['inputs']['img'].shape) == (1, 3, 160, 512)
    assert out['inputs']['points'].shape == (4096, 4) == out['inputs']['points_view2'].shape
    meta = out['data_samples'].metainfo
    assert len(meta['proj_point_idx']) > 200 and (meta['proj_depth'] > 1.0).all()
    assert (meta['proj_cam_idx'] == 0).all()
