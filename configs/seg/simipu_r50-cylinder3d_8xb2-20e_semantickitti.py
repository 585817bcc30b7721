# SimIPU pretraining of the stock Cylinder3D voxel encoder + backbone (the wheel's cylinder3d_4xb4-3x_semantickitti.py:
# SegVFE 64-128-256-256, Asymm3DSpconv base 32, grid 480 x 360 x 32) with ResNet-50 on SemanticKITTI image_2.
_base_ = ['./simipu_r50-minkunet34-w32_8xb2-20e_semantickitti.py']

grid_shape = [480, 360, 32]
model = dict(
    data_preprocessor=dict(
        _delete_=True,
        type='PairedSegDataPreprocessor',
        voxel=True,
        voxel_type='cylindrical',
        voxel_layer=dict(grid_shape=grid_shape, point_cloud_range=[0, -3.14159265359, -4, 50, 3.14159265359, 2],
                         max_num_points=-1, max_voxels=-1),
        mean=[103.530, 116.280, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    voxel_encoder=dict(type='SegVFEAnyDevice', feat_channels=[64, 128, 256, 256], in_channels=6, with_voxel_center=True,
                       feat_compression=16, return_point_feats=False),
    backbone=dict(_delete_=True, type='Asymm3DSpconv', grid_size=grid_shape, input_channels=16, base_channels=32,
                  norm_cfg=dict(type='BN1d', eps=1e-5, momentum=0.1)),
    backbone_channels=128)
