# The wheel's stock Cylinder3D SemanticKITTI config, voxel encoder (SegVFE) and backbone (Asymm3DSpconv)
# initialised from SimIPU-Seg pretraining (configs/seg/simipu_r50-cylinder3d_8xb2-20e_semantickitti.py).
# Only init_cfg is added (on the segmentor: Cylinder3D's SegVFE is a plain nn.Module without init_cfg).
#   python tools/train.py configs/finetune/cylinder3d_4xb4-3x_semantickitti_simipu-seg.py
_base_ = ['mmdet3d::cylinder3d/cylinder3d_4xb4-3x_semantickitti.py']
custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)

pretrained = 'work_dirs/simipu_r50-cylinder3d_8xb2-20e_semantickitti/epoch_20.pth'
model = dict(
    init_cfg=dict(
        type='Constant', val=0.0, layer=[],  # initialises nothing, carries the overrides
        override=[
            dict(type='CheckedPretrained', name='voxel_encoder', checkpoint=pretrained, prefix='voxel_encoder.'),
            dict(type='CheckedPretrained', name='backbone', checkpoint=pretrained, prefix='backbone.'),
        ]))
# the project's reliability hooks (docs/reliability.md): atomic checkpoint saves, fail fast on empty shards
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'), shard_check=dict(type='ShardCheckHook'))
