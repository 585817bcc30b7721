# SimIPU pretraining of the embedded MinkUNet-18 (w16) on the embedded SemanticKITTI root, LiDAR + image_2
# (P2, Tr from calib.txt, via the infos of `tools/create_synthetic_data.py semantickitti`). Label-free: only the
# train sequences' scans and images are read. The downstream configs of the transfer protocol
# (configs/finetune/minkunet18-w16_spconv_*_synthetic-semantickitti*.py) load its backbone.* weights.
#   python tools/create_synthetic_data.py semantickitti --out-dir data/synthetic-semantickitti
#   python tools/train.py configs/seg/simipu_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py
_base_ = ['./simipu_r18-minkunet18-w16_1xb2-2e_synthetic-nuscenes.py']

data_root = 'data/synthetic-semantickitti/'
img_final_shape = (160, 544)  # 188 x 621 (x 1.0-1.2) -> crop 160 x 544
backend_args = None
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4, backend_args=backend_args),
    dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
    dict(type='PointShuffle'),
    dict(type='ValidateImages'),  # complete files, 3 channels, size agrees with cam2img
    dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=1, backend_args=backend_args),
    dict(type='MultiViewImageAug', final_shape=img_final_shape, scale_range=(1.0, 1.2), crop_mode='random',
         flip_ratio=0.5, pad_size_divisor=32),
    dict(type='ProjectPointsToCameras', min_depth=1.0),
    dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5,
         identity_first_view=True),
    dict(type='PackPairedSceneInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='PairedSceneDataset',
        data_root=data_root,
        ann_file='semantickitti_infos_train.pkl',
        data_prefix=dict(pts='', img=''),
        cam_names=['CAM2'],
        load_sweeps=False,
        on_error='skip',
        pipeline=train_pipeline))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)
