# SimIPU on KITTI with SECOND's sparse voxel encoder (second_hv_secfpn_kitti: 0.05 m voxels, SparseEncoder with
# 4 input features), so that ``pts_middle_encoder.*`` loads into SECOND's ``middle_encoder``
# (configs/finetune/second_hv_secfpn_8xb6-80e_kitti-3d-3class_simipu.py).
#   bash tools/dist_train.sh configs/simipu/simipu_r50-caffe_second-sparse_8xb4-20e_kitti.py 8
_base_ = ['./simipu_r50-caffe_pointnet2-ssg_8xb4-20e_kitti.py']

point_cloud_range = [0, -40, -3, 70.4, 40, 1]
voxel_size = [0.05, 0.05, 0.1]

model = dict(
    data_preprocessor=dict(
        voxel=True,
        voxel_layer=dict(
            max_num_points=5, point_cloud_range=point_cloud_range, voxel_size=voxel_size,
            max_voxels=(16000, 40000))),
    pts_backbone=None,
    pts_feat_channels=None,
    pts_voxel_encoder=dict(type='HardSimpleVFE'),
    pts_middle_encoder=dict(
        type='SparseEncoder', in_channels=4, sparse_shape=[41, 1600, 1408], order=('conv', 'norm', 'act')),
    sparse_point_sources=('conv_input', 'encoder_layer1', 'encoder_layer2', 'bev'))

# the sparse branch takes every point (no fixed-size PointSample)
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4),
    dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ValidatePoints', check_finite=False, min_points=1, stage='after PointsRangeFilter'),
    dict(type='PointShuffle'),
    dict(type='ValidateImages'),  # complete files, 3 channels, size agrees with cam2img
    dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=1),
    dict(type='MultiViewImageAug', final_shape=(352, 1216), scale_range=(1.0, 1.2), crop_mode='random',
         flip_ratio=0.5, pad_size_divisor=32),
    dict(type='ProjectPointsToCameras', min_depth=1.0),
    dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5,
         identity_first_view=True),
    dict(type='PackPairedSceneInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
