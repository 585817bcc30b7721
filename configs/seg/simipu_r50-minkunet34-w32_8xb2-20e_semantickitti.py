# SimIPU pretraining of the stock MinkUNet-34 (w32, spconv; the backbone of the wheel's
# minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py) with ResNet-50 on SemanticKITTI sequences
# 00-07, 09, 10: LiDAR + image_2 (P2, Tr) from the project's SemanticKITTI infos with cameras
# (mmxmodal.datasets.converters.semantickitti.create_semantickitti_infos works on a real root too).
_base_ = ['./simipu_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py']

data_root = 'data/semantickitti/'
img_final_shape = (352, 1216)  # 370-376 x 1226-1241 -> crop 352 x 1216
model = dict(
    data_preprocessor=dict(voxel_layer=dict(voxel_size=[0.05, 0.05, 0.05])),
    img_backbone=dict(_delete_=True, type='mmdet.ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                      frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                      style='caffe'),
    img_feat_channels=(256, 512, 1024, 2048),
    backbone=dict(base_channels=32, encoder_channels=[32, 64, 128, 256], encoder_blocks=[2, 3, 4, 6],
                  decoder_channels=[256, 128, 96, 96], decoder_blocks=[2, 2, 2, 2]),
    backbone_channels=96,
    point_proj=dict(type='ContrastProjectionHead', hidden_channels=(256, ), out_channels=128),
    loss_intra=dict(max_pairs=4096),
    loss_inter=dict(max_pairs=4096),
    max_pairs_intra=4096,
    max_pairs_inter=4096)
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4),
    dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
    dict(type='PointShuffle'),
    dict(type='ValidateImages'),  # complete files, 3 channels, size agrees with cam2img
    dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=1),
    dict(type='MultiViewImageAug', final_shape=img_final_shape, scale_range=(1.0, 1.2), crop_mode='random',
         flip_ratio=0.5, pad_size_divisor=32),
    dict(type='ProjectPointsToCameras', min_depth=1.0),
    dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5,
         identity_first_view=True),
    dict(type='PackPairedSceneInputs'),
]
train_dataloader = dict(num_workers=4, persistent_workers=True,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=2e-3))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
default_hooks = dict(logger=dict(type='LoggerHook', interval=50))
log_processor = dict(window_size=50)
