"""Synthetic nuScenes root: devkit loading, LiDAR-camera consistency, mmdet3d conversion, determinism, errors."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')


@pytest.fixture(scope='module')
def nusc(synthetic_nuscenes):
    from nuscenes.nuscenes import NuScenes
    return NuScenes(version='v1.0-mini', dataroot=synthetic_nuscenes['root'], verbose=False)


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = osp.join(dirpath, n)
            if n.endswith('.pkl'):
                continue
            with open(p, 'rb') as f:
                out[osp.relpath(p, root)] = f.read()
    return out


def test_devkit_loads_root(synthetic_nuscenes, nusc):
    from nuscenes.utils.data_classes import LidarPointCloud
    from nuscenes.utils.splits import mini_train, mini_val

    from mmdet3d.datasets.convert_utils import NuScenesNameMapping
    assert [s['name'] for s in nusc.scene] == ['scene-0061', 'scene-0103']
    assert 'scene-0061' in mini_train and 'scene-0103' in mini_val
    assert len(nusc.sample) == 4
    for sample in nusc.sample:
        assert set(sample['data']) == {'LIDAR_TOP', *CAMERAS}
        assert len(sample['anns']) > 5
        lidar = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
        assert lidar['timestamp'] == sample['timestamp'] and lidar['is_key_frame']
        pc = LidarPointCloud.from_file(osp.join(nusc.dataroot, lidar['filename']))
        assert pc.points.shape[0] == 4 and pc.points.shape[1] > 10000
        # HDL-32E geometry: 70 m range, returns from 32 rings
        raw = np.fromfile(osp.join(nusc.dataroot, lidar['filename']), dtype=np.float32).reshape(-1, 5)
        assert np.linalg.norm(raw[:, :3], axis=1).max() < 72 and set(np.unique(raw[:, 4])) <= set(range(32))
        assert 0 <= raw[:, 3].min() and raw[:, 3].max() <= 255
        for cam in CAMERAS:  # cameras fire within one LiDAR revolution before the keyframe
            sd = nusc.get('sample_data', sample['data'][cam])
            assert 0 <= sample['timestamp'] - sd['timestamp'] <= 50_000
            assert (sd['width'], sd['height']) == (400, 225)
    # sweeps precede each keyframe and are chained in time
    lidar = nusc.get('sample_data', nusc.sample[1]['data']['LIDAR_TOP'])
    prev = nusc.get('sample_data', lidar['prev'])
    assert not prev['is_key_frame'] and prev['filename'].startswith('sweeps/LIDAR_TOP/')
    assert lidar['timestamp'] - prev['timestamp'] == 50_000
    # every annotated category maps to one of mmdet3d's 10 classes; velocities come from the annotation chain
    cats = {a['category_name'] for a in nusc.sample_annotation}
    assert cats <= set(NuScenesNameMapping) and {'vehicle.car', 'human.pedestrian.adult'} <= cats
    moving = [a for a in nusc.sample_annotation if a['prev'] or a['next']]
    assert moving and all(np.isfinite(nusc.box_velocity(a['token'])).all() for a in moving)


def _devkit_chain(nusc, lidar_token, cam_token, min_dist=1.0):
    """The transform chain of ``NuScenesExplorer.map_pointcloud_to_image``, with devkit functions, keeping point
    indices: returns projected points (3, N) of all points and the devkit's keep mask (N,)."""
    from nuscenes.utils.data_classes import LidarPointCloud
    from nuscenes.utils.geometry_utils import view_points
    from pyquaternion import Quaternion
    cam, ps = nusc.get('sample_data', cam_token), nusc.get('sample_data', lidar_token)
    pc = LidarPointCloud.from_file(osp.join(nusc.dataroot, ps['filename']))
    cs = nusc.get('calibrated_sensor', ps['calibrated_sensor_token'])
    pc.rotate(Quaternion(cs['rotation']).rotation_matrix)
    pc.translate(np.array(cs['translation']))
    pose = nusc.get('ego_pose', ps['ego_pose_token'])
    pc.rotate(Quaternion(pose['rotation']).rotation_matrix)
    pc.translate(np.array(pose['translation']))
    pose = nusc.get('ego_pose', cam['ego_pose_token'])
    pc.translate(-np.array(pose['translation']))
    pc.rotate(Quaternion(pose['rotation']).rotation_matrix.T)
    cs = nusc.get('calibrated_sensor', cam['calibrated_sensor_token'])
    pc.translate(-np.array(cs['translation']))
    pc.rotate(Quaternion(cs['rotation']).rotation_matrix.T)
    depth = pc.points[2]
    pts = view_points(pc.points[:3], np.array(cs['camera_intrinsic']), normalize=True)
    keep = (depth > min_dist) & (pts[0] > 1) & (pts[0] < cam['width'] - 1) & (pts[1] > 1) & (pts[1] < cam['height'] - 1)
    return pts, depth, keep


