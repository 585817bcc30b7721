# SimIPU pretraining of a Cylinder3D backbone (mmdet3d SegVFE + Asymm3DSpconv) with ResNet-18 on the embedded
# nuScenes-format root, six cameras. Embedded variant: base_channels 16 (stock 32), the stock cylindrical grid
# 480 x 360 x 32 over rho 0-50 m, phi -pi..pi, z -4..2 m. Weights: voxel_encoder.* and backbone.*.
#   python tools/train.py configs/seg/simipu_r18-cylinder3d-w16_1xb2-2e_synthetic-nuscenes.py
_base_ = ['./simipu_r18-minkunet18-w16_1xb2-2e_synthetic-nuscenes.py']

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
    voxel_encoder=dict(
        type='SegVFEAnyDevice', feat_channels=[32, 64, 128, 128], in_channels=6, with_voxel_center=True,
        feat_compression=16, return_point_feats=False),
    backbone=dict(
        _delete_=True,
        type='Asymm3DSpconv',
        grid_size=grid_shape,
        input_channels=16,
        base_channels=16,
        norm_cfg=dict(type='BN1d', eps=1e-5, momentum=0.1)),
    backbone_channels=64)  # 4 x base_channels: DDCM output concatenated with the last up block
