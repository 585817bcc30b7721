# Cross-MoST on the embedded synthetic objects (CPU, about 4 min): label-free self-training of a tiny
# CLIP-format ViT (random init, written by tools/make_tiny_clip.py) and a small DGCNN on the 12-class synthetic
# ModelNet40-layout set. Training uses the train split WITHOUT labels (labels are read only by the pseudo-label
# monitor); the test split is the held-out evaluation. A random CLIP's text tower is meaningless, so the start
# classifier (a0) is made by tools/crossmost_synthetic_acceptance.py from 1 labelled shot per class (class-mean
# prototypes of image + point embeddings, tools/crossmost_init_classifier.py) after a 2-epoch label-free
# image-point alignment warm-up; this config starts from that checkpoint (load_from). Encoders trained from scratch
# get BN projection heads and a per-modality standardisation of the shared embedding (embed_norm) so one cosine
# classifier can serve both; point_weight=2 lets the (much stronger) point teacher win the joint pseudo-labels;
# dist_align divides the teachers' probabilities by their running class means before the rule, so the classes a
# 1-shot start over-predicts do not swallow the others; the combined classifier applies the same joint rule.
# Measured acceptance (seeds 0-2): docs/crossmost.md ("Acceptance status").
#
#   python tools/crossmost_synthetic_acceptance.py --work-dir work_dirs/crossmost_acceptance
#   (generates the data and the tiny CLIP itself; or by hand:
#    python tools/create_synthetic_data.py objects --out-dir data/synthetic_objects_crossmost --num-objects 12 \
#        --num-views 2 --cls-train-per-class 40 --cls-test-per-class 20 --cls-views 4 --image-size 64 \
#        --num-points 1024 --no-scanobjectnn --seed 0
#    python tools/make_tiny_clip.py --out-dir data/tiny_clip)
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)
default_scope = 'mmdet3d'

data_root = 'data/synthetic_objects_crossmost/modelnet40_ply_hdf5_2048'
views_dir = '../modelnet40_views'
clip_dir = 'data/tiny_clip'
class_names = ('airplane', 'bed', 'bottle', 'car', 'chair', 'guitar', 'lamp', 'laptop', 'monitor', 'mug', 'sofa',
               'table')
img_size = 64  # the renders' own size (the tiny ViT sees 8 x 8 patches of 8 px)
num_points = 256
embed_dim = 64

model = dict(
    type='CrossMoST',
    data_preprocessor=dict(type='ObjectDataPreprocessor', mean=(0., 0., 0.), std=(255., 255., 255.)),
    img_encoder=dict(type='CLIPViTEncoder', local_dir=clip_dir, image_size=img_size),
    point_encoder=dict(type='DGCNNEncoder', k=10, edge_channels=(32, 32, 64, 64), emb_dims=128),
    # encoders trained from scratch: BN projection heads into the shared space (CLIP keeps its own projection)
    img_proj=dict(type='ProjectionHead', in_channels=64, hidden_channels=128, out_channels=embed_dim),
    point_proj=dict(type='ProjectionHead', in_channels=256, hidden_channels=128, out_channels=embed_dim),
    classifier=dict(type='PrototypeClassifier', num_classes=len(class_names), in_channels=embed_dim,
                    logit_scale=30.0, learnable_scale=False),
    embed_dim=embed_dim,
    embed_norm=True,
    dist_align=0.8,  # momentum of the running class means of each teacher
    class_names=class_names,
    classifier_init='none',
    # threshold 1.0 with point_weight 2: a label needs a point-teacher probability > 0.5 (an image-teacher score can
    # never pass it: the image teacher, far weaker here, only vetoes samples where it is the more confident one)
    pseudo_label=dict(mode='joint', threshold=1.0, point_weight=2.0),
    loss_pl=dict(type='PseudoLabelCELoss', loss_weight=1.0),
    loss_fair=dict(type='FairnessLoss', loss_weight=0.3),
    loss_align=dict(type='CrossModalAlignmentLoss', temperature=0.1, gather_distributed=True, loss_weight=1.0),
    loss_mim=dict(type='MaskedImageModelingLoss', loss_weight=0.5),
    loss_mpm=dict(type='MaskedPointModelingLoss', loss_weight=0.5),
    img_mask_ratio=0.25,
    pts_mask_ratio=0.25,
    mpm_groups=(16, 16),
    test_fusion='joint')

weak_point_aug = dict(type='ObjectPointAugment', normalize=True, scale_range=(0.9, 1.1), rot_range=None,
                      translate_range=0.0, jitter_std=0.005, jitter_clip=0.02, dropout_max_ratio=0.0)
strong_point_aug = dict(type='ObjectPointAugment', normalize=True, scale_range=(0.8, 1.25),
                        rot_range=(-0.25, 0.25), translate_range=0.1, jitter_std=0.01, jitter_clip=0.05,
                        dropout_max_ratio=0.3)
train_pipeline = [
    dict(type='LoadObjectPoints', num_points=num_points),
    dict(type='LoadRenderedImage', choice='random'),
    dict(type='WeakStrongViews',
         weak=[dict(type='RandomResizedCropFlip', size=img_size, scale=(0.8, 1.0), flip_prob=0.5),
               weak_point_aug],
         strong=[dict(type='RandomResizedCropFlip', size=img_size, scale=(0.7, 1.0), flip_prob=0.5),
                 dict(type='ObjectRandAugment', num_ops=1, magnitude=5, prob=0.5),
                 strong_point_aug,
                 dict(type='RandomPointCrop', ratio=(0.7, 1.0), prob=0.5)]),
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
    batch_size=16, num_workers=0, persistent_workers=False, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='ModelNet40Dataset', data_root=data_root, split='train', views_dir=views_dir,
                 pipeline=train_pipeline, on_error='skip'))  # bad samples: warning + counter
val_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='ModelNet40Dataset', data_root=data_root, split='test', views_dir=views_dir,
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='BranchAccuracy', branches=('pts', 'img', 'combined'))
test_evaluator = val_evaluator

max_epochs = 20
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=5.0))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5, by_epoch=True, begin=0,
                        end=max_epochs)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

custom_hooks = [
    dict(type='EMATeacherHook', decay_start=0.99, decay_end=0.9998, ramp_iters=1000, update_buffers=True),
    dict(type='PseudoLabelMonitorHook'),
    # reliability (docs/reliability.md): skipped-sample counter, NaN/Inf guard, exact --resume
    dict(type='SkippedSamplesHook'),
    dict(type='NaNGuardHook', action='skip', max_skips=20),
    dict(type='RNGStateHook'),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=5),
    param_scheduler=dict(type='ParamSchedulerHook'),
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=max_epochs, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(type='LogProcessor', window_size=5, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
