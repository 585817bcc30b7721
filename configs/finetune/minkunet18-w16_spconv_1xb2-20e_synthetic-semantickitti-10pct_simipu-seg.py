# Fine-tuning with 10 % of the embedded SemanticKITTI training frames (round(0.1 x 24) = 2 scans: the smallest
# fraction holding >= 2 scans), a FIXED list of frames, the same for every run, pretrained or scratch
# (--cfg-options model.backbone.init_cfg=None): the first and the last frame of semantickitti_infos_train.pkl
# (frames 00/000000 and 02/000007 of the default root: 3 train sequences x 8 frames), by mmengine's dataset
# 'indices'.
_base_ = ['./minkunet18-w16_spconv_1xb2-20e_synthetic-semantickitti_simipu-seg.py']

label_fraction = 0.1
train_dataloader = dict(dataset=dict(indices=[0, 23]))
