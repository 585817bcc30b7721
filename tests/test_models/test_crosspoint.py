"""CrossPoint model: loss combination (hand-computed NT-Xent), forward/backward, predict/tensor modes, the data
preprocessor, the downstream classifier, and pretrained point-encoder weights loading into the fine-tuning config."""
import math
import os.path as osp

import numpy as np
import pytest
import torch

import mmxmodal  # noqa: F401
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tiny_crosspoint(**kw):
    cfg = dict(
        type='CrossPoint',
        data_preprocessor=dict(type='ObjectDataPreprocessor'),
        point_encoder=dict(type='DGCNNEncoder', k=4, emb_dims=32),
        img_backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(3, ), norm_eval=False),
        point_head=dict(type='ProjectionHead', in_channels=64, hidden_channels=32, out_channels=16),
        img_head=dict(type='ProjectionHead', in_channels=512, hidden_channels=32, out_channels=16, bias=False))
    cfg.update(kw)
    return MODELS.build(cfg)


def _nt_xent_by_hand(a: np.ndarray, b: np.ndarray, t: float) -> float:
    """SimCLR NT-Xent with explicit loops: 2N anchors, positive = partner view, negatives = the other 2N - 2."""
    z = np.concatenate([a, b])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(a)
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        denom = sum(math.exp(z[i] @ z[j] / t) for j in range(2 * n) if j != i)
        total += -math.log(math.exp(z[i] @ z[pos] / t) / denom)
    return total / (2 * n)


def test_loss_is_weighted_sum_of_hand_computed_nt_xent():
    model = _tiny_crosspoint(
        loss_intra=dict(type='NTXentLoss', temperature=0.1, loss_weight=0.7),
        loss_cross=dict(type='NTXentLoss', temperature=0.1, loss_weight=1.3))
    f64 = dict(dtype=torch.float64)
    z1 = torch.tensor([[1.0, 0.0, 0.5], [0.2, 1.0, -0.3], [-0.4, 0.1, 1.0]], **f64)
    z2 = torch.tensor([[0.3, 0.6, 0.4], [0.5, 1.2, -0.9], [-0.5, -0.7, 0.8]], **f64)
    zi = torch.tensor([[1.0, 0.3, 0.0], [0.1, 0.7, 0.2], [0.3, -0.1, 0.6]], **f64)
    model._embed = lambda inputs: (z1, z2, zi)
    losses = model.loss({})
    intra = _nt_xent_by_hand(z1.numpy(), z2.numpy(), 0.1)
    cross = _nt_xent_by_hand(((z1 + z2) / 2).numpy(), zi.numpy(), 0.1)
    assert losses['loss_intra'].item() == pytest.approx(0.7 * intra, rel=1e-9)
    assert losses['loss_cross'].item() == pytest.approx(1.3 * cross, rel=1e-9)
    assert intra > 0.1 and cross > 0.1  # not saturated
    # a fixed value, to catch silent changes of the definition (2 rows: cosine 1 positives, orthogonal negatives)
    e = torch.eye(2, dtype=torch.float64)
    model._embed = lambda inputs: (e, e, e)
    expected = -math.log(math.exp(10) / (math.exp(10) + 2 * math.exp(0)))  # 2N - 2 = 2 negatives
    assert model.loss({})['loss_intra'].item() == pytest.approx(0.7 * expected, rel=1e-9)


def _batch(B=4, N=64, H=32):
    torch.manual_seed(0)
    samples = []
    for i in range(B):
        ds = Det3DDataSample()
        ds.gt_label = torch.tensor(i % 2)
        samples.append(ds)
    return dict(inputs=dict(points=[torch.rand(2, N, 3) for _ in range(B)],
                            img=[torch.randint(0, 256, (3, H, H), dtype=torch.uint8) for _ in range(B)]),
                data_samples=samples)


def test_data_preprocessor_stacks_and_normalises():
    pre = MODELS.build(dict(type='ObjectDataPreprocessor', mean=[10.0, 20.0, 30.0], std=[2.0, 4.0, 5.0]))
    batch = _batch()
    out = pre(batch, True)
    assert out['inputs']['points'].shape == (4, 2, 64, 3)
    img = out['inputs']['img']
    assert img.shape == (4, 3, 32, 32) and img.dtype == torch.float32
    raw = batch['inputs']['img'][1].float()
    torch.testing.assert_close(img[1, 2], (raw[2] - 30.0) / 5.0)
    ragged = pre(dict(inputs=dict(points=[torch.rand(10, 3), torch.rand(12, 3)]), data_samples=None))
    assert isinstance(ragged['inputs']['points'], list)


