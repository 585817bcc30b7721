# Fine-tuning with 1 % of the SemanticKITTI training frames, a FIXED list: every 100th frame of
# semantickitti_infos_train.pkl (mmengine's dataset 'indices'), so that every run, pretrained or scratch, sees
# the same labelled frames. Stock MinkUNet-34 (spconv) config + SimIPU-Seg init; scratch: model.backbone.init_cfg=None.
# LaserMix / PolarMix are replaced by the plain stock augmentation: they mix in frames from the whole train split.
_base_ = ['./minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti_simipu-seg.py']

label_fraction_step = 100
num_train_frames = 19130  # SemanticKITTI sequences 00-07, 09, 10
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4),
    dict(type='LoadAnnotations3D', with_bbox_3d=False, with_label_3d=False, with_seg_3d=True,
         seg_3d_dtype='np.int32', seg_offset=2**16, dataset_type='semantickitti'),
    dict(type='PointSegClassMapping'),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5, flip_ratio_bev_vertical=0.5),
    dict(type='GlobalRotScaleTrans', rot_range=[0., 6.28318531], scale_ratio_range=[0.95, 1.05],
         translation_std=[0, 0, 0]),
    dict(type='Pack3DDetInputs', keys=['points', 'pts_semantic_mask'])
]
train_dataloader = dict(
    dataset=dict(pipeline=train_pipeline, indices=list(range(0, num_train_frames, label_fraction_step))))
