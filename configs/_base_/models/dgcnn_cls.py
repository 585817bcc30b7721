# DGCNN object classifier (fine-tuning): CrossPoint's DGCNN encoder + DGCNN's 2048 -> 512 -> 256 -> C MLP head
# (dropout 0.5, label smoothing 0.2). Set backbone.init_cfg to load CrossPoint weights:
#   init_cfg=dict(type='Pretrained', checkpoint='<crosspoint ckpt>', prefix='point_encoder.')
model = dict(
    type='PointClassifier',
    data_preprocessor=dict(type='ObjectDataPreprocessor', mean=None, std=None),
    backbone=dict(type='DGCNNEncoder', in_channels=3, k=20, edge_channels=(64, 64, 128, 256), emb_dims=1024),
    head=dict(
        type='PointClsHead',
        in_channels=2048,
        num_classes=40,
        hidden_channels=(512, 256),
        dropout=0.5,
        label_smoothing=0.2))
