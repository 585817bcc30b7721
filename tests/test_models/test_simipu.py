"""SimIPU model parts: sampled InfoNCE, pixel sampling, sparse point-to-voxel index maps, full loss step."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmxmodal  # noqa: F401
from mmxmodal.models.algorithms.simipu import first_unique, sample_pixel_features
from mmxmodal.models.encoders.voxel_point_features import (gather_sparse_point_features, lookup_sparse_sites,
                                                            point_voxel_coords, sparse_encoder_channels,
                                                            sparse_encoder_forward)
from mmxmodal.models.losses.point_pixel_contrast import SampledInfoNCELoss, sampled_info_nce


# ------------------------------------------------------------------------------------------------- losses
def test_sampled_info_nce_equals_hand_computed_value():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    k = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 1.0]])
    t = 0.5
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = (qn @ kn.t()).numpy() / t
    expected = np.mean([-(logits[i, i] - np.log(np.exp(logits[i]).sum())) for i in range(3)])
    loss, acc = sampled_info_nce(q, k, max_pairs=None, temperature=t)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    hits = np.mean([np.argmax(logits[i]) == i for i in range(3)])
    assert acc.item() == pytest.approx(hits)
    # the module applies the weight; chunked evaluation is exact
    mod = SampledInfoNCELoss(temperature=t, max_pairs=None, chunk_size=2, gather_distributed=False, loss_weight=2.)
    loss2, acc2 = mod(q, k)
    assert loss2.item() == pytest.approx(2 * expected, rel=1e-5) and acc2.item() == pytest.approx(hits)


def test_sampled_info_nce_bounds_pairs_and_is_stable_without_positives():
    torch.manual_seed(0)
    q = torch.randn(1000, 8, requires_grad=True)
    loss, acc = sampled_info_nce(q, q.detach() + 0.01 * torch.randn(1000, 8), max_pairs=64, temperature=0.07)
    loss.backward()
    assert (q.grad.abs().sum(1) > 0).sum() == 64  # only the sampled rows take part
    assert acc.item() > 0.9
    empty = torch.zeros(0, 8, requires_grad=True)
    loss, acc = sampled_info_nce(empty, empty * 2, max_pairs=64)
    assert loss.item() == 0.0 and acc.item() == 0.0
    loss.backward()
    assert empty.grad is not None and empty.grad.shape == (0, 8)


def test_first_unique_keeps_first_occurrences():
    keys = torch.tensor([5, 3, 5, 7, 3, 9])
    assert first_unique(keys).tolist() == [0, 1, 3, 5]
    assert first_unique(torch.zeros(0, dtype=torch.long)).numel() == 0


# ------------------------------------------------------------------------------------------------- pixels
def test_sample_pixel_features_follows_the_continuous_pixel_convention():
    # a feature map at stride 4 whose value is the x (resp. y) coordinate of each cell centre in input pixels
    h, w, s = 6, 10, 4
    xs = (torch.arange(w) + 0.5) * s
    ys = (torch.arange(h) + 0.5) * s
    feat = torch.stack([xs[None].expand(h, w), ys[:, None].expand(h, w)])[None].repeat(3, 1, 1, 1)
    feat[1] += 100  # image 1 differs
    uv = torch.tensor([[2.0, 2.0], [6.0, 10.0], [13.0, 7.5], [30.0, 18.0]])
    img = torch.tensor([0, 1, 2, 0])
    out = sample_pixel_features(feat, img, uv, (h * s, w * s))
    expected = uv.clone()
    expected[1] += 100
    torch.testing.assert_close(out, expected)  # bilinear on a linear ramp is exact inside the centres
    assert sample_pixel_features(feat, img[:0], uv[:0], (h * s, w * s)).shape == (0, 2)


# ------------------------------------------------------------------------------------------------- sparse maps
def _centerpoint_like_encoder(shape=(41, 64, 64)):
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    return MODELS.build(dict(
        type='SparseEncoder', in_channels=5, sparse_shape=list(shape), output_channels=32, base_channels=8,
        order=('conv', 'norm', 'act'), encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 32), (32, 32)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)), block_type='basicblock')).eval()


def test_sparse_encoder_forward_matches_encoder_and_index_maps_find_active_sites():
    torch.manual_seed(0)
    enc = _centerpoint_like_encoder()
    pc_range, vsize = [-6.4, -6.4, -5.0, 6.4, 6.4, 3.0], [0.2, 0.2, 0.2]
    pts = [torch.rand(3000, 5) * torch.tensor([12.8, 12.8, 8.0, 1, 0]) + torch.tensor([-6.4, -6.4, -5.0, 0, 0])
           for _ in range(2)]
    bzyx = []
    for b, p in enumerate(pts):
        c, ok = point_voxel_coords(p[:, :3], pc_range, vsize, (40, 64, 64))
        assert ok.all()
        bzyx.append(torch.cat([c.new_full((len(c), 1), b), c], 1))
    bzyx = torch.cat(bzyx)
    coors = torch.unique(bzyx, dim=0)
    feats = torch.randn(len(coors), 5)
    with torch.no_grad():
        stages, bev = sparse_encoder_forward(enc, feats, coors, 2)
        torch.testing.assert_close(bev, enc(feats, coors.int(), 2))
        chans = sparse_encoder_channels(enc)
        assert chans['bev'] == bev.shape[1] and chans['encoder_layer2'] == 32
        sources = ('conv_input', 'encoder_layer1', 'encoder_layer2', 'encoder_layer3', 'encoder_layer4', 'bev')
        f, valid, cell = gather_sparse_point_features(enc, stages, bev, bzyx, sources)
    assert f.shape == (len(bzyx), sum(chans[s] for s in sources))
    assert valid.float().mean() > 0.99  # every input voxel reaches an active site at every stage
    # stride 1: the point's own voxel
    own = lookup_sparse_sites(bzyx, stages['conv_input'].indices.long(), enc.sparse_shape)
    torch.testing.assert_close(f[:, :8], stages['conv_input'].features[own])
    # bev: the dense cell whose receptive field is centred nearest to the point: three stride-2 convolutions
    # with kernel 3 and padding 1 in x / y map input index i to floor((i + 1) / 2) each (clamped to the grid)
    def down(i, n):
        for _ in range(3):
            n = (n + 1) // 2
            i = torch.clamp(torch.div(i + 1, 2, rounding_mode='floor'), max=n - 1)
        return i
    x_cell, y_cell = down(bzyx[:, 3], 64), down(bzyx[:, 2], 64)
    torch.testing.assert_close(f[valid, -chans['bev']:], bev[bzyx[valid, 0], :, y_cell[valid], x_cell[valid]])
    # points of one input voxel share the finest cell key, different voxels do not
    same = (bzyx[:, None] == bzyx[None, :200]).all(-1)
    assert torch.equal(same[:200, :200], (cell[:200, None] == cell[None, :200]))


# ------------------------------------------------------------------------------------------------- full step
def _tiny_batch(num_points=4000, num_cams=2, hw=(64, 96), with_proj=True, seed=0):
    from mmdet3d.structures import Det3DDataSample
    g = torch.Generator().manual_seed(seed)
    inputs = dict(points=[], points_view2=[], img=[])
    samples = []
    for b in range(2):
        p = torch.rand(num_points, 5, generator=g) * torch.tensor([40., 40., 4., 1., 0.]) - torch.tensor(
            [20., 20., 3., 0., 0.])
        ang = 0.3 * (b + 1)
        rot = torch.tensor([[math.cos(ang), -math.sin(ang), 0.], [math.sin(ang), math.cos(ang), 0.], [0., 0., 1.]])
        p2 = p.clone()
        p2[:, :3] = 1.1 * p[:, :3] @ rot.t()
        inputs['points'].append(p)
        inputs['points_view2'].append(p2)
        inputs['img'].append(torch.randint(0, 255, (num_cams, 3) + hw, generator=g).float())
        m = 1500 if with_proj else 0
        ds = Det3DDataSample()
        ds.set_metainfo(dict(
            proj_point_idx=torch.randint(0, num_points, (m, ), generator=g).numpy(),
            proj_cam_idx=torch.randint(0, num_cams, (m, ), generator=g).numpy(),
            proj_uv=(torch.rand(m, 2, generator=g) * torch.tensor([hw[1], hw[0]])).numpy()))
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def _sparse_model_cfg():
    return dict(
        type='SimIPU',
        data_preprocessor=dict(
            type='PairedSceneDataPreprocessor', voxel=True,
            voxel_layer=dict(max_num_points=5, voxel_size=[0.625, 0.625, 0.2],
                             point_cloud_range=[-20., -20., -5., 20., 20., 3.], max_voxels=(20000, 20000)),
            mean=[103.53, 116.28, 123.675], std=[1., 1., 1.], bgr_to_rgb=False, pad_size_divisor=32),
        img_backbone=dict(type='mmdet.ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                          norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='caffe'),
        img_feat_levels=(0, 1, 2, 3), img_feat_channels=(64, 128, 256, 512),
        pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
        pts_middle_encoder=dict(
            type='SparseEncoder', in_channels=5, sparse_shape=[41, 64, 64], output_channels=32,
            base_channels=8,
            order=('conv', 'norm', 'act'), encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 32), (32, 32)),
            encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)), block_type='basicblock'),
        sparse_point_sources=('conv_input', 'encoder_layer1', 'bev'),
        point_proj=dict(type='ContrastProjectionHead', hidden_channels=(32, ), out_channels=16),
        loss_intra=dict(type='SampledInfoNCELoss', max_pairs=256, gather_distributed=True),
        loss_inter=dict(type='SampledInfoNCELoss', max_pairs=256, gather_distributed=True),
        max_pairs_intra=256, max_pairs_inter=256)


def _pointnet_model_cfg():
    cfg = _sparse_model_cfg()
    for k in ('pts_voxel_encoder', 'pts_middle_encoder', 'sparse_point_sources'):
        cfg.pop(k)
    cfg['data_preprocessor'] = dict(type='PairedSceneDataPreprocessor', mean=[103.53, 116.28, 123.675],
                                    std=[1., 1., 1.], bgr_to_rgb=False, pad_size_divisor=32)
    cfg['pts_backbone'] = dict(
        type='PointNet2SASSG', in_channels=5, num_points=(256, 64), radius=(2.0, 4.0), num_samples=(16, 16),
        sa_channels=((32, 32, 64), (64, 64, 128)), fp_channels=((64, 64), ),
        norm_cfg=dict(type='BN2d'), sa_cfg=dict(type='PointSAModule', pool_mod='max', use_xyz=True,
                                               normalize_xyz=True))
    cfg['pts_feat_channels'] = 64
    return cfg


@pytest.mark.parametrize('branch', ['sparse', 'pointnet'])
@pytest.mark.parametrize('with_proj', [True, False])
def test_simipu_loss_step_trains_every_parameter(branch, with_proj):
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    model = MODELS.build(_sparse_model_cfg() if branch == 'sparse' else _pointnet_model_cfg())
    model.train()
    batch = _tiny_batch(num_points=4000 if branch == 'sparse' else 1024, with_proj=with_proj)
    data = model.data_preprocessor(batch, training=True)
    if branch == 'sparse':
        assert 'voxels' in data['inputs'] and 'voxels_view2' in data['inputs']
    losses = model(**data, mode='loss')
    assert set(losses) >= {'loss_intra', 'loss_inter', 'acc_intra', 'acc_inter'}
    total = losses['loss_intra'] + losses['loss_inter']
    assert torch.isfinite(total)
    assert losses['npairs_intra'].item() > 50
    if with_proj:
        assert losses['npairs_inter'].item() > 50 and losses['loss_inter'].item() > 0
    else:  # no valid projection: an exact zero that still back-propagates
        assert losses['npairs_inter'].item() == 0 and losses['loss_inter'].item() == 0.0
    running = [m.running_mean.clone() for m in model.img_proj.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    total.backward()
    # every trainable parameter receives a gradient (DDP without find_unused_parameters)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]
    after = [m.running_mean for m in model.img_proj.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert all(torch.isfinite(a).all() for a in after)
    if not with_proj:  # an empty batch leaves the running statistics untouched
        assert all(torch.equal(a, b) for a, b in zip(after, running))


def test_simipu_state_dict_keys_follow_the_detectors():
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    model = MODELS.build(_sparse_model_cfg())
    prefixes = {k.split('.')[0] for k in model.state_dict()}
    assert {'img_backbone', 'pts_middle_encoder'} <= prefixes
    assert prefixes <= {'img_backbone', 'pts_voxel_encoder', 'pts_middle_encoder', 'point_proj', 'inter_point_proj',
                        'img_proj'}
