"""Synthetic KITTI root: mmdet3d conversion, label geometry, LiDAR-camera consistency, determinism, errors."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = osp.join(dirpath, n)
            rel = osp.relpath(p, root)
            if n.endswith('.pkl') or 'velodyne_reduced' in rel:
                continue
            with open(p, 'rb') as f:
                out[rel] = f.read()
    return out


def _infos(path):
    import mmengine
    return mmengine.load(path)['data_list']


def test_layout_and_labels(synthetic_kitti):
    root = synthetic_kitti['root']
    assert synthetic_kitti['train'] == ['000000', '000001'] and synthetic_kitti['val'] == ['000002', '000003']
    with open(osp.join(root, 'ImageSets', 'trainval.txt')) as f:
        assert f.read().split() == ['000000', '000001', '000002', '000003']
    for fid in synthetic_kitti['train'] + synthetic_kitti['val']:
        pts = np.fromfile(osp.join(root, 'training', 'velodyne', f'{fid}.bin'), np.float32).reshape(-1, 4)
        assert len(pts) > 20000 and 0 <= pts[:, 3].min() and pts[:, 3].max() <= 1
        with open(osp.join(root, 'training', 'label_2', f'{fid}.txt')) as f:
            rows = [line.split(' ') for line in f.read().splitlines()]
        assert rows and all(len(r) == 15 for r in rows)
        assert {r[0] for r in rows} <= {'Car', 'Truck', 'Misc', 'Pedestrian', 'Cyclist'}
        for r in rows:
            trunc, occ, alpha = float(r[1]), int(r[2]), float(r[3])
            x1, y1, x2, y2 = map(float, r[4:8])
            assert 0 <= trunc <= 1 and occ in (0, 1, 2) and -np.pi <= alpha <= np.pi
            assert 0 <= x1 <= x2 <= 620 and 0 <= y1 <= y2 <= 187
            assert float(r[13]) > 0  # in front of the camera
    for fid in synthetic_kitti['test']:
        assert osp.isfile(osp.join(root, 'testing', 'velodyne', f'{fid}.bin'))
        assert not osp.exists(osp.join(root, 'testing', 'label_2', f'{fid}.txt'))


def test_mmdet3d_converter_and_dataset(synthetic_kitti):
    from mmdet3d.datasets import KittiDataset
    from mmdet3d.utils import register_all_modules
    register_all_modules()
    root = synthetic_kitti['root']
    names = [osp.basename(p) for p in synthetic_kitti['infos']]
    assert names == [f'kitti_infos_{s}.pkl' for s in ('train', 'val', 'trainval', 'test')]
    assert len(_infos(synthetic_kitti['infos'][3])) == 2
    for fid in synthetic_kitti['train']:
        assert osp.isfile(osp.join(root, 'training', 'velodyne_reduced', f'{fid}.bin'))
    pipeline = [
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4),
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
        dict(type='Pack3DDetInputs', keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d']),
    ]
    for ann_file in ('kitti_infos_train.pkl', 'kitti_infos_val.pkl'):
        ds = KittiDataset(data_root=root, ann_file=ann_file, pipeline=pipeline,
                          data_prefix=dict(pts='training/velodyne_reduced', img='training/image_2'),
                          modality=dict(use_lidar=True, use_camera=True), test_mode=False,
                          metainfo=dict(classes=['Pedestrian', 'Cyclist', 'Car']))
        assert len(ds) == 2
        for i in range(len(ds)):
            out = ds[i]
            gt = out['data_samples'].gt_instances_3d
            assert len(gt.bboxes_3d) > 0 and set(gt.labels_3d.tolist()) <= {0, 1, 2}  # Pedestrian Cyclist Car
            assert out['inputs']['points'].shape[1] == 4 and len(out['inputs']['points']) > 1000
            assert tuple(out['inputs']['img'].shape) == (3, 188, 621)


def test_label_boxes_enclose_their_points(synthetic_kitti):
    """Labels, as mmdet3d's KittiDataset turns them into LiDAR boxes, enclose the velodyne points of their
    objects."""
    from mmdet3d.datasets import KittiDataset
    root = synthetic_kitti['root']
    checked = 0
    for split in ('train', 'val'):
        ds = KittiDataset(data_root=root, ann_file=f'kitti_infos_{split}.pkl', pipeline=[],
                          data_prefix=dict(pts='training/velodyne_reduced', img='training/image_2'))
        for i in range(len(ds)):
            info = ds.get_data_info(i)  # (mmengine replaces sample_idx by the index in the split)
            fid = osp.basename(info['lidar_points']['lidar_path'])[:-4]
            gt = synthetic_kitti['gt'][f'training/{fid}']
            boxes = info['ann_info']['gt_bboxes_3d']  # LiDARInstance3DBoxes, bottom centre, l w h yaw
            assert len(boxes) == len(gt['labelled_ids'])
            pts = np.fromfile(osp.join(root, 'training', 'velodyne', f'{fid}.bin'), np.float32).reshape(-1, 4)
            for (x, y, z, l, w, h, yaw), k in zip(boxes.tensor.numpy().tolist(), gt['labelled_ids']):
                mine = gt['instance_ids'] == k
                if mine.sum() < 30:
                    continue
                local = (pts[:, :2] - [x, y]) @ np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
                inside = ((np.abs(local[:, 0]) <= l / 2 + 0.1) & (np.abs(local[:, 1]) <= w / 2 + 0.05)
                          & (pts[:, 2] >= z - 0.05) & (pts[:, 2] <= z + h + 0.05))
                assert (inside & mine).sum() >= 0.97 * mine.sum(), (i, k, (inside & mine).sum(), mine.sum())
                checked += 1
    assert checked >= 8


def test_points_project_onto_their_objects(synthetic_kitti):
    """Velodyne points projected with the converter's lidar2img (P2 R0_rect Tr_velo_to_cam) land on the pixels
    of the object they hit."""
    root = synthetic_kitti['root']
    n = np.zeros(4, dtype=np.int64)
    for split in ('train', 'val'):
        for info in _infos(osp.join(root, f'kitti_infos_{split}.pkl')):
            fid = f'{info["sample_idx"]:06d}'
            gt = synthetic_kitti['gt'][f'training/{fid}']
            pts = np.fromfile(osp.join(root, 'training', 'velodyne', f'{fid}.bin'), np.float32).reshape(-1, 4)
            lidar2img = np.array(info['images']['CAM2']['lidar2img'])
            uvw = np.concatenate([pts[:, :3], np.ones((len(pts), 1))], 1) @ lidar2img.T
            z = uvw[:, 2]
            u, v = uvw[:, 0] / np.maximum(z, 1e-6), uvw[:, 1] / np.maximum(z, 1e-6)
            H, W = gt['instance_mask'].shape
            keep = (z > 1) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
            k = gt['instance_ids'][keep]
            ui, vi = np.floor(u[keep]).astype(int), np.floor(v[keep]).astype(int)
            agree = gt['instance_mask'][vi, ui] == k
            lab = np.isin(k, gt['labelled_ids'])
            visible = (k >= 2) & (gt['depth'][vi, ui] > z[keep] - 0.25)
            n += [agree[lab].sum(), lab.sum(), agree[visible].sum(), visible.sum()]
    print(f'labelled-object points on their object: {n[0] / n[1]:.4f} of {n[1]}; '
          f'camera-visible object points: {n[2] / n[3]:.4f} of {n[3]}')
    assert n[1] > 2000 and n[0] / n[1] >= 0.95 and n[2] / n[3] >= 0.98


def test_same_seed_same_bytes(synthetic_kitti, tmp_path):
    from mmxmodal_bench.synthetic.kitti import generate_kitti_root

    from .conftest import SYNTH_KITTI_KW
    generate_kitti_root(str(tmp_path / 'a'), **dict(SYNTH_KITTI_KW, keep_gt=False))
    a, b = _files(str(tmp_path / 'a')), _files(synthetic_kitti['root'])
    assert a.keys() == b.keys() and len(a) > 20
    assert [k for k in a if a[k] != b[k]] == []


@pytest.fixture
def broken_root(synthetic_kitti, tmp_path):
    root = str(tmp_path / 'kitti')
    shutil.copytree(synthetic_kitti['root'], root, ignore=shutil.ignore_patterns('*.pkl', 'velodyne_reduced'))
    return root


def test_validator_accepts_generated_root(synthetic_kitti):
    from mmxmodal.datasets.converters.kitti import validate_kitti_root
    assert validate_kitti_root(synthetic_kitti['root'])['val'] == [2, 3]


def test_missing_file_is_named(broken_root):
    from mmxmodal.datasets.converters.kitti import create_kitti_infos
    from mmxmodal.datasets.converters.kitti import KittiRootError
    os.remove(osp.join(broken_root, 'training', 'image_2', '000001.png'))
    with pytest.raises(KittiRootError, match=r'training/image_2/000001\.png is missing'):
        create_kitti_infos(broken_root)
    assert not osp.exists(osp.join(broken_root, 'kitti_infos_train.pkl'))


def test_truncated_bin_and_bad_files_are_named(broken_root):
    from mmxmodal.datasets.converters.kitti import KittiRootError, validate_kitti_root
    velo = osp.join(broken_root, 'training', 'velodyne', '000002.bin')
    with open(velo, 'r+b') as f:
        f.truncate(osp.getsize(velo) - 5)
    calib = osp.join(broken_root, 'testing', 'calib', '000001.txt')
    with open(calib) as f:
        lines = f.read().splitlines()
    with open(calib, 'w') as f:
        f.write('\n'.join(lines[:4] + lines[5:]) + '\n')  # R0_rect missing
    label = osp.join(broken_root, 'training', 'label_2', '000000.txt')
    with open(label, 'a') as f:
        f.write('Car 0.00 0 1.0 1 2 3\n')
    with pytest.raises(KittiRootError) as e:
        validate_kitti_root(broken_root)
    msg = str(e.value)
    assert 'velodyne/000002.bin is truncated' in msg
    assert 'testing/calib/000001.txt must start with the lines' in msg
    assert 'label_2/000000.txt line' in msg and 'has 7 fields' in msg
    assert len(e.value.problems) == 3


def test_cli_refuses_sweeps_for_kitti(capsys):
    """KITTI frames hold one velodyne sweep: ``kitti --sweeps`` is an error that says so (it used to be accepted and
    ignored)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'create_synthetic_data', osp.join(osp.dirname(__file__), '..', '..', 'tools', 'create_synthetic_data.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit) as e:
        tool.main(['kitti', '--out-dir', 'unused', '--sweeps', '3'])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert '--sweeps does not apply to KITTI' in err and 'nuscenes' in err
    assert tool.build_parser().parse_args(['kitti']).sweeps is None  # not a setting of the generator
