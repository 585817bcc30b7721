"""SimIPU with segmentation backbones (MinkUNet, Cylinder3D): CPU voxelisation, per-point features through the
voxel maps, one loss step, stock key names, linear-probe segmentors."""
import numpy as np
import pytest
import torch

import mmxmodal  # noqa: F401
from tests.test_models.test_simipu import _tiny_batch

IMG = dict(mean=[103.53, 116.28, 123.675], std=[1., 1., 1.], bgr_to_rgb=False, pad_size_divisor=32)


def _scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')


def tiny_minkunet(in_channels=4):
    return dict(type='MinkUNetBackbone', in_channels=in_channels, num_stages=4, base_channels=8,
                encoder_channels=[8, 16, 16, 32], encoder_blocks=[1, 1, 1, 1], decoder_channels=[32, 16, 16, 16],
                decoder_blocks=[1, 1, 1, 1], block_type='basic', sparseconv_backend='spconv')


def minkunet_seg_cfg(voxel_size=0.2, max_voxels=None):
    return dict(
        type='SimIPUSeg',
        data_preprocessor=dict(
            type='PairedSegDataPreprocessor', voxel=True, voxel_type='minkunet', batch_first=True,
            max_voxels=max_voxels,
            voxel_layer=dict(max_num_points=-1, point_cloud_range=[-100, -100, -20, 100, 100, 20],
                             voxel_size=[voxel_size] * 3, max_voxels=(-1, -1)), **IMG),
        img_backbone=dict(type='mmdet.ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                          norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='caffe'),
        img_feat_levels=(0, 1, 2, 3), img_feat_channels=(64, 128, 256, 512),
        backbone=tiny_minkunet(5),
        backbone_channels=16,
        point_proj=dict(type='ContrastProjectionHead', hidden_channels=(32, ), out_channels=16),
        loss_intra=dict(type='SampledInfoNCELoss', max_pairs=256, gather_distributed=True),
        loss_inter=dict(type='SampledInfoNCELoss', max_pairs=256, gather_distributed=True),
        max_pairs_intra=256, max_pairs_inter=256)


def cylinder_seg_cfg():
    cfg = minkunet_seg_cfg()
    grid = [40, 36, 8]
    cfg['data_preprocessor'] = dict(
        type='PairedSegDataPreprocessor', voxel=True, voxel_type='cylindrical',
        voxel_layer=dict(grid_shape=grid, point_cloud_range=[0, -3.14159265359, -4, 50, 3.14159265359, 2],
                         max_num_points=-1, max_voxels=-1), **IMG)
    cfg['voxel_encoder'] = dict(type='SegVFEAnyDevice', feat_channels=[16, 32], in_channels=7, with_voxel_center=True,
                                feat_compression=8, return_point_feats=False, grid_shape=grid,
                                point_cloud_range=[0, -3.14159265359, -4, 50, 3.14159265359, 2])
    cfg['backbone'] = dict(type='Asymm3DSpconv', grid_size=grid, input_channels=8, base_channels=4,
                           norm_cfg=dict(type='BN1d', eps=1e-5, momentum=0.1))
    cfg['backbone_channels'] = 16
    return cfg


# ------------------------------------------------------------------------------------------------ preprocessor
@pytest.mark.parametrize('max_voxels', [None, 300])
def test_cpu_minkunet_voxelisation_maps_every_point_to_its_voxel(max_voxels):
    from mmdet3d.registry import MODELS
    from mmdet3d.structures import Det3DDataSample
    _scope()
    pre = MODELS.build(dict(type='SegDet3DDataPreprocessor', voxel=True, voxel_type='minkunet', batch_first=True,
                            max_voxels=max_voxels,
                            voxel_layer=dict(max_num_points=-1, point_cloud_range=[-100, -100, -20, 100, 100, 20],
                                             voxel_size=[0.5, 0.5, 0.5], max_voxels=(-1, -1))))
    pre.train()
    g = torch.Generator().manual_seed(0)
    pts = [torch.rand(2000, 4, generator=g) * 10, torch.rand(1500, 4, generator=g) * 10]
    samples = [Det3DDataSample(), Det3DDataSample()]
    np.random.seed(0)
    vd = pre.voxelize(pts, samples)
    p2v = vd['point2voxel']
    assert p2v.shape == (3500, ) and p2v.device == pts[0].device
    if max_voxels is None:
        assert (p2v >= 0).all()
    else:
        assert (vd['coors'][:, 0] == 0).sum() == max_voxels and (p2v < 0).any() and (p2v >= 0).any()
    ok = p2v >= 0
    all_pts = torch.cat(pts)
    batch = torch.cat([torch.full((len(p), ), i) for i, p in enumerate(pts)])
    # the voxel a point is mapped to is its own: same batch, same quantised coordinate
    assert torch.equal(vd['coors'][p2v[ok], 0].long(), batch[ok])
    own = torch.cat([torch.round(p[:, :3] / 0.5).int() - torch.round(p[:, :3] / 0.5).int().min(0)[0] for p in pts])
    assert torch.equal(vd['coors'][p2v[ok], 1:], own[ok])
    # the stock attributes keep their upstream meaning (map into the unique voxels before max_voxels)
    assert samples[0].point2voxel_map.shape == (2000, ) and samples[1].batch_idx.unique().tolist() == [1]


def test_cylindrical_voxelisation_without_labels_in_training():
    from mmdet3d.registry import MODELS
    from mmdet3d.structures import Det3DDataSample
    _scope()
    pre = MODELS.build(cylinder_seg_cfg()['data_preprocessor'])
    pre.train()
    pts = [torch.rand(500, 5) * 20 - 10]
    vd = pre.voxelize(pts, [Det3DDataSample()])
    assert torch.equal(vd['point2voxel'], torch.arange(500)) and vd['coors'].shape == (500, 4)


# ------------------------------------------------------------------------------------------------ model
@pytest.mark.parametrize('branch', ['minkunet', 'cylinder3d'])  # Cylinder3D's mmcv sparse convs: mmxmodal.cpu
def test_simipu_seg_loss_step_trains_every_parameter(branch):
    from mmdet3d.registry import MODELS
    _scope()
    torch.manual_seed(0)
    model = MODELS.build(minkunet_seg_cfg() if branch == 'minkunet' else cylinder_seg_cfg())
    model.train()
    batch = _tiny_batch(num_points=3000)
    data = model.data_preprocessor(batch, training=True)
    assert 'point2voxel' in data['inputs']['voxels'] and 'point2voxel' in data['inputs']['voxels_view2']
    losses = model(**data, mode='loss')
    total = losses['loss_intra'] + losses['loss_inter']
    assert torch.isfinite(total)
    assert losses['npairs_intra'].item() > 50 and losses['npairs_inter'].item() > 50
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]
    # every point has a feature (its voxel's), points of one voxel share it
    model.eval()
    with torch.no_grad():
        out = model(data['inputs'], mode='tensor')
    assert out['point_feats'].shape == (6000, 16)
    vd = data['inputs']['voxels']
    if branch == 'minkunet':  # voxels are the kept points, point2voxel their rows
        torch.testing.assert_close(out['point_feats'], out['voxel_feats'][vd['point2voxel']])
    else:  # Cylinder3D: voxels are per point (point2voxel is the identity); points of one voxel site share
        _, site = torch.unique(vd['coors'], dim=0, return_inverse=True)
        assert out['voxel_feats'].shape[0] == int(site.max()) + 1
        first = torch.full((out['voxel_feats'].shape[0], ), 6000).scatter_reduce(0, site, torch.arange(6000), 'amin')
        torch.testing.assert_close(out['point_feats'], out['point_feats'][first[site]])


