# SimIPU-Seg with SLidR's superpixel-driven contrast added (embedded SemanticKITTI, MinkUNet-18 w16 + ResNet-18):
# SLIC superpixels of every image_2 frame (scikit-image, computed once and cached under `superpixel_cache`), carried
# through the image augmentation; point and pixel embeddings are averaged per superpixel and contrasted
# (`loss_superpixel`) besides SimIPU's point-pixel and intra-modal terms. Everything else is the base config.
#   python tools/train.py configs/seg/simipu-slic_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py
_base_ = ['./simipu_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py']

superpixel_cache = 'data/synthetic-semantickitti/superpixels_slic150'
model = dict(loss_superpixel=dict(type='SampledInfoNCELoss', temperature=0.07, max_pairs=None,
                                  gather_distributed=True))


img_final_shape = (160, 544)  # 188 x 621 (x 1.0-1.2) -> crop 160 x 544
backend_args = None
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4, backend_args=backend_args),
    dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
    dict(type='PointShuffle'),
    dict(type='ValidateImages'),  # complete files, 3 channels, size agrees with cam2img
    dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=1, backend_args=backend_args),
    dict(type='LoadSuperpixels', n_segments=150, compactness=10.0, cache_dir=superpixel_cache),  # before the aug
    dict(type='MultiViewImageAug', final_shape=img_final_shape, scale_range=(1.0, 1.2), crop_mode='random',
         flip_ratio=0.5, pad_size_divisor=32),
    dict(type='ProjectPointsToCameras', min_depth=1.0),
    dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5,
         identity_first_view=True),
    dict(type='PackPairedSceneInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
