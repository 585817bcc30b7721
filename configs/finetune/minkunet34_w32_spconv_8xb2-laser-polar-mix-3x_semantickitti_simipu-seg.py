# The wheel's stock MinkUNet-34 (spconv) SemanticKITTI config, backbone initialised from SimIPU-Seg pretraining
# (configs/seg/simipu_r50-minkunet34-w32_8xb2-20e_semantickitti.py). Only the init_cfg is added.
#   python tools/train.py configs/finetune/minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti_simipu-seg.py \
#       --cfg-options pretrained=work_dirs/.../epoch_20.pth
_base_ = ['mmdet3d::minkunet/minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

pretrained = 'work_dirs/simipu_r50-minkunet34-w32_8xb2-20e_semantickitti/epoch_20.pth'
model = dict(backbone=dict(init_cfg=dict(type='CheckedPretrained', checkpoint=pretrained, prefix='backbone.')))
# the project's reliability hooks (docs/reliability.md): atomic checkpoint saves, fail fast on empty shards
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'), shard_check=dict(type='ShardCheckHook'))
