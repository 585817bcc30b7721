# Fine-tuning with 1 % of the SemanticKITTI training frames, a FIXED list: every 100th frame of
# semantickitti_infos_train.pkl (mmengine's dataset 'indices'), so that every run, pretrained or scratch, sees
# the same labelled frames. Same pipeline and init as the 10 % config; scratch: model.backbone.init_cfg=None.
_base_ = ['./minkunet34_w32_spconv_8xb2-3x_semantickitti-10pct_simipu-seg.py']

label_fraction_step = 100
num_train_frames = 19130  # SemanticKITTI sequences 00-07, 09, 10
train_dataloader = dict(dataset=dict(indices=list(range(0, num_train_frames, label_fraction_step))))
