"""The Cross-MoST configs load, and the embedded-objects config trains and evaluates end to end through the
mmengine Runner (EMA teacher hook, pseudo-label monitor hook, three-branch metric) on a tiny generated set."""
import os
import os.path as osp
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

os.environ.setdefault('HF_HUB_OFFLINE', '1')

ROOT = Path(__file__).resolve().parents[2]
SYNTH = ROOT / 'configs/crossmost/crossmost_tinyvit-dgcnn_1xb16-20e_synthetic-objects.py'
REAL = ROOT / 'configs/crossmost/crossmost_vit-b16-pointbert_1xb32-25e_modelnet40.py'


def test_configs_load():
    for path in (SYNTH, REAL):
        cfg = Config.fromfile(str(path))
        assert cfg.model.type == 'CrossMoST'
        assert cfg.custom_imports.imports == ['mmxmodal']
        hooks = [h['type'] for h in cfg.custom_hooks]
        assert 'EMATeacherHook' in hooks and 'PseudoLabelMonitorHook' in hooks
        ema = [h for h in cfg.custom_hooks if h['type'] == 'EMATeacherHook'][0]
        assert (ema['decay_start'], ema['decay_end']) == (0.99, 0.9998)
        assert cfg.val_evaluator.type == 'BranchAccuracy'
    real = Config.fromfile(str(REAL))
    assert real.model.classifier_init == 'text' and real.model.img_encoder.model_name == 'ViT-B-16'
    assert len(real.model.class_names) == 40


def test_synthetic_config_trains_and_evaluates(tmp_path):
    import mmxmodal  # noqa: F401
    from mmengine.runner import Runner

    from mmxmodal_bench.synthetic.objects import generate_objects
    from mmxmodal.engine.hooks import EMATeacherHook
    from mmxmodal.models.clip_utils import make_tiny_clip
    data = tmp_path / 'objects'
    generate_objects(str(data), num_objects=12, num_views=1, image_size=32, num_points=512, cls_train_per_class=2,
                     cls_test_per_class=1, cls_views=2, scanobjectnn=False, workers=1)
    clip = make_tiny_clip(str(tmp_path / 'clip'))['local_dir']
    cfg = Config.fromfile(str(SYNTH))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(data / 'modelnet40_ply_hdf5_2048')
        cfg[key].dataset.views_dir = str(data / 'modelnet40_views')
    cfg.train_dataloader.batch_size = 8
    cfg.model.img_encoder.local_dir = clip
    cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = 1
    cfg.param_scheduler = []
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = [h for h in runner.hooks if isinstance(h, EMATeacherHook)][0]
    assert runner.model._teacher is hook.ema_model.module and int(hook.ema_model.steps) == 3  # 24 / 8
    scalars = runner.message_hub.log_scalars
    assert 'train/pl_rate_img' in scalars and 'train/teacher_acc_pts' in scalars
    metrics = runner.test()
    assert set(metrics) == {'cls/pts_acc', 'cls/img_acc', 'cls/combined_acc'}
    ckpt = torch.load(osp.join(cfg.work_dir, 'epoch_1.pth'), map_location='cpu', weights_only=False)
    assert 'ema_state_dict' in ckpt and 'classifier.weight' in ckpt['state_dict']
