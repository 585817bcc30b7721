# CenterPoint (the wheel's centerpoint_voxel01 config) on the embedded nuScenes root, for the label-efficiency
# comparison of SimIPU: the SparseEncoder is the one of configs/simipu/simipu_r18-sparse_1xb2-2e_synthetic-nuscenes.py
# (0.512 m voxels, sparse_shape [41, 160, 160], stock channels) and is initialised from its checkpoint; 10 % of the
# 30 train samples are labelled (LabelFractionDataset, seed 0); no GT-sampling (it would paste objects of the
# unlabelled 90 %). Scratch baseline: the same command with --cfg-options model.init_cfg=None.
#   python tools/train.py configs/finetune/centerpoint_voxel0512_second_secfpn_1xb2-40e_synthetic-nuscenes-3d_simipu.py
# or both runs and the table: python tools/label_efficiency.py --help
_base_ = ['mmdet3d::centerpoint/centerpoint_voxel01_second_secfpn_8xb4-cyclic-20e_nus-3d.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

data_root = 'data/synthetic_nuscenes/'
pretrained = 'work_dirs/simipu_r18-sparse_1xb2-2e_synthetic-nuscenes/epoch_2.pth'
label_ratio = 0.1
max_epochs = 40
point_cloud_range = [-40.96, -40.96, -5.0, 40.96, 40.96, 3.0]
voxel_size = [0.512, 0.512, 0.2]
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle', 'bicycle', 'pedestrian',
    'traffic_cone'
]
data_prefix = dict(pts='samples/LIDAR_TOP', img='', sweeps='sweeps/LIDAR_TOP')

model = dict(
    init_cfg=dict(
        type='Constant', val=0.0, layer=[],
        override=dict(type='CheckedPretrained', name='pts_middle_encoder', checkpoint=pretrained,
                      prefix='pts_middle_encoder.')),
    data_preprocessor=dict(
        voxel_layer=dict(max_num_points=10, voxel_size=voxel_size, point_cloud_range=point_cloud_range,
                         max_voxels=(40000, 40000))),
    pts_middle_encoder=dict(sparse_shape=[41, 160, 160]),
    pts_bbox_head=dict(
        bbox_coder=dict(pc_range=point_cloud_range[:2], voxel_size=voxel_size[:2], max_num=100,  # 20 x 20 BEV
                        post_center_range=[-50.0, -50.0, -10.0, 50.0, 50.0, 10.0])),
    train_cfg=dict(pts=dict(grid_size=[160, 160, 40], voxel_size=voxel_size, point_cloud_range=point_cloud_range)),
    test_cfg=dict(pts=dict(pc_range=point_cloud_range[:2], voxel_size=voxel_size[:2], max_per_img=100,
                           pre_max_size=100, post_center_limit_range=[-50.0, -50.0, -10.0, 50.0, 50.0, 10.0])))

train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=1, use_dim=[0, 1, 2, 3, 4], pad_empty_sweeps=True,
         remove_close=True),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='GlobalRotScaleTrans', rot_range=[-0.3925, 0.3925], scale_ratio_range=[0.95, 1.05],
         translation_std=[0, 0, 0]),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5, flip_ratio_bev_vertical=0.5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes=class_names),
    dict(type='PointShuffle'),
    dict(type='Pack3DDetInputs', keys=['points', 'gt_bboxes_3d', 'gt_labels_3d'])
]
test_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=1, use_dim=[0, 1, 2, 3, 4], pad_empty_sweeps=True,
         remove_close=True, test_mode=True),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='Pack3DDetInputs', keys=['points'])
]
train_dataloader = dict(
    _delete_=True,
    batch_size=2,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='LabelFractionDataset',
        ratio=label_ratio,
        seed=0,
        dataset=dict(type='NuScenesDataset', data_root=data_root, ann_file='nuscenes_infos_train.pkl',
                     pipeline=train_pipeline, metainfo=dict(classes=class_names), test_mode=False,
                     data_prefix=data_prefix, use_valid_flag=True, box_type_3d='LiDAR')))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='nuscenes_infos_val.pkl', pipeline=test_pipeline,
                 data_prefix=data_prefix, metainfo=dict(classes=class_names, version='v1.0-mini')))
test_dataloader = val_dataloader
val_evaluator = dict(type='NuScenesMetric', data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl',
                     metric='bbox')
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=2e-5, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=max_epochs))
log_processor = dict(type='LogProcessor', window_size=5, by_epoch=True)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
