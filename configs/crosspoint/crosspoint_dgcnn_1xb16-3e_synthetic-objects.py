# Acceptance / CI recipe: crosspoint_dgcnn_1xb16-10e_synthetic-objects.py cut to 3 epochs (60 iterations of 16
# objects), probe once at the end. tests/test_models/test_crosspoint_acceptance.py trains exactly this config.
_base_ = ['./crosspoint_dgcnn_1xb16-10e_synthetic-objects.py']

max_epochs = 3
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0, by_epoch=True, begin=0, end=max_epochs)]
default_hooks = dict(
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=max_epochs, max_keep_ckpts=1))
