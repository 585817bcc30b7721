"""The joint pseudo-label rule in the CONFIGURED setting: the model is built from the zero-shot shift config (its
threshold, point weight and distribution alignment), and a training step labels both students with the 2D
teacher's label where the 2D teacher is the more confident one above the threshold, and with the 3D teacher's label
in the reverse case."""
import os
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import BaseDataElement

os.environ.setdefault('HF_HUB_OFFLINE', '1')

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/crossmost/crossmost_tinyclip-dgcnn_1xb16-10e_synthetic-shift.py'


@pytest.fixture(scope='module')
def configured_model(tmp_path_factory):
    import mmxmodal  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope

    from mmxmodal.models.clip_utils import make_tiny_clip
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(str(CONFIG))
    cfg.model.img_encoder.local_dir = make_tiny_clip(str(tmp_path_factory.mktemp('clip')))['local_dir']
    torch.manual_seed(0)
    return cfg, MODELS.build(cfg.model)  # init_weights (the ULIP checkpoint) is not needed for the rule


def _batch(num_classes: int, b: int, img_size: int = 64, n: int = 256):
    inputs = dict(img=torch.rand(b, 2, 3, img_size, img_size), points=torch.randn(b, 2, n, 3))
    return inputs


def test_configured_rule_lets_each_teacher_win(configured_model):
    cfg, model = configured_model
    rule = cfg.model.pseudo_label
    assert rule['mode'] == 'joint'
    c = model.classifier.num_classes
    w = rule.get('point_weight', 1.0)
    # a confident teacher (0.97 on one class) must be able to pass the configured threshold in both modalities
    assert 0.97 > rule['threshold'] and 0.97 * w > rule['threshold']
    b = 2 * c  # sample i < c: the image teacher is confident on class i; sample c + i: the point teacher on i
    uniform = torch.full((c, ), 1.0 / c)
    p_img, p_pts = uniform.repeat(b, 1), uniform.repeat(b, 1)
    confident = torch.full((c, c), 0.03 / (c - 1))
    confident.fill_diagonal_(0.97)
    p_img[:c], p_pts[c:] = confident, confident
    want_from_pts = torch.arange(b) >= c
    want_label = torch.arange(b) % c
    # the other teacher is less sure (0.4) of ANOTHER class: the winner's label must be the one used
    other = torch.full((c, c), 0.6 / (c - 1))
    other[torch.arange(c), (torch.arange(c) + 1) % c] = 0.4
    p_pts[:c], p_img[c:] = other, other
    model._teacher_probs = lambda img, pts: (p_img.clone(), p_pts.clone())  # the teachers' softmax outputs
    seen = {}
    orig = model.loss_pl.forward

    def spy(logits, labels, mask):
        seen.setdefault('calls', []).append((labels.clone(), mask.clone()))
        return orig(logits, labels, mask)
    model.loss_pl.forward = spy
    samples = [BaseDataElement(gt_label=torch.tensor(int(want_label[i]))) for i in range(b)]
    model.train()
    losses = model.loss(_batch(c, b), samples)
    assert torch.isfinite(losses['loss_pl_img']) and torch.isfinite(losses['loss_pl_pts'])
    (img_labels, img_mask), (pts_labels, pts_mask) = seen['calls']
    assert img_mask.all() and pts_mask.all(), (img_mask, pts_mask)  # every confident label passes
    assert torch.equal(img_labels, want_label) and torch.equal(pts_labels, want_label)  # both students, one label
    stats = model.pseudo_label_stats
    assert stats['accepted_from_img'] == c and stats['accepted_from_pts'] == c
    assert stats['from_img_correct'] == c and stats['from_pts_correct'] == c
    assert stats['from_pts'] == float(want_from_pts.sum())


def test_configured_rule_rejects_unconfident_teachers(configured_model):
    cfg, model = configured_model
    c = model.classifier.num_classes
    flat = torch.full((4, c), 1.0 / c)
    model._teacher_probs = lambda img, pts: (flat.clone(), flat.clone())
    model.train()
    model.loss(_batch(c, 4), None)
    assert model.pseudo_label_stats['accepted_from_img'] == 0 == model.pseudo_label_stats['accepted_from_pts']
