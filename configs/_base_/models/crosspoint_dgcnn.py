# CrossPoint (Afham et al., CVPR 2022): DGCNN point encoder + ResNet-50 image encoder, NT-Xent intra + cross.
# Point encoder weights are saved under `point_encoder.` (downstream: init_cfg Pretrained, prefix='point_encoder.').
model = dict(
    type='CrossPoint',
    data_preprocessor=dict(
        type='ObjectDataPreprocessor',  # RGB images, ImageNet statistics (0-255 range)
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
    point_encoder=dict(
        type='DGCNNEncoder', in_channels=3, k=20, edge_channels=(64, 64, 128, 256), emb_dims=1024),
    img_backbone=dict(
        type='mmdet.ResNet',  # torchvision resnet50 with fc removed in CrossPoint; randomly initialised there too
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'),
    point_head=dict(type='ProjectionHead', in_channels=2048, hidden_channels=1024, out_channels=256, bias=True),
    img_head=dict(type='ProjectionHead', in_channels=2048, hidden_channels=512, out_channels=256, bias=False),
    # gather_distributed: negatives from all processes with gradients (no-op in a single process).
    loss_intra=dict(type='NTXentLoss', temperature=0.1, gather_distributed=True, loss_weight=1.0),
    loss_cross=dict(type='NTXentLoss', temperature=0.1, gather_distributed=True, loss_weight=1.0))
