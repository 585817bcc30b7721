# CrossPoint on the embedded objects, sized for 2 CPU cores (a few minutes): DGCNN (k 16, emb 256, 256 points) +
# ResNet-18 on 64 x 64 renders, 10 epochs of 320 objects (200 iterations), linear-SVM probe (train -> test split of
# the labelled objects, in random poses, see _base_/datasets/synthetic-objects.py) every 5 epochs.
# The 3-epoch variant crosspoint_dgcnn_1xb16-3e_synthetic-objects.py is the acceptance-test recipe.
#   python tools/create_synthetic_data.py objects --out-dir data/synthetic_objects --num-objects 320 --seed 0 \
#       --num-points 1024 --image-size 64 --num-views 4 --cls-train-per-class 20 --cls-test-per-class 20 \
#       --no-scanobjectnn
#   python tools/train.py configs/crosspoint/crosspoint_dgcnn_1xb16-10e_synthetic-objects.py
_base_ = [
    '../_base_/models/crosspoint_dgcnn.py', '../_base_/datasets/synthetic-objects.py',
    '../_base_/schedules/crosspoint-adam-cosine-100e.py', 'mmdet3d::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)
default_scope = 'mmdet3d'

model = dict(
    point_encoder=dict(k=16, emb_dims=256),  # 512-d global feature
    point_head=dict(in_channels=512, hidden_channels=512),
    img_backbone=dict(depth=18),
    img_head=dict(in_channels=512))

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0, by_epoch=True, begin=0, end=max_epochs)]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    shard_check=dict(type='ShardCheckHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=5, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
log_processor = dict(window_size=10)
randomness = dict(seed=0)
