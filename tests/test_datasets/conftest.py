"""Shared fixtures for the dataset tests: one small synthetic object root per session."""
import pytest

#: Arguments of the session's synthetic object root (small: a few seconds on 2 cores).
SYNTH_OBJECTS_KW = dict(num_objects=24, seed=0, num_views=4, image_size=64, num_points=2048,
                        cls_train_per_class=3, cls_test_per_class=2, scanobjectnn=True, ssaa=2, workers=1)


@pytest.fixture(scope='session')
def synthetic_objects_root(tmp_path_factory) -> str:
    """A generated root with ShapeNet/, ShapeNetRendering/, modelnet40_ply_hdf5_2048/, modelnet40_views/,
    ScanObjectNN/ (see ``mmxmodal_bench.synthetic.objects``). Tests must not modify it."""
    from mmxmodal_bench.synthetic.objects import generate_objects
    root = tmp_path_factory.mktemp('synthetic_objects')
    generate_objects(str(root), **SYNTH_OBJECTS_KW)
    return str(root)


# ---------------------------------------------------------------------------------------- synthetic driving scenes
#: Arguments of the session's synthetic nuScenes root (2 scenes x 2 samples: a few seconds on 2 cores).
SYNTH_NUSCENES_KW = dict(num_scenes=2, samples_per_scene=2, sweeps=2, seed=0, image_size=(400, 225), keep_gt=True)
#: Arguments of the session's synthetic KITTI root.
SYNTH_KITTI_KW = dict(num_scenes=2, samples_per_scene=2, seed=0, image_size=(621, 188), num_azimuths=1024,
                      test_scenes=1, keep_gt=True)


@pytest.fixture(scope='session')
def synthetic_nuscenes(tmp_path_factory) -> dict:
    """A generated nuScenes root (``v1.0-mini`` tables, scene-0061 train + scene-0103 val) with mmdet3d's v2 info
    pkls: the dict of ``generate_nuscenes_root(keep_gt=True)`` plus ``infos`` (train and val pkl paths).
    Tests must not modify it."""
    from mmxmodal.datasets.converters.nuscenes import create_nuscenes_infos
    from mmxmodal_bench.synthetic.nuscenes import generate_nuscenes_root
    root = tmp_path_factory.mktemp('synthetic_nuscenes')
    out = generate_nuscenes_root(str(root), **SYNTH_NUSCENES_KW)
    out['infos'] = create_nuscenes_infos(out['root'], out['root'], version=out['version'], max_sweeps=10)
    return out


@pytest.fixture(scope='session')
def synthetic_kitti(tmp_path_factory) -> dict:
    """A generated KITTI root with mmdet3d's v2 info pkls: the dict of ``generate_kitti_root(keep_gt=True)`` plus
    ``infos`` (train, val, trainval, test pkl paths). Tests must not modify it."""
    from mmxmodal.datasets.converters.kitti import create_kitti_infos
    from mmxmodal_bench.synthetic.kitti import generate_kitti_root
    root = tmp_path_factory.mktemp('synthetic_kitti')
    out = generate_kitti_root(str(root), **SYNTH_KITTI_KW)
    out['infos'] = create_kitti_infos(out['root'], out['root'])
    return out
