# Stock FCOS3D (nuScenes mono-3D) from the mmdet3d wheel with a ResNet-50 backbone initialised from SimIPU's
# ``img_backbone`` (configs/simipu/simipu_r50-caffe-dcn_voxel01-sparse_8xb4-20e_nus.py).
# The stock config uses ResNet-101 (fcos3d_r101-caffe-dcn_...); SimIPU pretrains ResNet-50, so depth=50 here. The
# FPN input channels (256..2048) and the DCNv2 stages (3, 4) are the same for both depths.
#   bash tools/dist_train.sh configs/finetune/fcos3d_r50-caffe-dcn_fpn_head-gn_8xb2-1x_nus-mono3d_simipu.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/<simipu run>/epoch_20.pth
# Labelled fraction: --cfg-options train_dataloader.dataset.ratio=0.1 (1 / 5 / 10 / 100 %).
_base_ = ['mmdet3d::fcos3d/fcos3d_r101-caffe-dcn_fpn_head-gn_8xb2-1x_nus-mono3d.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

pretrained = 'work_dirs/simipu_r50-caffe-dcn_voxel01-sparse_8xb4-20e_nus/epoch_20.pth'
model = dict(
    backbone=dict(depth=50, init_cfg=dict(type='CheckedPretrained', checkpoint=pretrained, prefix='img_backbone.')))

_labelled_set = {{_base_.train_dataloader.dataset}}
train_dataloader = dict(
    dataset=dict(_delete_=True, type='LabelFractionDataset', ratio=1.0, seed=0, dataset=_labelled_set))
# atomic checkpoints (a save interrupted at any moment leaves a resumable run) and a fail-fast check of the train
# shards of every process (docs/reliability.md)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'), shard_check=dict(type='ShardCheckHook'))
