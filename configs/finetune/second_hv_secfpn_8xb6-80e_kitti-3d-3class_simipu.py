# Stock SECOND (KITTI, 3 classes) from the mmdet3d wheel with its SparseEncoder (``middle_encoder``) initialised
# from SimIPU's ``pts_middle_encoder`` (configs/simipu/simipu_r50-caffe_second-sparse_8xb4-20e_kitti.py).
# As for CenterPoint, the init is routed to the plain-nn.Module encoder by mmengine's ``override``, with
# ``CheckedPretrained`` (prefix loading that keeps the spconv-2 module versions).
#   bash tools/dist_train.sh configs/finetune/second_hv_secfpn_8xb6-80e_kitti-3d-3class_simipu.py 8 \
#       --cfg-options model.init_cfg.override.checkpoint=work_dirs/<simipu run>/epoch_20.pth
# Labelled fraction: --cfg-options train_dataloader.dataset.dataset.ratio=0.1 (inside the stock RepeatDataset).
_base_ = ['mmdet3d::second/second_hv_secfpn_8xb6-80e_kitti-3d-3class.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

pretrained = 'work_dirs/simipu_r50-caffe_second-sparse_8xb4-20e_kitti/epoch_20.pth'
model = dict(
    init_cfg=dict(
        type='Constant', val=0.0, layer=[],
        override=dict(type='CheckedPretrained', name='middle_encoder', checkpoint=pretrained,
                      prefix='pts_middle_encoder.')))

_labelled_set = {{_base_.train_dataloader.dataset.dataset}}
train_dataloader = dict(
    dataset=dict(dataset=dict(_delete_=True, type='LabelFractionDataset', ratio=1.0, seed=0,
                              dataset=_labelled_set)))
# atomic checkpoints (a save interrupted at any moment leaves a resumable run) and a fail-fast check of the train
# shards of every process (docs/reliability.md)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'), shard_check=dict(type='ShardCheckHook'))