def test_forward_backward_predict_and_tensor_modes():
    model = _tiny_crosspoint()
    model.train()
    data = model.data_preprocessor(_batch(), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_intra', 'loss_cross'} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name in ('point_encoder.edge_convs.0.conv.weight', 'point_encoder.conv5.weight',
                 'img_backbone.conv1.weight', 'point_head.fc2.weight', 'img_head.fc2.weight'):
        g = dict(model.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name
    # train_step through the optimiser wrapper (what the runner calls)
    from mmengine.optim import OptimWrapper
    model.zero_grad()
    log = model.train_step(_batch(), OptimWrapper(torch.optim.Adam(model.parameters(), 1e-3)))
    assert 'loss' in log
    model.eval()
    single = dict(inputs=dict(points=[torch.rand(64, 3) for _ in range(3)]), data_samples=None)
    data = model.data_preprocessor(single, False)
    preds = model(**data, mode='predict')
    assert len(preds) == 3 and preds[0].point_feat.shape == (64, )
    feats, = model(**data, mode='tensor')
    torch.testing.assert_close(feats, torch.stack([p.point_feat for p in preds]))
    # two views at test time: features averaged over views
    pts = torch.rand(2, 2, 64, 3)
    torch.testing.assert_close(model.extract_feat(pts), (model.extract_feat(pts[:, 0]) + model.extract_feat(
        pts[:, 1])) / 2, rtol=1e-5, atol=1e-5)


def test_loss_rejects_single_view_input():
    model = _tiny_crosspoint()
    with pytest.raises(AssertionError, match='ObjectPointViews'):
        model.loss(dict(points=torch.rand(2, 64, 3), img=torch.rand(2, 3, 32, 32)))


def test_pointnet_crosspoint_config_builds_and_runs():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs/crosspoint/crosspoint_pointnet_1xb20-100e_shapenet-render.py'))
    cfg.model.img_backbone.depth = 18  # keep the test light; the config uses ResNet-50
    cfg.model.img_head.in_channels = 512
    model = MODELS.build(cfg.model)
    assert type(model.point_encoder).__name__ == 'PointNetEncoder'
    losses = model(**model.data_preprocessor(_batch(), True), mode='loss')
    sum(losses.values()).backward()


def test_point_classifier_loss_and_predict():
    model = MODELS.build(dict(
        type='PointClassifier', data_preprocessor=dict(type='ObjectDataPreprocessor', mean=None, std=None),
        backbone=dict(type='DGCNNEncoder', k=4, emb_dims=32),
        head=dict(type='PointClsHead', in_channels=64, num_classes=3)))
    samples = []
    for i in range(4):
        ds = Det3DDataSample()
        ds.gt_label = torch.tensor(i % 3)
        samples.append(ds)
    batch = dict(inputs=dict(points=[torch.rand(64, 3) for _ in range(4)]), data_samples=samples)
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    losses['loss_cls'].backward()
    model.eval()
    preds = model(**model.data_preprocessor(batch, False), mode='predict')
    assert preds[0].pred_score.shape == (3, ) and preds[0].point_feat.shape == (64, )
    assert 0 <= int(preds[0].pred_label) < 3


def test_pretrained_point_encoder_loads_into_finetune_config(tmp_path):
    """CrossPoint checkpoint (built from the pretraining config) -> fine-tuning config's Pretrained init_cfg with
    prefix 'point_encoder.': every backbone key is present and every tensor equals the pretrained one."""
    from mmengine.config import Config
    from mmengine.runner import save_checkpoint
    from mmengine.runner.checkpoint import _load_checkpoint_with_prefix
    cfg = Config.fromfile(osp.join(ROOT, 'configs/crosspoint/crosspoint_dgcnn_1xb20-100e_shapenet-render.py'))
    pre = MODELS.build(cfg.model)
    with torch.no_grad():  # make the weights distinguishable from any fresh initialisation
        for p in pre.point_encoder.parameters():
            p.add_(torch.randn_like(p))
        pre.point_encoder.bn5.running_mean.uniform_(-1, 1)
    ckpt = str(tmp_path / 'crosspoint.pth')
    save_checkpoint(pre.state_dict(), ckpt)

    ft_cfg = Config.fromfile(osp.join(ROOT, 'configs/finetune/dgcnn_cls_1xb32-250e_modelnet40.py'))
    assert ft_cfg.model.backbone.init_cfg.prefix == 'point_encoder.'
    ft_cfg.model.backbone.init_cfg.checkpoint = ckpt
    ft_cfg.model.backbone.k = cfg.model.point_encoder.k
    clf = MODELS.build(ft_cfg.model)
    loaded = _load_checkpoint_with_prefix('point_encoder.', ckpt, map_location='cpu')
    backbone_sd = clf.backbone.state_dict()
    assert set(loaded) == set(backbone_sd), (set(backbone_sd) ^ set(loaded))  # no missing / unexpected keys
    clf.init_weights()
    for k, v in clf.backbone.state_dict().items():
        torch.testing.assert_close(v, pre.point_encoder.state_dict()[k], msg=k)
    # the config's CheckedPretrained refuses a prefix that leaves the backbone random (mmengine's Pretrained would
    # only warn) and names the prefix that fits
    from mmxmodal.utils.pretrained import CheckpointPrefixError
    ft_cfg.model.backbone.init_cfg.prefix = 'img_encoder.'
    with pytest.raises(CheckpointPrefixError, match='point_encoder'):
        MODELS.build(ft_cfg.model).init_weights()
    # the synthetic pair of configs agrees too (same encoder settings on both sides)
    syn = Config.fromfile(osp.join(ROOT, 'configs/crosspoint/crosspoint_dgcnn_1xb16-10e_synthetic-objects.py'))
    syn_ft = Config.fromfile(osp.join(ROOT, 'configs/finetune/dgcnn_cls_1xb16-10e_synthetic-objects.py'))
    a = MODELS.build(syn.model).point_encoder.state_dict()
    b = MODELS.build(syn_ft.model).backbone.state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