def test_simipu_seg_cylinder_point_rows_find_their_own_voxel():
    from mmdet3d.registry import MODELS
    _scope()
    model = MODELS.build(cylinder_seg_cfg()).eval()
    batch = _tiny_batch(num_points=2000)
    data = model.data_preprocessor(batch, training=False)
    vd = data['inputs']['voxels']
    from mmxmodal.models.algorithms.simipu_seg import spconv_native_algo
    with torch.no_grad(), spconv_native_algo(model):
        feats, rows = model.extract_voxel_feats(vd, 2)
        vfeat, vcoors = model.voxel_encoder(vd['voxels'], vd['coors'])
        out = model.backbone(vfeat, vcoors, 2)
    assert (rows >= 0).all() and feats.shape[0] == out.indices.shape[0]
    # the backbone keeps the input sites: a point's row is the site with its (batch, rho, phi, z) index
    assert torch.equal(out.indices[rows].long(), vd['coors'].long())


def test_simipu_seg_state_dict_keys_are_the_stock_segmentors():
    from mmdet3d.registry import MODELS
    _scope()
    mink = MODELS.build(minkunet_seg_cfg())
    stock = MODELS.build(dict(type='MinkUNet', data_preprocessor=dict(type='SegDet3DDataPreprocessor'),
                              backbone=tiny_minkunet(5),
                              decode_head=dict(type='MinkUNetHead', channels=16, num_classes=3)))
    ours = {k for k in mink.state_dict() if k.startswith('backbone.')}
    assert ours == {k for k in stock.state_dict() if k.startswith('backbone.')}
    for k in ours:
        assert mink.state_dict()[k].shape == stock.state_dict()[k].shape
    cyl = MODELS.build(cylinder_seg_cfg())
    prefixes = {k.split('.')[0] for k in cyl.state_dict()}
    assert {'voxel_encoder', 'backbone', 'img_backbone'} <= prefixes


