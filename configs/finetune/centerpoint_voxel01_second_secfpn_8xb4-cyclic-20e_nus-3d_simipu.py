# Stock CenterPoint (voxel 0.1, nuScenes) from the mmdet3d wheel, with its SparseEncoder initialised from a SimIPU
# checkpoint (configs/simipu/simipu_r50-caffe-dcn_voxel01-sparse_8xb4-20e_nus.py). Nothing else changes.
#
# mmdet3d's SparseEncoder is a plain nn.Module without ``init_cfg``, so the init is attached to the detector and
# routed to the sub-module by mmengine's ``override`` (the outer Constant init with ``layer=[]`` initialises
# nothing; it only carries the override). The sub-module receives the checkpoint entries under
# ``pts_middle_encoder.`` with the prefix removed; mmengine logs any missing / unexpected key.
# ``CheckedPretrained`` (mmxmodal/utils/pretrained.py) is mmengine's prefix ``Pretrained`` that keeps the
# checkpoint's module versions: with the stock ``Pretrained`` + prefix, mmdet3d's spconv-2 loader sees no version,
# permutes every sparse-conv kernel as if it were spconv-1 and rejects it ("size mismatch").
#
# Labelled fraction (1 / 5 / 10 / 100 %): the train set is wrapped in LabelFractionDataset (ratio 1.0 here):
#   bash tools/dist_train.sh configs/finetune/centerpoint_voxel01_second_secfpn_8xb4-cyclic-20e_nus-3d_simipu.py 8 \
#       --cfg-options train_dataloader.dataset.dataset.ratio=0.1 \
#                     model.init_cfg.override.checkpoint=work_dirs/<simipu run>/epoch_20.pth
# GT-sampling (ObjectSample) pastes objects of the full train split: for an honest fraction use the
# *_10pct-labels.py configs (no GT-sampling) or rebuild the GT database from the subset.
_base_ = ['mmdet3d::centerpoint/centerpoint_voxel01_second_secfpn_8xb4-cyclic-20e_nus-3d.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

pretrained = 'work_dirs/simipu_r50-caffe-dcn_voxel01-sparse_8xb4-20e_nus/epoch_20.pth'
model = dict(
    init_cfg=dict(
        type='Constant', val=0.0, layer=[],
        override=dict(type='CheckedPretrained', name='pts_middle_encoder', checkpoint=pretrained,
                      prefix='pts_middle_encoder.')))

_labelled_set = {{_base_.train_dataloader.dataset.dataset}}
train_dataloader = dict(
    dataset=dict(type='CBGSDataset', dataset=dict(_delete_=True, type='LabelFractionDataset', ratio=1.0, seed=0,
                                                  dataset=_labelled_set)))
# atomic checkpoints (a save interrupted at any moment leaves a resumable run) and a fail-fast check of the train
# shards of every process (docs/reliability.md)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'), shard_check=dict(type='ShardCheckHook'))
