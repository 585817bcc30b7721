# nuScenes LiDAR + all six cameras for label-free pretraining (SimIPU), from mmdet3d's v2 infos
# (``python tools/create_data.py nuscenes --root-path data/nuscenes --out-dir data/nuscenes --extra-tag nuscenes``).
# No annotation is read: the same ``nuscenes_infos_train.pkl`` serves pretraining and the detectors.

dataset_type = 'PairedSceneDataset'
data_root = 'data/nuscenes/'
cam_names = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT']
data_prefix = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP', **{c: f'samples/{c}' for c in cam_names})
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
img_final_shape = (448, 800)  # 900 x 1600 -> 450 x 800 (x 1.0-1.2), crop 448 x 800
backend_args = None

train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5, backend_args=backend_args),
    # 9 sweeps + key frame, 5 features (x, y, z, intensity, time lag) as CenterPoint expects
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=9, use_dim=[0, 1, 2, 3, 4], pad_empty_sweeps=True,
         remove_close=True, backend_args=backend_args),
    dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ValidatePoints', check_finite=False, min_points=1, stage='after PointsRangeFilter'),
    dict(type='PointShuffle'),
    dict(type='ValidateImages'),  # complete files, 3 channels, size agrees with cam2img
    dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=len(cam_names), backend_args=backend_args),
    dict(type='MultiViewImageAug', final_shape=img_final_shape, scale_range=(1.0, 1.2), crop_mode='random',
         flip_ratio=0.5, pad_size_divisor=32),
    # only key-frame points (time lag 0) are projected: sweeps were captured at other ego poses
    dict(type='ProjectPointsToCameras', min_depth=1.0, time_dim=4),
    # view 1 = the scan (the frame the cameras see), view 2 = rotated +-90 deg, scaled 0.75-1.25, flipped p=0.5
    dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5,
         identity_first_view=True),
    dict(type='PackPairedSceneInputs'),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='nuscenes_infos_train.pkl',
        data_prefix=data_prefix,
        cam_names=cam_names,
        on_error='skip',  # skip bad samples with a warning + counter (docs/reliability.md)
        pipeline=train_pipeline))

# Reliability (docs/reliability.md): bad samples are skipped with a logged warning and counted
# (train/skipped_samples), NaN/Inf losses skip the step (named terms and samples; stop after 20), and the random
# generators are saved with each checkpoint so that --resume repeats the uninterrupted run exactly.
custom_hooks = [
    dict(type='SkippedSamplesHook'),
    dict(type='NaNGuardHook', action='skip', max_skips=20),
    dict(type='RNGStateHook'),
]
