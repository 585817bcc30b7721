# KITTI LiDAR + left colour camera (CAM2) for label-free pretraining (SimIPU), from mmdet3d's v2 infos
# (``python tools/create_data.py kitti --root-path data/kitti --out-dir data/kitti --extra-tag kitti``).

dataset_type = 'PairedSceneDataset'
data_root = 'data/kitti/'
cam_names = ['CAM2']
data_prefix = dict(pts='training/velodyne_reduced', img='training/image_2')
point_cloud_range = [0, -40, -3, 70.4, 40, 1]
img_final_shape = (352, 1216)  # ~375 x 1242 -> crop 352 x 1216
num_points = 16384  # PointNet++ needs a fixed number of points per sample
backend_args = None

train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4, backend_args=backend_args),
    dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ValidatePoints', check_finite=False, min_points=1, stage='after PointsRangeFilter'),
    dict(type='PointSample', num_points=num_points),
    dict(type='PointShuffle'),
    dict(type='ValidateImages'),  # complete files, 3 channels, size agrees with cam2img
    dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=1, backend_args=backend_args),
    dict(type='MultiViewImageAug', final_shape=img_final_shape, scale_range=(1.0, 1.2), crop_mode='random',
         flip_ratio=0.5, pad_size_divisor=32),
    dict(type='ProjectPointsToCameras', min_depth=1.0),
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
        ann_file='kitti_infos_train.pkl',
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
