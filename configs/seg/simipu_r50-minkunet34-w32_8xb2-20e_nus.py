# SimIPU pretraining of the stock MinkUNet-34 (w32, spconv) with ResNet-50 on nuScenes, all six cameras (key frame
# LiDAR, x y z intensity so that the weights drop into the 4-feature SemanticKITTI MinkUNet as well).
_base_ = ['./simipu_r50-minkunet34-w32_8xb2-20e_semantickitti.py']

data_root = 'data/nuscenes/'
cam_names = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT']
img_final_shape = (448, 800)
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=4),
    dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
    dict(type='PointShuffle'),
    dict(type='ValidateImages'),  # complete files, 3 channels, size agrees with cam2img
    dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=len(cam_names)),
    dict(type='MultiViewImageAug', final_shape=img_final_shape, scale_range=(1.0, 1.2), crop_mode='random',
         flip_ratio=0.5, pad_size_divisor=32),
    dict(type='ProjectPointsToCameras', min_depth=1.0),
    dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5,
         identity_first_view=True),
    dict(type='PackPairedSceneInputs'),
]
train_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='nuscenes_infos_train.pkl', cam_names=cam_names,
                 data_prefix=dict(pts='samples/LIDAR_TOP', **{c: f'samples/{c}' for c in cam_names}),
                 pipeline=train_pipeline))
