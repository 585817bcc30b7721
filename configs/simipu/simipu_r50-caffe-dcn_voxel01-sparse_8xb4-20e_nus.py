# SimIPU on nuScenes (LiDAR + all six cameras, no labels), 8 GPUs x 4 samples, 20 epochs.
# Encoders are exactly the downstream ones, so the checkpoint loads without conversion:
#   img_backbone.*        -> FCOS3D backbone (ResNet-50 caffe + DCNv2 in stages 3-4; stock FCOS3D is R-101, see
#                            configs/finetune/fcos3d_r50-caffe-dcn_fpn_head-gn_8xb2-1x_nus-mono3d_simipu.py)
#   pts_middle_encoder.*  -> CenterPoint voxel0.1 SparseEncoder (configs/finetune/centerpoint_voxel01_...)
# Point features: point-to-voxel index maps into the input voxels, stages 1-2 and the BEV map of the encoder.
#   bash tools/dist_train.sh configs/simipu/simipu_r50-caffe-dcn_voxel01-sparse_8xb4-20e_nus.py 8
_base_ = ['../_base_/datasets/nus-paired-pretrain.py', 'mmdet3d::_base_/default_runtime.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.1, 0.1, 0.2]

model = dict(
    type='SimIPU',
    data_preprocessor=dict(
        type='PairedSceneDataPreprocessor',
        voxel=True,
        voxel_layer=dict(
            max_num_points=10, voxel_size=voxel_size, point_cloud_range=point_cloud_range,
            max_voxels=(90000, 120000)),
        mean=[103.530, 116.280, 123.675],  # FCOS3D's caffe-style BGR normalisation
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),  # trained here; FCOS3D freezes it
        norm_eval=False,
        style='caffe',
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, False, True, True)),
    # to start from ImageNet instead of scratch:
    # img_backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://detectron2/resnet50_caffe'))
    img_feat_levels=(0, 1, 2, 3),
    img_feat_channels=(256, 512, 1024, 2048),
    pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
    pts_middle_encoder=dict(  # centerpoint_voxel01_second_secfpn_nus
        type='SparseEncoder',
        in_channels=5,
        sparse_shape=[41, 1024, 1024],
        output_channels=128,
        order=('conv', 'norm', 'act'),
        encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)),
        block_type='basicblock'),
    sparse_point_sources=('conv_input', 'encoder_layer1', 'encoder_layer2', 'bev'),
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
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=1000),
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
auto_scale_lr = dict(enable=False, base_batch_size=32)
