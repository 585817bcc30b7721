# Cross-MoST (Dharmasiri et al., CVPRW 2024) on ModelNet40: label-free self-training of a CLIP ViT-B/16 image
# encoder and a Point-BERT point encoder, starting from CLIP zero-shot (class-name text embeddings with prompt
# templates). The train split is used WITHOUT labels (the pseudo-label monitor hook only reads them); evaluation on
# the test split reports the point, image and combined 2D+3D accuracy.
#
# Local files only (nothing is downloaded):
#   data/modelnet40_ply_hdf5_2048/   ModelNet40 h5 (+ shape_names.txt)
#   data/modelnet40_views/<split>/<row:05d>/*.png   rendered views of each object (row = row in the split)
#   an open_clip ViT-B-16 checkpoint file (e.g. open_clip_pytorch_model.bin of the OpenAI weights), and optionally a
#   ULIP-style Point-BERT checkpoint aligned to that CLIP (point encoder weights under ``point_encoder.``).
#
#   python tools/train.py configs/crossmost/crossmost_vit-b16-pointbert_1xb32-25e_modelnet40.py \
#       --cfg-options model.img_encoder.pretrained=/path/to/ViT-B-16/open_clip_pytorch_model.bin \
#       [model.point_encoder.init_cfg.checkpoint=/path/to/ulip_pointbert.pth]
#   (an OpenAI-format file instead: model.img_encoder.model_name=None model.img_encoder.openai_checkpoint=...;
#    an open_clip hub-layout folder: model.img_encoder.model_name=None model.img_encoder.local_dir=...)
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)
default_scope = 'mmdet3d'

data_root = 'data/modelnet40_ply_hdf5_2048'
views_dir = '../modelnet40_views'
class_names = ('airplane', 'bathtub', 'bed', 'bench', 'bookshelf', 'bottle', 'bowl', 'car', 'chair', 'cone', 'cup',
               'curtain', 'desk', 'door', 'dresser', 'flower_pot', 'glass_box', 'guitar', 'keyboard', 'lamp',
               'laptop', 'mantel', 'monitor', 'night_stand', 'person', 'piano', 'plant', 'radio', 'range_hood',
               'sink', 'sofa', 'stairs', 'stool', 'table', 'tent', 'toilet', 'tv_stand', 'vase', 'wardrobe', 'xbox')
img_size = 224
num_points = 1024
embed_dim = 512  # CLIP ViT-B/16 image-text space

model = dict(
    type='CrossMoST',
    data_preprocessor=dict(type='ObjectDataPreprocessor', mean=(0., 0., 0.), std=(255., 255., 255.)),
    img_encoder=dict(type='CLIPViTEncoder', model_name='ViT-B-16', pretrained=None, image_size=img_size),
    # ULIP's Point-BERT layout (512 groups of 32, 256-d group tokens reduced to 384, positions added before every
    # block), so tools/model_converters/ulip_pointbert_to_mmxmodal.py weights load with CheckedPretrained
    point_encoder=dict(type='PointTransformerEncoder', num_groups=512, group_size=32, embed_dims=384, depth=12,
                       num_heads=6, out_channels=embed_dim, group_dims=256, pos_every_block=True),
    classifier=dict(type='PrototypeClassifier', num_classes=len(class_names), in_channels=embed_dim,
                    logit_scale=100.0, learnable_scale=False),
    embed_dim=embed_dim,
    class_names=class_names,
    classifier_init='text',
    pseudo_label=dict(mode='joint', threshold=0.5, point_weight=1.0),
    loss_pl=dict(type='PseudoLabelCELoss', loss_weight=1.0),
    loss_fair=dict(type='FairnessLoss', loss_weight=1.0, gather_distributed=True),
    loss_align=dict(type='CrossModalAlignmentLoss', temperature=0.07, gather_distributed=True, loss_weight=1.0),
    loss_mim=dict(type='MaskedImageModelingLoss', loss_weight=1.0),
    loss_mpm=dict(type='MaskedPointModelingLoss', loss_weight=1.0),
    img_mask_ratio=0.3,
    pts_mask_ratio=0.3,
    test_fusion='prob')

weak_point_aug = dict(type='ObjectPointAugment', normalize=True, scale_range=(0.9, 1.1), rot_range=None,
                      translate_range=0.0, jitter_std=0.005, jitter_clip=0.02, dropout_max_ratio=0.0)
# CrossPoint's point augmentation (scale, rotation about the up axis, translation, jitter, dropout) + local crop
strong_point_aug = dict(type='ObjectPointAugment', normalize=True)
train_pipeline = [
    dict(type='LoadObjectPoints', num_points=num_points),
    dict(type='LoadRenderedImage', choice='random'),
    dict(type='WeakStrongViews',
         weak=[dict(type='RandomResizedCropFlip', size=img_size, scale=(0.9, 1.0), flip_prob=0.5),
               weak_point_aug],
         strong=[dict(type='RandomResizedCropFlip', size=img_size, scale=(0.5, 1.0), flip_prob=0.5),
                 dict(type='ObjectRandAugment', num_ops=2, magnitude=9),
                 strong_point_aug,
                 dict(type='RandomPointCrop', ratio=(0.6, 1.0), prob=0.5)]),
    dict(type='PackObjectInputs', keys=('points', 'img')),
]
test_pipeline = [
    dict(type='LoadObjectPoints', num_points=num_points),
    dict(type='LoadRenderedImage', choice='first'),
    dict(type='RandomResizedCropFlip', size=img_size, scale=(1.0, 1.0), flip_prob=0.0),
    dict(type='ObjectPointAugment', normalize=True, scale_range=None, rot_range=None, translate_range=0.0,
         jitter_std=0.0, dropout_max_ratio=0.0),
    dict(type='PackObjectInputs', keys=('points', 'img')),
]
train_dataloader = dict(
    batch_size=32, num_workers=8, persistent_workers=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='ModelNet40Dataset', data_root=data_root, split='train', views_dir=views_dir,
                 pipeline=train_pipeline, on_error='skip'))  # bad samples: warning + counter
val_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='ModelNet40Dataset', data_root=data_root, split='test', views_dir=views_dir,
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='BranchAccuracy', branches=('pts', 'img', 'combined'))
test_evaluator = val_evaluator

max_epochs = 25
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-5, weight_decay=0.05),
                     paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=10.0, decay_mult=0.0)}),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=300),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-7, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=32)

custom_hooks = [
    # teacher decay 0.99 -> 0.9998 over the first 2000 iterations (~6.5 epochs of ModelNet40 at batch 32)
    dict(type='EMATeacherHook', decay_start=0.99, decay_end=0.9998, ramp_iters=2000, update_buffers=True),
    dict(type='PseudoLabelMonitorHook'),
    # reliability (docs/reliability.md): skipped-sample counter, NaN/Inf guard, exact --resume
    dict(type='SkippedSamplesHook'),
    dict(type='NaNGuardHook', action='skip', max_skips=20),
    dict(type='RNGStateHook'),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3, save_best='cls/combined_acc',
                    rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
