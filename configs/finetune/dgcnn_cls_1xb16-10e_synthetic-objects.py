# Fine-tune the DGCNN pretrained by crosspoint_dgcnn_1xb16-10e_synthetic-objects.py on the embedded labelled objects
# (12 classes), CPU-sized: same encoder settings as the pretraining config (k 16, emb 256, 256 points), 10 epochs.
#   python tools/train.py configs/crosspoint/crosspoint_dgcnn_1xb16-10e_synthetic-objects.py
#   python tools/train.py configs/finetune/dgcnn_cls_1xb16-10e_synthetic-objects.py
_base_ = [
    '../_base_/models/dgcnn_cls.py', '../_base_/datasets/synthetic-objects-cls.py',
    '../_base_/schedules/dgcnn-sgd-cosine-250e.py', 'mmdet3d::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)
default_scope = 'mmdet3d'

pretrained = 'work_dirs/crosspoint_dgcnn_1xb16-10e_synthetic-objects/epoch_10.pth'
model = dict(
    backbone=dict(
        k=16, emb_dims=256, init_cfg=dict(type='CheckedPretrained', checkpoint=pretrained, prefix='point_encoder.')),
    head=dict(in_channels=512, num_classes=12))

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-3, by_epoch=True, begin=0, end=max_epochs)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=5, max_keep_ckpts=1, save_best='cls/top1', rule='greater'))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
