# SimIPU on KITTI (LiDAR + CAM2, no labels) with a PointNet++ (mmdet3d PointNet2SASSG) LiDAR encoder,
# 8 GPUs x 4 samples, 20 epochs. PointNet++ features of the last FP level (1024 points) are propagated to every
# input point by three-nn interpolation; positives are the same point indices in both views.
#   bash tools/dist_train.sh configs/simipu/simipu_r50-caffe_pointnet2-ssg_8xb4-20e_kitti.py 8
_base_ = ['../_base_/datasets/kitti-paired-pretrain.py', 'mmdet3d::_base_/default_runtime.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

model = dict(
    type='SimIPU',
    data_preprocessor=dict(
        type='PairedSceneDataPreprocessor',
        mean=[103.530, 116.280, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='caffe'),
    img_feat_levels=(0, 1, 2, 3),
    img_feat_channels=(256, 512, 1024, 2048),
    pts_backbone=dict(
        type='PointNet2SASSG',
        in_channels=4,  # x, y, z, reflectance
        num_points=(4096, 1024, 256, 64),
        radius=(0.8, 1.6, 3.2, 6.4),
        num_samples=(32, 32, 32, 32),
        sa_channels=((64, 64, 128), (128, 128, 256), (128, 128, 256), (128, 128, 256)),
        fp_channels=((256, 256), (256, 256)),
        norm_cfg=dict(type='BN2d'),
        sa_cfg=dict(type='PointSAModule', pool_mod='max', use_xyz=True, normalize_xyz=True)),
    pts_feat_channels=256,
    point_proj=dict(type='ContrastProjectionHead', hidden_channels=(512, ), out_channels=128),
    loss_intra=dict(type='SampledInfoNCELoss', temperature=0.07, max_pairs=4096, gather_distributed=True),
    loss_inter=dict(type='SampledInfoNCELoss', temperature=0.07, max_pairs=4096, gather_distributed=True,
                    symmetric=True),
    max_pairs_intra=4096,
    max_pairs_inter=4096)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', T_max=20, eta_min=1e-5, by_epoch=True, begin=0, end=20),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
default_hooks = dict(
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3))
