# Embedded objects (tools/create_synthetic_data.py objects) in the ShapeNetRender + ModelNet40 h5 layouts:
# pretraining on ShapeNet/ + ShapeNetRendering/, linear-SVM probe on modelnet40_ply_hdf5_2048/ (train -> test).
#   python tools/create_synthetic_data.py objects --out-dir data/synthetic_objects --num-objects 320 --seed 0 \
#       --num-points 1024 --image-size 64 --num-views 4 --cls-train-per-class 20 --cls-test-per-class 20 \
#       --no-scanobjectnn
_base_ = ['./shapenet-render.py']
data_root = 'data/synthetic_objects/'
probe_root = data_root + 'modelnet40_ply_hdf5_2048/'
num_points = 256  # points per cloud for CPU-sized runs (the files hold --num-points; the first ones are used)

train_pipeline = [
    dict(type='LoadObjectPoints', num_points=num_points),
    dict(type='LoadRenderedImage', choice='random'),
    {{_base_.point_views}},
    dict(type='mmdet.Resize', scale=(64, 64), keep_ratio=False),
    dict(type='RandomColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='mmdet.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackObjectInputs', keys=['points', 'img']),
]
# The generated objects are canonical (aligned, unit sphere, clean) and their 12 classes are separable by any
# encoder, so the probe shows every labelled object under a fixed random draw of CrossPoint's augmentation (rotation
# about y, scale, translation, jitter, point dropout): the nuisances the pretraining learns to factor out. The draw
# is seeded per sample (identical for every model and run) with a different seed per split, so a train object and
# the test object of the same index do not share a pose.
probe_aug = dict(
    type='ObjectPointAugment', scale_range=(0.5, 2.0), rot_range=(0.0, 6.283185307179586), up_axis=1,
    translate_range=0.5, translate_mode='extent', jitter_std=0.01, jitter_clip=0.05, dropout_max_ratio=0.875)
probe_train_pipeline = [
    dict(type='LoadObjectPoints', num_points=num_points),
    dict(probe_aug, seed=0),
    dict(type='PackObjectInputs', keys=['points']),
]
probe_test_pipeline = [
    dict(type='LoadObjectPoints', num_points=num_points),
    dict(probe_aug, seed=1),
    dict(type='PackObjectInputs', keys=['points']),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(datasets=[
        dict(type='ModelNet40Dataset', data_root=probe_root, split='train', pipeline=probe_train_pipeline,
             test_mode=True),
        dict(type='ModelNet40Dataset', data_root=probe_root, split='test', pipeline=probe_test_pipeline,
             test_mode=True),
    ]))
test_dataloader = val_dataloader
# CrossPoint's probe (SVC C=0.1 on raw features) and, for reference, the same SVM on standardised features.
val_evaluator = [
    dict(type='LinearSVMMetric', C=0.1, classifier='svc'),
    dict(type='LinearSVMMetric', C=0.1, classifier='svc', standardize=True, prefix='svm_std'),
]
test_evaluator = val_evaluator
