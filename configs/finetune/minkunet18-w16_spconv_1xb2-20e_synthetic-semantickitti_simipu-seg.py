# Embedded variant of the stock MinkUNet (spconv) SemanticKITTI config for CPU runs: the same code path
# (MinkUNet, MinkUNetBackbone spconv, MinkUNetHead, SemanticKittiDataset, SegMetric), with the backbone of
# configs/seg/simipu_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py (16-128 channels, 2 blocks, 0.1 m
# voxels) initialised from its checkpoint. Train = the train sequences, val = the val sequence (every choice of
# the protocol), test = the held-out test sequence (reported once).
# The preprocessor is SegDet3DDataPreprocessor (= stock Det3DDataPreprocessor whose minkunet voxelisation also
# runs on a CPU). Scratch / random-init arms: --cfg-options model.backbone.init_cfg=None.
#   python tools/train.py configs/finetune/minkunet18-w16_spconv_1xb2-20e_synthetic-semantickitti_simipu-seg.py
_base_ = ['mmdet3d::minkunet/minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

data_root = 'data/synthetic-semantickitti/'
pretrained = 'work_dirs/simipu_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti/epoch_10.pth'
max_epochs = 20
lr = 0.01
backend_args = None

model = dict(
    data_preprocessor=dict(type='SegDet3DDataPreprocessor', voxel_layer=dict(voxel_size=[0.1, 0.1, 0.1])),
    backbone=dict(
        base_channels=16,
        encoder_channels=[16, 32, 64, 128],
        encoder_blocks=[2, 2, 2, 2],
        decoder_channels=[128, 64, 48, 48],
        decoder_blocks=[2, 2, 2, 2],
        init_cfg=dict(type='CheckedPretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(channels=48))

# the stock base pipeline (flip, rotation, scale); no LaserMix / PolarMix, which mix in frames of the whole train
# split (that would break the label fractions)
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4, backend_args=backend_args),
    dict(type='LoadAnnotations3D', with_bbox_3d=False, with_label_3d=False, with_seg_3d=True,
         seg_3d_dtype='np.int32', seg_offset=2**16, dataset_type='semantickitti', backend_args=backend_args),
    dict(type='PointSegClassMapping'),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5, flip_ratio_bev_vertical=0.5),
    dict(type='GlobalRotScaleTrans', rot_range=[0., 6.28318531], scale_ratio_range=[0.95, 1.05],
         translation_std=[0, 0, 0]),
    dict(type='Pack3DDetInputs', keys=['points', 'pts_semantic_mask'])
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='semantickitti_infos_train.pkl', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='semantickitti_infos_val.pkl'))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='semantickitti_infos_test.pkl'))

optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=lr * 0.01, by_epoch=True,
                        begin=0, end=max_epochs)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=5),
                     checkpoint=dict(type='AtomicCheckpointHook', interval=max_epochs, max_keep_ckpts=1),
                     shard_check=dict(type='ShardCheckHook'))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
