# Embedded nuScenes-format root for SimIPU pretraining, written by
#   python tools/create_synthetic_data.py nuscenes --out-dir data/synthetic_nuscenes --num-scenes 4 \
#       --samples-per-scene 10 --seed 0
# (v1.0-mini split: 30 train / 10 val samples):
# the real layout and v2 infos, small images and point clouds so that a run takes minutes on 2 CPU cores.
_base_ = ['./nus-paired-pretrain.py']

data_root = 'data/synthetic_nuscenes/'
point_cloud_range = [-40.96, -40.96, -5.0, 40.96, 40.96, 3.0]
img_final_shape = (96, 160)
cam_names = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT']
backend_args = None

train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5, backend_args=backend_args),
    # no padding with copies of the key frame when a sample has no sweeps
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=1, use_dim=[0, 1, 2, 3, 4], pad_empty_sweeps=False,
         remove_close=True, backend_args=backend_args),
    dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ValidatePoints', check_finite=False, min_points=1, stage='after PointsRangeFilter'),
    dict(type='PointShuffle'),
    dict(type='ValidateImages'),  # complete files, 3 channels, size agrees with cam2img
    dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=len(cam_names), backend_args=backend_args),
    dict(type='MultiViewImageAug', final_shape=img_final_shape, scale_range=(1.0, 1.2), crop_mode='random',
         flip_ratio=0.5, pad_size_divisor=32),
    dict(type='ProjectPointsToCameras', min_depth=0.5, time_dim=4),
    # view 1 = the scan (the frame the cameras see), view 2 = rotated +-90 deg, scaled 0.75-1.25, flipped p=0.5
    dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5,
         identity_first_view=True),
    dict(type='PackPairedSceneInputs'),
]

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='nuscenes_infos_train.pkl', pipeline=train_pipeline))
