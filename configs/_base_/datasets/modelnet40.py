# ModelNet40 classification (modelnet40_ply_hdf5_2048), DGCNN's fine-tuning protocol: first 1024 points,
# train-time anisotropic scale U(2/3, 3/2) + translation U(-0.2, 0.2) + point shuffle; plain test clouds.
dataset_type = 'ModelNet40Dataset'
data_root = 'data/modelnet40_ply_hdf5_2048/'
num_points = 1024

train_pipeline = [
    dict(type='LoadObjectPoints', num_points=num_points),
    dict(
        type='ObjectPointAugment',
        normalize=False,
        scale_range=(2.0 / 3.0, 3.0 / 2.0),
        anisotropic_scale=True,
        rot_range=None,
        translate_range=0.2,
        translate_mode='absolute',
        jitter_std=0.0,
        dropout_max_ratio=0.0,
        shuffle=True),
    dict(type='PackObjectInputs', keys=['points']),
]
test_pipeline = [
    dict(type='LoadObjectPoints', num_points=num_points),
    dict(type='PackObjectInputs', keys=['points']),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='ClassificationAccuracy')
test_evaluator = val_evaluator
