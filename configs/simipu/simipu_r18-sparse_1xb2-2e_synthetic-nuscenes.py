# SimIPU on the embedded nuScenes-format root: ResNet-18 (caffe style) + CenterPoint's sparse voxel encoder
# (same block layout as centerpoint_voxel01, on a coarser 0.512 m grid), 6 cameras at 96 x 160, 1 process x 2.
# A demo / acceptance run of a few minutes on 2 CPU cores:
#   python tools/train.py configs/simipu/simipu_r18-sparse_1xb2-2e_synthetic-nuscenes.py
_base_ = ['../_base_/datasets/synthetic-nuscenes-paired.py', 'mmdet3d::_base_/default_runtime.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

point_cloud_range = [-40.96, -40.96, -5.0, 40.96, 40.96, 3.0]
voxel_size = [0.512, 0.512, 0.2]  # grid 160 x 160 x 40 -> sparse_shape [41, 160, 160] (z + 1, as SECOND)

model = dict(
    type='SimIPU',
    data_preprocessor=dict(
        type='PairedSceneDataPreprocessor',
        voxel=True,
        voxel_layer=dict(
            max_num_points=10, voxel_size=voxel_size, point_cloud_range=point_cloud_range,
            max_voxels=(40000, 40000)),
        mean=[103.530, 116.280, 123.675],  # caffe-style BGR mean, as FCOS3D
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),  # trained here; frozen by the detectors
        norm_eval=False,
        style='caffe'),
    img_feat_levels=(0, 1, 2, 3),
    img_feat_channels=(64, 128, 256, 512),
    pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
    pts_middle_encoder=dict(
        type='SparseEncoder',
        in_channels=5,
        sparse_shape=[41, 160, 160],
        output_channels=128,
        order=('conv', 'norm', 'act'),
        encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)),
        block_type='basicblock'),
    # point features: input voxel (stride 1), stages 1-2 (stride 2, 4) and the BEV map (stride 8)
    sparse_point_sources=('conv_input', 'encoder_layer1', 'encoder_layer2', 'bev'),
    point_proj=dict(type='ContrastProjectionHead', hidden_channels=(256, ), out_channels=128),
    loss_intra=dict(type='SampledInfoNCELoss', temperature=0.07, max_pairs=512, gather_distributed=True),
    loss_inter=dict(type='SampledInfoNCELoss', temperature=0.07, max_pairs=512, gather_distributed=True,
                    symmetric=True),
    max_pairs_intra=512,  # positives per process and step (chance top-1: 1 / (512 x processes))
    max_pairs_inter=512)

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
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1))
log_processor = dict(type='LogProcessor', window_size=1, by_epoch=True)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
