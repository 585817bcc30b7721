# Classification on the embedded labelled objects (ModelNet40 h5 layout written by
# tools/create_synthetic_data.py objects), DGCNN's fine-tuning protocol on CPU-sized clouds.
_base_ = ['./modelnet40.py']
data_root = 'data/synthetic_objects/modelnet40_ply_hdf5_2048/'
num_points = 256
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
    batch_size=16,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
