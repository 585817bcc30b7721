# CrossPoint pretraining recipe (train_crosspoint.py): Adam lr 1e-3, weight decay 1e-6, cosine annealing to 0
# over the epochs, 100 epochs (README command), linear-SVM probe every epoch.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-6))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=100, eta_min=0, by_epoch=True, begin=0, end=100)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=20)
