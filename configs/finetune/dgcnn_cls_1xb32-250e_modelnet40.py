# Fine-tune the CrossPoint-pretrained DGCNN on ModelNet40 (DGCNN recipe: SGD 0.1, cosine to 1e-3, 250 epochs).
# Pretrain first: python tools/train.py configs/crosspoint/crosspoint_dgcnn_1xb20-100e_shapenet-render.py
_base_ = [
    '../_base_/models/dgcnn_cls.py', '../_base_/datasets/modelnet40.py',
    '../_base_/schedules/dgcnn-sgd-cosine-250e.py', 'mmdet3d::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)
default_scope = 'mmdet3d'

pretrained = 'work_dirs/crosspoint_dgcnn_1xb20-100e_shapenet-render/epoch_100.pth'
model = dict(
    backbone=dict(k=20, init_cfg=dict(type='CheckedPretrained', checkpoint=pretrained, prefix='point_encoder.')),
    head=dict(num_classes=40))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=10, max_keep_ckpts=3, save_best='cls/top1', rule='greater'))
