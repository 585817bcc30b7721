# CrossPoint pretraining data: ShapeNetRender (ShapeNet point clouds + one random ShapeNetRendering view), with a
# linear-SVM probe on ModelNet40 (fit on train, score on test) in the val loop, as CrossPoint checks every epoch.
#   data/shapenet_render/ShapeNet/<synset>/<id>.ply, data/shapenet_render/ShapeNetRendering/<synset>/<id>/rendering/
#   data/modelnet40_ply_hdf5_2048/ply_data_{train,test}*.h5
dataset_type = 'ShapeNetRenderDataset'
data_root = 'data/shapenet_render/'
probe_root = 'data/modelnet40_ply_hdf5_2048/'
backend_args = None

# CrossPoint's point augmentation (datasets/data.py trans_1 / trans_2), two independent views.
point_views = dict(
    type='ObjectPointViews',
    num_views=2,
    normalize=True,
    scale_range=(0.5, 2.0),
    rot_range=(0.0, 6.283185307179586),
    up_axis=1,  # y-up (ShapeNet)
    translate_range=0.5,
    translate_mode='extent',
    jitter_std=0.01,
    jitter_clip=0.05,
    dropout_max_ratio=0.875)
train_pipeline = [
    dict(type='LoadObjectPoints', backend_args=backend_args),
    dict(type='LoadRenderedImage', choice='random', backend_args=backend_args),
    point_views,
    # torchvision Resize((224, 224)) -> ColorJitter(0.4, 0.4, 0.4) -> RandomHorizontalFlip, as train_crosspoint.py
    dict(type='mmdet.Resize', scale=(224, 224), keep_ratio=False),
    dict(type='RandomColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='mmdet.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackObjectInputs', keys=['points', 'img']),
]
# Probe: the first 1024 points of each ModelNet40 cloud, no augmentation (ModelNet40SVM).
probe_pipeline = [
    dict(type='LoadObjectPoints', num_points=1024, backend_args=backend_args),
    dict(type='PackObjectInputs', keys=['points']),
]

train_dataloader = dict(
    batch_size=20,
    num_workers=4,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # on_error='skip': a bad sample is skipped (warning naming the file + counter), see docs/reliability.md
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline, on_error='skip'))
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='SplitConcatDataset',
        splits=('train', 'test'),
        datasets=[
            dict(type='ModelNet40Dataset', data_root=probe_root, split='train', pipeline=probe_pipeline,
                 test_mode=True),
            dict(type='ModelNet40Dataset', data_root=probe_root, split='test', pipeline=probe_pipeline,
                 test_mode=True),
        ]))
test_dataloader = val_dataloader
# CrossPoint: sklearn SVC(C=0.1, kernel='linear') on the 2048-d features.
val_evaluator = dict(type='LinearSVMMetric', C=0.1, classifier='svc')
test_evaluator = val_evaluator

# Reliability (docs/reliability.md): bad samples are skipped with a logged warning and counted
# (train/skipped_samples), NaN/Inf losses skip the step (named terms and samples; stop after 20), and the random
# generators are saved with each checkpoint so that --resume repeats the uninterrupted run exactly.
custom_hooks = [
    dict(type='SkippedSamplesHook'),
    dict(type='NaNGuardHook', action='skip', max_skips=20),
    dict(type='RNGStateHook'),
]
