# Linear probe (SuperFlow's minkunet34_lp): the stock MinkUNet-34 (spconv) SemanticKITTI config with the
# SimIPU-Seg backbone FROZEN (FrozenBackboneMinkUNet: no gradient, batch-norm statistics fixed) and only the
# linear per-point head (MinkUNetHead: nn.Linear 96 -> 19) trained. Random-init baseline: --cfg-options
# model.backbone.init_cfg=None.
_base_ = ['./minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti_simipu-seg.py']

model = dict(type='FrozenBackboneMinkUNet', freeze_backbone=True)