def test_lidar_points_land_on_their_objects(synthetic_nuscenes, nusc):
    """Devkit projection of every keyframe onto the six cameras: a point whose ray hit object k lands on a pixel
    rendered as object k.

    Objects are the annotated instances (vehicles, people, cones, barriers); the second check covers every
    instance (also buildings and poles) among the points the camera can see: the roof LiDAR (1.84 m) sees over
    cars that hide the same surface from the cameras (1.5 m), a parallax the first check includes.
    """
    gt = synthetic_nuscenes['gt']
    annotated = np.array(sorted(synthetic_nuscenes['instances'].values()))
    n = np.zeros(4, dtype=np.int64)  # annotated: on-object, total; camera-visible: on-object, total
    for sample in nusc.sample:
        lidar_token = sample['data']['LIDAR_TOP']
        ids = gt[lidar_token]['instance_ids']
        for cam in CAMERAS:
            cam_token = sample['data'][cam]
            dev_pts, dev_depth, _ = nusc.explorer.map_pointcloud_to_image(lidar_token, cam_token)
            pts, depth, keep = _devkit_chain(nusc, lidar_token, cam_token)
            np.testing.assert_allclose(dev_pts, pts[:, keep], atol=1e-6)  # same points, so indices are known
            np.testing.assert_allclose(dev_depth, depth[keep], atol=1e-6)
            idx = np.nonzero(keep)[0]
            u, v = np.floor(pts[0, idx]).astype(int), np.floor(pts[1, idx]).astype(int)
            k = ids[idx]
            agree = gt[cam_token]['instance_mask'][v, u] == k
            ann = np.isin(k, annotated)
            visible = (k >= 2) & (gt[cam_token]['depth'][v, u] > depth[idx] - 0.25)
            n += [agree[ann].sum(), ann.sum(), agree[visible].sum(), visible.sum()]
    assert n[1] > 3000 and n[3] > 20000
    print(f'annotated-object points on their object: {n[0] / n[1]:.4f} of {n[1]}; '
          f'camera-visible object points: {n[2] / n[3]:.4f} of {n[3]}')
    assert n[0] / n[1] >= 0.95
    assert n[2] / n[3] >= 0.98


def test_boxes_enclose_their_points(synthetic_nuscenes):
    """mmdet3d's converted boxes (LiDAR frame, x y z l w h yaw) enclose the LiDAR points of their objects."""
    import mmengine
    from nuscenes.nuscenes import NuScenes

    from mmdet3d.structures import LiDARInstance3DBoxes
    data = mmengine.load(synthetic_nuscenes['infos'][0])
    nusc = NuScenes('v1.0-mini', synthetic_nuscenes['root'], verbose=False)
    checked = 0
    for info in data['data_list']:
        sample = nusc.get('sample', info['token'])
        ids = synthetic_nuscenes['gt'][sample['data']['LIDAR_TOP']]['instance_ids']
        pts = np.fromfile(osp.join(synthetic_nuscenes['root'], 'samples/LIDAR_TOP',
                                   info['lidar_points']['lidar_path']), np.float32).reshape(-1, 5)
        boxes = LiDARInstance3DBoxes(np.array([i['bbox_3d'] for i in info['instances']], dtype=np.float32),
                                     origin=(0.5, 0.5, 0.5))
        bottom = boxes.bottom_height.numpy()
        for j, inst in enumerate(info['instances']):
            if inst['num_lidar_pts'] < 20:
                continue
            c, (l, w, h), yaw = np.array(inst['bbox_3d'][:3]), inst['bbox_3d'][3:6], inst['bbox_3d'][6]
            assert abs(bottom[j] - (c[2] - h / 2)) < 1e-4  # gravity centre
            # a moving object travels up to |v| * 50 ms during one LiDAR revolution (nan: single annotation)
            speed = np.linalg.norm(inst['velocity']) if np.isfinite(inst['velocity']).all() else 15.0
            local = (pts[:, :2] - c[:2]) @ np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
            inside = ((np.abs(local[:, 0]) <= l / 2 + 0.05 + 0.05 * speed) & (np.abs(local[:, 1]) <= w / 2 + 0.05)
                      & (np.abs(pts[:, 2] - c[2]) <= h / 2 + 0.05))
            objs = ids[inside & (ids >= 2)]
            k = np.bincount(objs).argmax()  # the object the box encloses
            assert (ids == k).sum() == inst['num_lidar_pts']
            assert (inside & (ids == k)).sum() >= 0.97 * inst['num_lidar_pts']
            assert (objs == k).mean() > 0.9
            checked += 1
    assert checked > 10


