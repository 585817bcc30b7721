# SimIPU pretraining of a MinkUNet segmentation backbone (mmdet3d MinkUNetBackbone, spconv) with ResNet-18 on the
# embedded nuScenes-format root, six cameras at 96 x 160. Embedded variant: MinkUNet-18 layout (2 blocks per stage),
# encoder channels 16-128, 0.1 m voxels; the same code path as the full-size configs. A few minutes on 2 CPU cores:
#   python tools/train.py configs/seg/simipu_r18-minkunet18-w16_1xb2-2e_synthetic-nuscenes.py
# Weights: backbone.* (the stock MinkUNet key names), see configs/finetune/*simipu-seg*.py.
_base_ = ['../_base_/datasets/synthetic-nuscenes-paired.py', 'mmdet3d::_base_/default_runtime.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

point_cloud_range = [-40.96, -40.96, -5.0, 40.96, 40.96, 3.0]
img_final_shape = (96, 160)
backend_args = None
seg_voxel_size = [0.1, 0.1, 0.1]

model = dict(
    type='SimIPUSeg',
    data_preprocessor=dict(
        type='PairedSegDataPreprocessor',
        voxel=True,
        voxel_type='minkunet',
        batch_first=True,  # spconv
        max_voxels=None,
        voxel_layer=dict(max_num_points=-1, point_cloud_range=[-100, -100, -20, 100, 100, 20],
                         voxel_size=seg_voxel_size, max_voxels=(-1, -1)),
        mean=[103.530, 116.280, 123.675],  # caffe-style BGR
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    img_backbone=dict(
        type='mmdet.ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='caffe'),
    img_feat_levels=(0, 1, 2, 3),
    img_feat_channels=(64, 128, 256, 512),
    backbone=dict(
        type='MinkUNetBackbone',
        in_channels=4,
        num_stages=4,
        base_channels=16,
        encoder_channels=[16, 32, 64, 128],
        encoder_blocks=[2, 2, 2, 2],
        decoder_channels=[128, 64, 48, 48],
        decoder_blocks=[2, 2, 2, 2],
        block_type='basic',
        sparseconv_backend='spconv'),
    backbone_channels=48,  # last decoder channel
    point_proj=dict(type='ContrastProjectionHead', hidden_channels=(128, ), out_channels=64),
    loss_intra=dict(type='SampledInfoNCELoss', temperature=0.07, max_pairs=512, gather_distributed=True),
    loss_inter=dict(type='SampledInfoNCELoss', temperature=0.07, max_pairs=512, gather_distributed=True,
                    symmetric=True),
    max_pairs_intra=512,
    max_pairs_inter=512)

# 4 features (x, y, z, intensity) as SemanticKITTI's MinkUNet; key frame only
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=4, backend_args=backend_args),
    dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ValidatePoints', check_finite=False, min_points=1, stage='after PointsRangeFilter'),
    dict(type='PointShuffle'),
    dict(type='ValidateImages'),  # complete files, 3 channels, size agrees with cam2img
    dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=6, backend_args=backend_args),
    dict(type='MultiViewImageAug', final_shape=img_final_shape, scale_range=(1.0, 1.2), crop_mode='random',
         flip_ratio=0.5, pad_size_divisor=32),
    dict(type='ProjectPointsToCameras', min_depth=0.5),
    dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5,
         identity_first_view=True),
    dict(type='PackPairedSceneInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, load_sweeps=False))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1),
    shard_check=dict(type='ShardCheckHook'))
log_processor = dict(type='LogProcessor', window_size=1, by_epoch=True)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
