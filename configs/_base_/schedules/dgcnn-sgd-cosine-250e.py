# DGCNN classification recipe (used for CrossPoint fine-tuning): SGD lr 0.1 (100 x 1e-3), momentum 0.9,
# weight decay 1e-4, cosine annealing to 1e-3 over 250 epochs.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=250, eta_min=1e-3, by_epoch=True, begin=0, end=250)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=250, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=32)