def test_mmdet3d_converter_and_dataset(synthetic_nuscenes):
    import mmengine

    from mmdet3d.datasets import NuScenesDataset
    from mmdet3d.utils import register_all_modules
    register_all_modules()
    root = synthetic_nuscenes['root']
    train, val = synthetic_nuscenes['infos']
    assert [osp.basename(p) for p in (train, val)] == ['nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl']
    meta = mmengine.load(train)['metainfo']
    assert meta['dataset'] == 'nuscenes' and meta['version'] == 'v1.0-mini'
    data_prefix = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP', **{c: f'samples/{c}' for c in CAMERAS})
    pipeline = [
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='LoadPointsFromMultiSweeps', sweeps_num=9, use_dim=[0, 1, 2, 3, 4], pad_empty_sweeps=True,
             remove_close=True),
        dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
        dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=6),
        dict(type='Pack3DDetInputs', keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d']),
    ]
    for ann_file in (train, val):
        ds = NuScenesDataset(data_root=root, ann_file=osp.basename(ann_file), pipeline=pipeline,
                             data_prefix=data_prefix, modality=dict(use_lidar=True, use_camera=True),
                             test_mode=False)
        assert len(ds) == 2
        for i in range(len(ds)):
            out = ds[i]
            sample = out['data_samples']
            assert len(sample.gt_instances_3d.bboxes_3d) > 5
            labels = sample.gt_instances_3d.labels_3d
            assert labels.min() >= 0 and labels.max() < 10
            points = out['inputs']['points']
            assert points.shape[1] == 5 and points.shape[0] > 40000  # keyframe + sweeps
            assert len(out['inputs']['img']) == 6 and tuple(out['inputs']['img'][0].shape) == (3, 225, 400)
            info = ds.get_data_info(i)
            assert osp.isfile(info['lidar_points']['lidar_path'])
            assert all(osp.isfile(s['lidar_points']['lidar_path']) for s in info['lidar_sweeps'])


def test_same_seed_same_bytes(synthetic_nuscenes, tmp_path):
    from .conftest import SYNTH_NUSCENES_KW
    from mmxmodal_bench.synthetic.nuscenes import generate_nuscenes_root
    kw = dict(SYNTH_NUSCENES_KW, keep_gt=False)
    generate_nuscenes_root(str(tmp_path / 'a'), **kw)
    a, b = _files(str(tmp_path / 'a')), _files(synthetic_nuscenes['root'])
    assert a.keys() == b.keys() and len(a) > 40
    assert [k for k in a if a[k] != b[k]] == []
    generate_nuscenes_root(str(tmp_path / 'c'), **dict(kw, seed=1, num_scenes=1, samples_per_scene=1))
    c = _files(str(tmp_path / 'c'))
    common = [k for k in set(c) & set(a) if k.startswith(('samples/', 'sweeps/'))]
    assert common and all(c[k] != a[k] for k in common)  # another seed: other scenes and tokens


@pytest.fixture
def broken_root(synthetic_nuscenes, tmp_path):
    root = str(tmp_path / 'nuscenes')
    shutil.copytree(synthetic_nuscenes['root'], root, ignore=shutil.ignore_patterns('*.pkl'))
    return root


def _table(root, name):
    with open(osp.join(root, 'v1.0-mini', f'{name}.json')) as f:
        return json.load(f)


def _write_table(root, name, recs):
    with open(osp.join(root, 'v1.0-mini', f'{name}.json'), 'w') as f:
        json.dump(recs, f)


def test_validator_accepts_generated_root(synthetic_nuscenes):
    from mmxmodal.datasets.converters.nuscenes import validate_nuscenes_root
    tables = validate_nuscenes_root(synthetic_nuscenes['root'], 'v1.0-mini')
    assert len(tables['sample']) == 4


