"""CrossMoST model: losses, teacher handling, masked point target, inference branches."""
import copy
import os

import pytest
import torch

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from mmdet3d.registry import MODELS  # noqa: E402

import mmxmodal  # noqa: E402,F401
from mmxmodal.models.clip_utils import make_tiny_clip  # noqa: E402
from mmxmodal.models.encoders.point_transformer import group_points  # noqa: E402

NAMES = ['airplane', 'chair', 'table']


@pytest.fixture(scope='module')
def clip_dir(tmp_path_factory):
    return make_tiny_clip(str(tmp_path_factory.mktemp('tiny_clip')), seed=0)['local_dir']


def _model(clip_dir, point_encoder=None, **kw):
    pe = point_encoder or dict(type='PointTransformerEncoder', num_groups=16, group_size=8, embed_dims=32, depth=1,
                               num_heads=2, out_channels=64)
    cfg = dict(type='CrossMoST', img_encoder=dict(type='CLIPViTEncoder', local_dir=clip_dir, image_size=32),
               point_encoder=pe, classifier=dict(type='PrototypeClassifier', num_classes=3, in_channels=64),
               embed_dim=64, class_names=NAMES,
               data_preprocessor=dict(type='ObjectDataPreprocessor', mean=(0, 0, 0), std=(255, 255, 255)))
    cfg.update(kw)
    return MODELS.build(cfg)


def _inputs(b=4, n=128):
    return dict(img=torch.rand(b, 2, 3, 32, 32), points=torch.randn(b, 2, n, 3))


def test_text_init_classifier_and_released_tower(clip_dir):
    m = _model(clip_dir, classifier_init='text')
    from mmxmodal.models.clip_utils import load_local_clip, text_class_embeddings
    clip, tok, _ = load_local_clip(local_dir=clip_dir, image_size=32)
    ref = text_class_embeddings(clip, tok, NAMES)
    assert torch.allclose(torch.nn.functional.normalize(m.classifier.weight, dim=1), ref, atol=1e-5)
    assert not m.img_encoder.has_text_tower


@pytest.mark.parametrize('encoder', ['transformer', 'dgcnn'])
def test_loss_terms_and_gradients(clip_dir, encoder):
    pe = None if encoder == 'transformer' else dict(type='DGCNNEncoder', k=8, edge_channels=(16, 16, 16, 16),
                                                   emb_dims=32)
    m = _model(clip_dir, pe, mpm_groups=(16, 8))
    losses = m.loss(_inputs())
    for k in ('loss_pl_img', 'loss_pl_pts', 'loss_fair_img', 'loss_fair_pts', 'loss_align', 'loss_mim',
              'loss_mpm'):
        assert k in losses and torch.isfinite(losses[k]), k
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert m.point_encoder is not None and any(p.grad is not None for p in m.point_encoder.parameters())
    assert m.img_encoder.visual.conv1.weight.grad is not None
    assert m.pseudo_label_stats['num'] == 4.0


def test_labels_only_monitored(clip_dir):
    """Ground-truth labels change the monitoring counts, never the losses."""
    from mmengine.structures import BaseDataElement
    m = _model(clip_dir, loss_mim=None, loss_mpm=None)
    inputs = _inputs()
    samples = [BaseDataElement(gt_label=torch.tensor(i % 3)) for i in range(4)]
    # without the EMA hook the teacher is the student in eval mode, whose BN statistics a training step updates:
    # compare two identical copies, one step each
    twin = copy.deepcopy(m)
    torch.manual_seed(0)
    a = m.loss(inputs, samples)
    torch.manual_seed(0)
    b = twin.loss(inputs, [BaseDataElement(gt_label=torch.tensor((i + 1) % 3)) for i in range(4)])
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert m.pseudo_label_stats['labelled'] == 4.0


