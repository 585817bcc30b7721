# CrossPoint, DGCNN + ResNet-50, ShapeNetRender, linear-SVM probe on ModelNet40 every epoch.
# Recipe of the official code (README command): batch 20, k 15, 100 epochs, Adam lr 1e-3 wd 1e-6, cosine.
_base_ = [
    '../_base_/models/crosspoint_dgcnn.py', '../_base_/datasets/shapenet-render.py',
    '../_base_/schedules/crosspoint-adam-cosine-100e.py', 'mmdet3d::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)
default_scope = 'mmdet3d'

model = dict(point_encoder=dict(k=15))
train_dataloader = dict(batch_size=20)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=10, max_keep_ckpts=3, save_best='svm/accuracy',
                    rule='greater'))