def test_missing_file_is_named(broken_root):
    from mmxmodal.datasets.converters.nuscenes import create_nuscenes_infos
    from mmxmodal.datasets.converters.nuscenes import NuScenesRootError
    sd = next(r for r in _table(broken_root, 'sample_data') if r['filename'].startswith('samples/CAM_BACK/'))
    os.remove(osp.join(broken_root, sd['filename']))
    with pytest.raises(NuScenesRootError) as e:
        create_nuscenes_infos(broken_root)
    assert sd['filename'] in str(e.value) and sd['token'] in str(e.value) and 'missing' in str(e.value)
    assert not osp.exists(osp.join(broken_root, 'nuscenes_infos_train.pkl'))


def test_truncated_bin_is_named(broken_root):
    from mmxmodal.datasets.converters.nuscenes import NuScenesRootError, validate_nuscenes_root
    sd = next(r for r in _table(broken_root, 'sample_data') if r['filename'].startswith('sweeps/LIDAR_TOP/'))
    path = osp.join(broken_root, sd['filename'])
    with open(path, 'r+b') as f:
        f.truncate(osp.getsize(path) - 6)
    with pytest.raises(NuScenesRootError, match='truncated') as e:
        validate_nuscenes_root(broken_root, 'v1.0-mini')
    assert sd['filename'] in str(e.value) and len(e.value.problems) == 1


def test_inconsistent_tables_are_named(broken_root):
    from mmxmodal.datasets.converters.nuscenes import NuScenesRootError, validate_nuscenes_root
    anns = _table(broken_root, 'sample_annotation')
    bad = 'f' * 32
    anns[3]['instance_token'] = bad
    _write_table(broken_root, 'sample_annotation', anns)
    sds = _table(broken_root, 'sample_data')
    sds[0]['calibrated_sensor_token'] = 'e' * 32
    _write_table(broken_root, 'sample_data', sds)
    with pytest.raises(NuScenesRootError) as e:
        validate_nuscenes_root(broken_root, 'v1.0-mini')
    msg = str(e.value)
    assert f"sample_annotation.json: record {anns[3]['token']} field 'instance_token' references instance token " \
           f"'{bad}'" in msg
    assert f"sample_data.json: record {sds[0]['token']} field 'calibrated_sensor_token'" in msg and 'e' * 32 in msg
    # counts are checked too: an instance that loses an annotation no longer matches nbr_annotations
    assert any('nbr_annotations' in p for p in e.value.problems) or len(e.value.problems) == 2


def test_missing_table_is_named(broken_root):
    from mmxmodal.datasets.converters.nuscenes import NuScenesRootError, validate_nuscenes_root
    os.remove(osp.join(broken_root, 'v1.0-mini', 'ego_pose.json'))
    with pytest.raises(NuScenesRootError, match='ego_pose.json'):
        validate_nuscenes_root(broken_root, 'v1.0-mini')


def test_cli_and_figure(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'create_synthetic_data', osp.join(osp.dirname(__file__), '..', '..', 'tools', 'create_synthetic_data.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root = str(tmp_path / 'nus')
    tool.main(['nuscenes', '--out-dir', root, '--num-scenes', '1', '--samples-per-scene', '1', '--sweeps', '1',
               '--image-size', '160x90', '--no-infos', '--seed', '3'])
    from mmxmodal.datasets.converters.nuscenes import validate_nuscenes_root
    from mmxmodal_bench.synthetic.visualize_scene import save_lidar_on_cameras
    tables = validate_nuscenes_root(root)
    assert len(tables['sample']) == 1 and len(tables['sample_data']) == 8
    png = save_lidar_on_cameras(root, 0, str(tmp_path / 'fig.png'), width_px=600)
    assert 1000 < osp.getsize(png) < 800_000


def test_scene_names_follow_the_devkit_splits():
    from nuscenes.utils import splits

    from mmxmodal_bench.synthetic.nuscenes import generate_nuscenes_root, scene_names
    names = scene_names(10, 'v1.0-mini')
    assert names[:8] == list(splits.mini_train) and names[8:] == list(splits.mini_val)
    names = scene_names(20, 'v1.0-trainval')
    assert set(names[:17]) <= set(splits.train) and set(names[17:]) <= set(splits.val)
    with pytest.raises(ValueError, match='v1.0-trainval'):
        generate_nuscenes_root('/nonexistent/never-written', num_scenes=11)
