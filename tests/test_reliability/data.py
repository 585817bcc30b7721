"""Tiny hand-made data roots for the reliability tests (fast, fully controlled, safe to corrupt).

* :func:`make_scene_root`: a nuScenes-style root (``samples/LIDAR_TOP/*.pcd.bin`` with 5 float32 features,
  ``samples/CAM_*/*.jpg``) and an mmdet3d v2 info pkl (``metainfo`` + ``data_list``) with file names carrying the
  capture times as nuScenes does; two cameras looking along +x and -x.
* :func:`make_object_root`: ``tools/create_synthetic_data.py objects`` layout, a few objects.
"""
import os
import os.path as osp
import pickle
from typing import Dict, List, Optional, Sequence

import numpy as np

CAMS = ('CAM_FRONT', 'CAM_BACK')
T0 = 1532402900000000  # microseconds
K = [[40.0, 0.0, 32.0], [0.0, 40.0, 24.0], [0.0, 0.0, 1.0]]
# LiDAR (x forward, y left, z up) -> camera (x right, y down, z forward)
LIDAR2CAM = {
    'CAM_FRONT': [[0., -1., 0., 0.], [0., 0., -1., 0.], [1., 0., 0., 0.], [0., 0., 0., 1.]],
    'CAM_BACK': [[0., 1., 0., 0.], [0., 0., -1., 0.], [-1., 0., 0., 0.], [0., 0., 0., 1.]],
}
HW = (48, 64)
PREFIX = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP', **{c: f'samples/{c}' for c in CAMS})


def scene_points(rng: np.random.Generator, n: int = 400, visible: bool = True) -> np.ndarray:
    """(n, 5) float32 points: x, y, z, intensity, time lag 0. ``visible=False``: all within 0.2 m of the
    y-z plane, i.e. at (almost) zero depth for both cameras -> no valid projection."""
    if visible:
        xyz = np.stack([rng.uniform(-20, 20, n), rng.uniform(-8, 8, n), rng.uniform(-1.5, 1.5, n)], 1)
        xyz[:, 0] += np.sign(xyz[:, 0]) * 3.0
    else:
        xyz = np.stack([rng.uniform(-0.2, 0.2, n), rng.uniform(5, 30, n) * rng.choice([-1, 1], n),
                        rng.uniform(-1.5, 1.5, n)], 1)
    feats = np.stack([rng.uniform(0, 1, n), np.zeros(n)], 1)
    return np.concatenate([xyz, feats], 1).astype(np.float32)


def make_scene_root(root: str, num_samples: int = 3, seed: int = 0, points: Optional[Dict[int, np.ndarray]] = None,
                    ann_file: str = 'infos_train.pkl') -> Dict[str, object]:
    """Write the root; returns dict(root, ann_file (abs), infos (the pickled dict), lidar (list of abs paths),
    images (list of {cam: abs path}))."""
    import cv2
    rng = np.random.default_rng(seed)
    for d in ['samples/LIDAR_TOP'] + [f'samples/{c}' for c in CAMS]:
        os.makedirs(osp.join(root, d), exist_ok=True)
    data_list, lidar_files, image_files = [], [], []
    for i in range(num_samples):
        t = T0 + i * 500000
        lname = f'n015-2018-07-01-10-00-00+0800__LIDAR_TOP__{t}.pcd.bin'
        pts = points[i] if points and i in points else scene_points(rng)
        pts.astype(np.float32).tofile(osp.join(root, 'samples/LIDAR_TOP', lname))
        lidar_files.append(osp.join(root, 'samples/LIDAR_TOP', lname))
        images, files = {}, {}
        for c in CAMS:
            tc = t - 12000
            cname = f'n015-2018-07-01-10-00-00+0800__{c}__{tc}.jpg'
            img = rng.integers(0, 255, HW + (3, ), dtype=np.uint8)
            cv2.imwrite(osp.join(root, f'samples/{c}', cname), img)
            files[c] = osp.join(root, f'samples/{c}', cname)
            images[c] = dict(img_path=cname, cam2img=[row[:] for row in K], lidar2cam=[r[:] for r in LIDAR2CAM[c]],
                             timestamp=tc / 1e6, sample_data_token=f'sd{i}{c}')
        image_files.append(files)
        data_list.append(dict(sample_idx=i, token=f'token{i:04d}', timestamp=t / 1e6,
                              lidar_points=dict(num_pts_feats=5, lidar_path=lname), lidar_sweeps=[], images=images))
    infos = dict(metainfo=dict(dataset='nuscenes', version='v1.0-mini', info_version='1.1', categories={}),
                 data_list=data_list)
    path = osp.join(root, ann_file)
    with open(path, 'wb') as f:
        pickle.dump(infos, f)
    return dict(root=root, ann_file=path, infos=infos, lidar=lidar_files, images=image_files)


def write_infos(path: str, infos) -> str:
    with open(path, 'wb') as f:
        pickle.dump(infos, f)
    return path


def scene_pipeline(point_cloud_range: Sequence[float] = (-30, -30, -3, 30, 30, 3), project: bool = True,
                   pack: bool = True) -> List[dict]:
    """The SimIPU loading chain of the configs (without augmentation), with the validity checks."""
    p = [
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
        dict(type='PointsRangeFilter', point_cloud_range=list(point_cloud_range)),
        dict(type='ValidatePoints', check_finite=False, min_points=1, stage='after PointsRangeFilter'),
        dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=len(CAMS)),
    ]
    if project:
        p.append(dict(type='ProjectPointsToCameras', min_depth=0.5))
    if pack:
        p.append(dict(type='PackPairedSceneInputs'))
    return p


def scene_dataset(root: str, ann_file: str, pipeline=None, **kw):
    from mmdet3d.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    return DATASETS.build(dict(type='PairedSceneDataset', data_root=root, ann_file=ann_file, data_prefix=PREFIX,
                               cam_names=list(CAMS), pipeline=scene_pipeline() if pipeline is None else pipeline,
                               **kw))


# ------------------------------------------------------------------------------------------------------ objects
OBJECTS_KW = dict(num_objects=4, seed=0, num_views=2, image_size=32, num_points=256, cls_train_per_class=1,
                  cls_test_per_class=1, scanobjectnn=False, workers=1)


def make_object_root(root: str) -> str:
    from mmxmodal_bench.synthetic.objects import generate_objects
    generate_objects(root, **OBJECTS_KW)
    return root


def object_pipeline(choice: str = 'first') -> List[dict]:
    return [dict(type='LoadObjectPoints'), dict(type='LoadRenderedImage', choice=choice),
            dict(type='PackObjectInputs', keys=['points', 'img'])]