def test_masked_point_target_is_the_masked_points(clip_dir):
    """The MPM target is the real points of the masked groups (Point-MAE), not the mask token / a constant."""
    m = _model(clip_dir, loss_mim=None, loss_pl=None, loss_fair=None, loss_align=None, pts_mask_ratio=0.5)
    seen = {}
    orig = m.loss_mpm.forward

    def spy(pred, groups, mask):
        seen.update(pred=pred, groups=groups, mask=mask)
        return orig(pred, groups, mask)

    m.loss_mpm.forward = spy
    inputs = _inputs(b=2, n=128)
    m.loss(inputs)
    pts_strong = inputs['points'][:, 1]
    centers, groups, idx = group_points(pts_strong, 16, 8)
    assert torch.allclose(seen['groups'], groups)
    assert seen['mask'].sum(1).tolist() == [8, 8]
    target = seen['groups'][seen['mask']]  # (M, K, 3) local points of the masked groups
    # each target point + its centre is an actual input point
    abs_pts = (seen['groups'] + centers[:, :, None])[seen['mask']].reshape(-1, 3)
    b_of = torch.arange(2)[:, None].expand(2, 16)[seen['mask']].repeat_interleave(8)
    d = torch.stack([(pts_strong[b] - p).norm(dim=1).min() for b, p in zip(b_of, abs_pts)])
    assert d.max() < 1e-5
    # not a constant and not the mask token: it varies across groups / with the input
    assert target.std() > 0.01
    assert target.shape[-1] == 3 and target.shape[-2] == 8 != m.point_encoder.mask_token.numel()
    m.loss(_inputs(b=2, n=128))
    assert not torch.allclose(seen['groups'], groups)
    # a perfect prediction of the masked groups gives zero loss, a zero prediction does not
    assert m.loss_mpm(groups, groups, seen['mask'] if False else torch.ones(2, 16, dtype=torch.bool)) < 1e-8
    assert m.loss_mpm(torch.zeros_like(groups), groups, torch.ones(2, 16, dtype=torch.bool)) > 1e-3


def test_teacher_reference_is_not_a_parameter(clip_dir):
    import copy
    m = _model(clip_dir)
    n_params = len(list(m.parameters()))
    teacher = copy.deepcopy(m)
    m.set_teacher(teacher)
    assert len(list(m.parameters())) == n_params
    assert not any(k.startswith('_teacher') for k in m.state_dict())
    assert m.teacher is teacher
    m.set_teacher(None)
    assert m.teacher is m


def test_predict_branches_and_fusion(clip_dir):
    m = _model(clip_dir).eval()
    inputs = dict(img=torch.rand(3, 3, 32, 32), points=torch.randn(3, 128, 3))
    with torch.no_grad():
        logits = m.predict_logits(inputs)
        samples = m.predict(inputs)
    p = (logits['img'].softmax(-1) + logits['pts'].softmax(-1)) / 2
    assert torch.allclose(logits['combined'].exp(), p, atol=1e-6)
    for i, s in enumerate(samples):
        assert int(s.pred_label_img) == int(logits['img'][i].argmax())
        assert int(s.pred_label_pts) == int(logits['pts'][i].argmax())
        assert int(s.pred_label_combined) == int(p[i].argmax()) == int(s.pred_label)
    m.test_fusion = 'logit'
    with torch.no_grad():
        lg = m.predict_logits(inputs)
    assert torch.allclose(lg['combined'], (lg['img'] + lg['pts']) / 2)
    # 'joint': the more confident branch (point score x point_weight), as the pseudo-label rule
    m.test_fusion = 'joint'
    for w in (1.0, 1e-3, 1e3):
        m.pl_cfg['point_weight'] = w
        with torch.no_grad():
            lg = m.predict_logits(inputs)
        pi, pp = lg['img'].softmax(-1), lg['pts'].softmax(-1)
        for i in range(3):
            want = pp[i] if pp[i].max() * w > pi[i].max() else pi[i]
            assert torch.allclose(lg['combined'][i].exp(), want, atol=1e-6)
        if w == 1e3:
            assert torch.allclose(lg['combined'].exp(), pp, atol=1e-6)
        if w == 1e-3:
            assert torch.allclose(lg['combined'].exp(), pi, atol=1e-6)


def test_branch_weights_and_embed_norm(clip_dir):
    m = _model(clip_dir, loss_mim=None, loss_mpm=None, loss_align=None, branch_weights=dict(img=0.0),
               embed_norm=True)
    losses = m.loss(_inputs())
    assert losses['loss_pl_img'].item() == 0.0 and losses['loss_fair_img'].item() == 0.0
    assert losses['loss_fair_pts'].item() > 0.0
    m.train()
    emb = m.encode_pts(torch.randn(8, 128, 3))['emb']
    # per-modality standardisation: zero mean, unit variance over the batch in training mode
    assert torch.allclose(emb.mean(0), torch.zeros(64), atol=1e-4)
    assert torch.allclose(emb.var(0, unbiased=False), torch.ones(64), atol=1e-2)
