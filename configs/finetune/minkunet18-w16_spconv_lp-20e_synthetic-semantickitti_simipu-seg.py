# Linear probe on the embedded SemanticKITTI: FrozenBackboneMinkUNet (the backbone of the SimIPU-Seg checkpoint
# frozen, batch-norm statistics fixed), only the linear per-point head (48 -> 19) trains.
# Random-init probe: --cfg-options model.backbone.init_cfg=None.
_base_ = ['./minkunet18-w16_spconv_1xb2-20e_synthetic-semantickitti_simipu-seg.py']

model = dict(type='FrozenBackboneMinkUNet', freeze_backbone=True)
