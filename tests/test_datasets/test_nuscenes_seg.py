"""nuScenes-lidarseg labels of the synthetic nuScenes root (devkit API) and NuScenesSegDataset."""
import os.path as osp
import shutil

import numpy as np
import pytest

import mmxmodal  # noqa: F401
from mmxmodal.datasets.nuscenes_seg import (LIDARSEG_16, LIDARSEG_16_CLASSES, NUSCENES_LIDARSEG_CATEGORIES,
                                            LidarsegError, add_lidarseg_to_infos)

PIPELINE = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=4),
    dict(type='LoadAnnotations3D', with_bbox_3d=False, with_label_3d=False, with_seg_3d=True,
         seg_3d_dtype='np.uint8'),
    dict(type='CheckPointSegMask', raw_ids=list(range(32))),
    dict(type='PointSegClassMapping'),
    dict(type='Pack3DDetInputs', keys=['points', 'pts_semantic_mask']),
]



@pytest.fixture(autouse=True, scope='module')
def _mmdet3d_scope():
    from mmdet3d.utils import register_all_modules
    register_all_modules()

@pytest.fixture(scope='module')
def nusc(synthetic_nuscenes):
    from nuscenes.nuscenes import NuScenes
    return NuScenes(version='v1.0-mini', dataroot=synthetic_nuscenes['root'], verbose=False)


@pytest.fixture(scope='module')
def seg_infos(synthetic_nuscenes, tmp_path_factory):
    out = tmp_path_factory.mktemp('nus_seg')
    return [add_lidarseg_to_infos(synthetic_nuscenes['root'], p, out_path=str(out / osp.basename(p)))['path']
            for p in synthetic_nuscenes['infos']]


def test_devkit_reads_lidarseg(synthetic_nuscenes, nusc, capsys):
    from nuscenes.utils.data_io import load_bin_file

    from mmxmodal_bench.synthetic.nuscenes import lidarseg_lut
    assert synthetic_nuscenes['num_lidarseg'] == len(nusc.sample) == len(nusc.lidarseg) == 4
    assert nusc.lidarseg_idx2name_mapping == dict(enumerate(NUSCENES_LIDARSEG_CATEGORIES))
    names = set()
    for sample in nusc.sample:
        sd_tok = sample['data']['LIDAR_TOP']
        rec = nusc.get('lidarseg', sd_tok)
        labels = load_bin_file(osp.join(nusc.dataroot, rec['filename']), type='lidarseg')
        pts = np.fromfile(osp.join(nusc.dataroot, nusc.get('sample_data', sd_tok)['filename']), '<f4')
        assert len(labels) * 5 == len(pts)
        assert np.array_equal(labels, lidarseg_lut()[synthetic_nuscenes['gt'][sd_tok]['semantic']])
        names |= {nusc.lidarseg_idx2name_mapping[i] for i in np.unique(labels)}
        ids = synthetic_nuscenes['gt'][sd_tok]['instance_ids']
        assert (labels[ids == 1] == NUSCENES_LIDARSEG_CATEGORIES.index('flat.driveable_surface')).mean() > 0.5
    assert {'flat.driveable_surface', 'flat.sidewalk', 'static.manmade', 'vehicle.car'} <= names
    capsys.readouterr()
    nusc.list_lidarseg_categories(sort_by='count')  # the devkit's statistics over every lidarseg file
    printed = capsys.readouterr().out
    assert 'Calculated stats for 4 point clouds' in printed and 'flat.driveable_surface' in printed


def test_16_class_mapping_is_the_benchmarks():
    names = {NUSCENES_LIDARSEG_CATEGORIES[i]: (LIDARSEG_16_CLASSES + ('ignore',))[j] for i, j in LIDARSEG_16.items()}
    assert names['vehicle.bus.bendy'] == names['vehicle.bus.rigid'] == 'bus'
    assert names['human.pedestrian.police_officer'] == 'pedestrian' and names['noise'] == 'ignore'
    assert names['vehicle.emergency.police'] == 'ignore' and names['static_object.bicycle_rack'] == 'ignore'
    assert sorted(set(LIDARSEG_16.values())) == list(range(17))


def test_nuscenes_seg_dataset_iterates(synthetic_nuscenes, seg_infos):
    from mmdet3d.registry import DATASETS
    seen = set()
    for pkl, test_mode in zip(seg_infos, (False, True)):
        ds = DATASETS.build(dict(type='NuScenesSegDataset', data_root=synthetic_nuscenes['root'], ann_file=pkl,
                                 pipeline=PIPELINE, test_mode=test_mode))
        assert len(ds) == 2 and ds.metainfo['classes'] == LIDARSEG_16_CLASSES
        for i in range(len(ds)):
            out = ds[i]
            mask = np.asarray(out['data_samples'].gt_pts_seg.pts_semantic_mask)
            assert len(mask) == len(out['inputs']['points']) > 10000
            assert 0 <= mask.min() and mask.max() <= 16
            seen |= set(mask.tolist())
    assert {LIDARSEG_16_CLASSES.index(c) for c in ('car', 'driveable_surface', 'sidewalk', 'manmade')} <= seen


def test_truncated_lidarseg_file_is_named_or_skipped(synthetic_nuscenes, tmp_path):
    from mmxmodal.datasets.converters.nuscenes import NuScenesRootError, validate_nuscenes_root
    root = str(tmp_path / 'nus')
    shutil.copytree(synthetic_nuscenes['root'], root, ignore=shutil.ignore_patterns('*.pkl'))
    import json
    with open(osp.join(root, 'v1.0-mini', 'lidarseg.json')) as f:
        rec = json.load(f)[0]
    path = osp.join(root, rec['filename'])
    data = np.fromfile(path, np.uint8)
    data[:-3].tofile(path)
    with pytest.raises(NuScenesRootError, match=rec['filename']):
        validate_nuscenes_root(root, 'v1.0-mini')
    pkls = synthetic_nuscenes['infos']
    results = []
    for p in pkls:
        try:
            add_lidarseg_to_infos(root, p, out_path=str(tmp_path / osp.basename(p)))
            results.append(None)
        except LidarsegError as e:
            results.append(str(e))
    assert sum(r is not None and path in r for r in results) == 1
    skipped = [add_lidarseg_to_infos(root, p, out_path=str(tmp_path / osp.basename(p)), on_error='skip')
               for p in pkls]
    assert sum(r['skipped'] for r in skipped) == 1 and sum(r['kept'] for r in skipped) == 3


def test_extras_add_vegetation_and_terrain(tmp_path):
    from mmxmodal_bench.synthetic.nuscenes import generate_nuscenes_root
    out = generate_nuscenes_root(str(tmp_path), num_scenes=1, samples_per_scene=1, sweeps=0, seed=0,
                                 image_size=(160, 90), extras=True, keep_gt=True)
    import json
    with open(osp.join(out['root'], 'v1.0-mini', 'lidarseg.json')) as f:
        rec = json.load(f)[0]
    labels = np.fromfile(osp.join(out['root'], rec['filename']), np.uint8)
    names = {NUSCENES_LIDARSEG_CATEGORIES[i] for i in np.unique(labels)}
    assert {'static.vegetation', 'flat.terrain', 'flat.driveable_surface', 'vehicle.car'} <= names
