# CrossPoint on the 'hard' embedded objects (32 classes in confusable families, see
# mmxmodal_bench/synthetic/objects.py), sized for 2 CPU cores: DGCNN (k 16, emb 256, 256 points, 512-d global
# feature) + ResNet-18 on 64 x 64 renders, 6 epochs of 480 objects (180 iterations of 16), a checkpoint every
# 2 epochs. The transfer protocol (tools/eval_transfer.py crosspoint) trains this config per seed, picks the
# checkpoint on the validation rows and measures the held-out test objects; see docs/crosspoint.md.
#   python tools/create_synthetic_data.py objects --out-dir data/synthetic_objects_hard --class-set hard \
#       --num-objects 480 --seed 0 --num-points 1024 --image-size 64 --num-views 4 --cls-views 1 \
#       --cls-train-per-class 24 --cls-test-per-class 20 --no-scanobjectnn
#   python tools/train.py configs/crosspoint/crosspoint_dgcnn_1xb16-6e_synthetic-objects-hard.py
_base_ = ['./crosspoint_dgcnn_1xb16-10e_synthetic-objects.py']

data_root = 'data/synthetic_objects_hard/'
probe_root = data_root + 'modelnet40_ply_hdf5_2048/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(
    dataset=dict(datasets=[
        dict(type='ModelNet40Dataset', data_root=probe_root, split='train',
             pipeline={{_base_.probe_train_pipeline}}, test_mode=True),
        dict(type='ModelNet40Dataset', data_root=probe_root, split='test',
             pipeline={{_base_.probe_test_pipeline}}, test_mode=True),
    ]))
test_dataloader = val_dataloader

max_epochs = 6
# The val loop probes the *test* rows (CrossPoint's in-training monitor): the transfer protocol never uses it for a
# choice and switches it off (train_cfg.val_interval above max_epochs); it runs once at the end for monitoring.
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0, by_epoch=True, begin=0, end=max_epochs)]
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=2, max_keep_ckpts=-1))