def test_bad_voxel_dict_is_a_clear_error():
    from mmdet3d.registry import MODELS
    _scope()
    model = MODELS.build(minkunet_seg_cfg())
    with pytest.raises(KeyError, match='point2voxel'):
        model.extract_voxel_feats(dict(voxels=torch.zeros(3, 5), coors=torch.zeros(3, 4, dtype=torch.int32)), 1)
    with pytest.raises(ValueError, match='needs voxels'):
        model.extract_pts_view([torch.zeros(3, 5)], None)


@pytest.mark.parametrize('reduce', ['max', 'mean', 'sum'])
def test_dynamic_scatter_matches_a_loop(reduce):
    from mmxmodal.models.encoders.seg_vfe import dynamic_scatter
    g = torch.Generator().manual_seed(0)
    coors = torch.randint(0, 3, (200, 3), generator=g, dtype=torch.int32)
    coors[:5, 1] = -1  # dropped points
    feats = torch.randn(200, 4, generator=g, requires_grad=True)
    out, vcoors, p2v = dynamic_scatter(feats, coors, reduce)
    assert (p2v[:5] == -1).all() and (p2v[5:] >= 0).all()
    keys = [tuple(c) for c in coors[5:].tolist()]
    assert [tuple(c) for c in vcoors.tolist()] == sorted(set(keys))  # lexicographic, as mmcv's kernel
    for j, c in enumerate(vcoors.tolist()):
        rows = feats[5:][[k == tuple(c) for k in keys]]
        ref = dict(max=rows.max(0).values, mean=rows.mean(0), sum=rows.sum(0))[reduce]
        torch.testing.assert_close(out[j], ref)
    out.sum().backward()
    assert feats.grad[:5].abs().sum() == 0 and feats.grad[5:].abs().sum() > 0
    empty = dynamic_scatter(feats[:0], coors[:0], reduce)
    assert empty[0].shape == (0, 4) and empty[2].shape == (0, )


def test_frozen_backbone_segmentor_trains_only_the_head():
    from mmdet3d.registry import MODELS
    _scope()
    seg = MODELS.build(dict(type='FrozenBackboneMinkUNet', data_preprocessor=dict(type='SegDet3DDataPreprocessor'),
                            backbone=tiny_minkunet(4),
                            decode_head=dict(type='MinkUNetHead', channels=16, num_classes=3)))
    seg.train()
    assert not seg.backbone.training and seg.decode_head.training
    trainable = {n.split('.')[0] for n, p in seg.named_parameters() if p.requires_grad}
    assert trainable == {'decode_head'}
    assert isinstance(seg.decode_head.conv_seg, torch.nn.Linear)  # a linear per-point (per-voxel) head


# ------------------------------------------------------------------------------------------------ shipped config
CYL_NUS = 'configs/seg/simipu_r18-cylinder3d-w16_1xb2-2e_synthetic-nuscenes.py'


def test_cylinder3d_pretraining_config_one_cpu_iteration(tmp_path):
    """One pretraining iteration of the shipped Cylinder3D config on the CPU (mmdet3d's SegVFE scatter and
    Asymm3DSpconv's mmcv sparse convs through mmxmodal.cpu, installed by tests/conftest.py as by tools/train.py).
    Only the data root differs: a shrunk embedded nuScenes root (same generator, 2 scenes x 2 samples, 256
    columns)."""
    import os
    import os.path as osp
    import subprocess
    import sys

    import mmxmodal.cpu
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    assert {'mmcv-sparse-conv-cpu', 'mmcv-dynamic-scatter-cpu'} <= set(mmxmodal.cpu.installed())
    root_dir = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    data = tmp_path / 'nus'
    r = subprocess.run([sys.executable, 'tools/create_synthetic_data.py', 'nuscenes', '--out-dir', str(data),
                        '--num-scenes', '2', '--samples-per-scene', '2', '--sweeps', '0', '--num-azimuths', '256',
                        '--workers', '1', '--seed', '0'], cwd=root_dir, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=root_dir + os.pathsep + os.environ.get('PYTHONPATH', '')))
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = Config.fromfile(osp.join(root_dir, CYL_NUS))
    assert cfg.model.backbone.type == 'Asymm3DSpconv' and cfg.model.data_preprocessor.voxel_type == 'cylindrical'
    cfg.train_dataloader.dataset.data_root = str(data) + '/'
    _scope()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    np.random.seed(0)
    torch.manual_seed(0)
    batch = pseudo_collate([dataset[0], dataset[1]])
    assert all(len(p) > 1000 for p in batch['inputs']['points'])
    model = MODELS.build(cfg.model)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items() if k.split('.')[0] in ('voxel_encoder', 'backbone')}
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    log_vars = model.train_step(batch, optim)
    assert np.isfinite(float(log_vars['loss'].detach()))
    assert float(log_vars['npairs_intra']) > 100 and float(log_vars['npairs_inter']) > 100
    changed = {k.split('.')[0] for k, v in model.state_dict().items() if k in before and v.dtype.is_floating_point
               and not torch.equal(v, before[k])}
    assert changed == {'voxel_encoder', 'backbone'}
