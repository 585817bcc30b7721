"""SimIPU-Seg checkpoints drop into the wheel's stock MinkUNet / Cylinder3D SemanticKITTI configs through
``custom_imports`` + ``init_cfg`` alone (0 missing / 0 unexpected backbone keys, equal tensors), and one training
iteration of each runs on the CPU on a tiny generated SemanticKITTI root."""
import os
import os.path as osp

import numpy as np
import pytest
import torch

import mmxmodal  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG = osp.join(ROOT, 'configs', 'seg')
FT = osp.join(ROOT, 'configs', 'finetune')
FINETUNE_MINK = osp.join(FT, 'minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti_simipu-seg.py')
FINETUNE_CYL = osp.join(FT, 'cylinder3d_4xb4-3x_semantickitti_simipu-seg.py')
PRETRAIN_MINK = osp.join(SEG, 'simipu_r50-minkunet34-w32_8xb2-20e_semantickitti.py')
PRETRAIN_CYL = osp.join(SEG, 'simipu_r50-cylinder3d_8xb2-20e_semantickitti.py')
EMB_PRETRAIN = osp.join(SEG, 'simipu_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py')
EMB_FT = osp.join(FT, 'minkunet18-w16_spconv_1xb2-20e_synthetic-semantickitti_simipu-seg.py')
EMB_LP = osp.join(FT, 'minkunet18-w16_spconv_lp-20e_synthetic-semantickitti_simipu-seg.py')
EMB_10PCT = osp.join(FT, 'minkunet18-w16_spconv_1xb2-20e_synthetic-semantickitti-10pct_simipu-seg.py')


def _scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')


def _cfg(path, **options):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options)
    return cfg


def _pretrained_checkpoint(pretrain_cfg, path):
    """A SimIPU-Seg checkpoint (state_dict with spconv's metadata) of the model of ``pretrain_cfg``."""
    from mmdet3d.registry import MODELS
    _scope()
    torch.manual_seed(0)
    model = MODELS.build(_cfg(pretrain_cfg).model)
    with torch.no_grad():  # distinct from any fresh init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return model.state_dict()


def _check_drop_in(seg_model, sd, prefixes):
    own = {k: v for k, v in seg_model.state_dict().items() if k.split('.')[0] in prefixes}
    ckpt = {k: v for k, v in sd.items() if k.split('.')[0] in prefixes}
    assert set(own) == set(ckpt), (sorted(set(own) - set(ckpt))[:5], sorted(set(ckpt) - set(own))[:5])
    assert len(own) > 20
    for k, v in own.items():
        assert v.shape == ckpt[k].shape, k
        assert torch.equal(v, ckpt[k]), k


@pytest.mark.parametrize('pretrain,finetune,prefixes', [
    (PRETRAIN_MINK, FINETUNE_MINK, ('backbone', )),
    (PRETRAIN_CYL, FINETUNE_CYL, ('voxel_encoder', 'backbone')),
    (EMB_PRETRAIN, EMB_FT, ('backbone', )),
    (EMB_PRETRAIN, EMB_LP, ('backbone', )),
])
def test_pretrained_backbone_drops_into_stock_config(tmp_path, pretrain, finetune, prefixes):
    from mmdet3d.registry import MODELS
    ckpt = str(tmp_path / 'epoch_1.pth')
    sd = _pretrained_checkpoint(pretrain, ckpt)
    cfg = _cfg(finetune, pretrained=ckpt)
    # the config only adds init_cfg to the stock model (the path is re-pointed by hand: Config does not re-evaluate)
    if 'init_cfg' in cfg.model.backbone:
        cfg.model.backbone.init_cfg.checkpoint = ckpt
    if 'init_cfg' in cfg.model:
        for o in cfg.model.init_cfg.override:
            o.checkpoint = ckpt
    _scope()
    seg = MODELS.build(cfg.model)
    seg.init_weights()
    _check_drop_in(seg, sd, prefixes)


def _drop_scope(x):
    if isinstance(x, dict):
        return {k: _drop_scope(v) for k, v in x.items() if k != '_scope_'}
    if isinstance(x, (list, tuple)):
        return type(x)(_drop_scope(v) for v in x)
    return x


def test_stock_configs_differ_only_by_init_cfg():
    import mmdet3d
    from mmengine.config import Config
    wheel = osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'configs')
    for ours, stock in ((FINETUNE_MINK, 'minkunet/minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py'),
                        (FINETUNE_CYL, 'cylinder3d/cylinder3d_4xb4-3x_semantickitti.py')):
        a = _drop_scope(Config.fromfile(ours).to_dict())  # mmdet3d:: inheritance adds _scope_ keys
        b = _drop_scope(Config.fromfile(osp.join(wheel, stock)).to_dict())
        a_model, b_model = a.pop('model'), b.pop('model')
        a_model.pop('init_cfg', None)
        a_model['backbone'].pop('init_cfg', None)
        assert a_model == b_model
        # besides init_cfg, only the project's reliability hooks (docs/reliability.md): the atomic drop-in for
        # CheckpointHook and the shard check
        a_hooks, b_hooks = a.pop('default_hooks'), b.pop('default_hooks')
        assert a_hooks.pop('shard_check') == dict(type='ShardCheckHook')
        assert a_hooks.pop('checkpoint') == dict(b_hooks.pop('checkpoint'), type='AtomicCheckpointHook')
        assert a_hooks == b_hooks
        extra = set(a) - set(b)
        assert extra <= {'custom_imports', 'pretrained'}, extra
        assert {k: a[k] for k in b} == b


def test_label_fraction_is_a_fixed_list_of_frames():
    cfg = _cfg(EMB_10PCT)
    assert list(cfg.train_dataloader.dataset.indices) == [0, 23]
    from mmengine.config import Config
    for pct, n in ((1, 192), (10, 1913)):
        c = Config.fromfile(osp.join(FT, f'minkunet34_w32_spconv_8xb2-3x_semantickitti-{pct}pct_simipu-seg.py'))
        assert len(c.train_dataloader.dataset.indices) == n
        assert not any(t['type'] in ('LaserMix', 'PolarMix', 'RandomChoice') for t in c.train_dataloader.dataset.pipeline)


# ---------------------------------------------------------------------------------------- one CPU iteration
@pytest.fixture(scope='module')
def embedded_semantickitti(tmp_path_factory):
    """The embedded SemanticKITTI root (``tools/create_synthetic_data.py semantickitti``, the generator and info
    writer of ``data/synthetic-semantickitti``), shrunk: 2 frames per sequence, 128 columns (~8k points a scan)."""
    import subprocess
    import sys
    root = tmp_path_factory.mktemp('sk')
    r = subprocess.run([sys.executable, 'tools/create_synthetic_data.py', 'semantickitti', '--out-dir', str(root),
                        '--frames-per-sequence', '2', '--num-azimuths', '128', '--workers', '1'], cwd=ROOT,
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')))
    assert r.returncode == 0, r.stderr[-2000:]
    return str(root)


@pytest.mark.parametrize('finetune,prefixes', [
    (FINETUNE_MINK, ('backbone', )),
    # Cylinder3D's mmcv.ops sparse convolutions and dynamic scatters run on the CPU through mmxmodal.cpu
    # (installed by tests/conftest.py, as by tools/train.py): the stock preprocessor and SegVFE are kept
    (FINETUNE_CYL, ('voxel_encoder', 'backbone')),
])
def test_one_cpu_training_iteration_of_the_stock_config(tmp_path, embedded_semantickitti, finetune, prefixes):
    """One training iteration of the wheel's stock config (through our finetune config: stock + init_cfg) with the
    pretrained weights loaded. Changed for the test: the data root (the shrunk embedded root) and, for MinkUNet
    only, the preprocessor type (the stock one calls ``.cuda()`` in its ``minkunet`` voxelisation)."""
    import mmxmodal.cpu
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    assert {'mmcv-sparse-conv-cpu', 'mmcv-dynamic-scatter-cpu', 'spconv-native-cpu'} <= set(mmxmodal.cpu.installed())
    pretrain = PRETRAIN_MINK if finetune == FINETUNE_MINK else PRETRAIN_CYL
    ckpt = str(tmp_path / 'epoch_1.pth')
    sd = _pretrained_checkpoint(pretrain, ckpt)
    cfg = _cfg(finetune)
    stock = _cfg(finetune)
    if 'init_cfg' in cfg.model.backbone:
        cfg.model.backbone.init_cfg.checkpoint = ckpt
    if 'init_cfg' in cfg.model:
        for o in cfg.model.init_cfg.override:
            o.checkpoint = ckpt
    if finetune == FINETUNE_MINK:
        cfg.model.data_preprocessor.type = 'SegDet3DDataPreprocessor'
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = embedded_semantickitti + '/'
    # nothing else differs from the stock model
    a, b = cfg.model.to_dict(), stock.model.to_dict()
    for m in (a, b):
        m.pop('init_cfg', None)
        m['backbone'].pop('init_cfg', None)
        m['data_preprocessor'].pop('type')
    assert a == b
    if finetune == FINETUNE_CYL:
        assert (cfg.model.data_preprocessor.type, cfg.model.voxel_encoder.type) == ('Det3DDataPreprocessor', 'SegVFE')
    _scope()
    dataset = DATASETS.build(ds_cfg)
    np.random.seed(0)
    torch.manual_seed(0)
    batch = pseudo_collate([dataset[0], dataset[1]])
    model = MODELS.build(cfg.model)
    model.init_weights()
    _check_drop_in(model, sd, prefixes)
    before = {k: v.clone() for k, v in model.state_dict().items() if k.split('.')[0] in prefixes}
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    log_vars = model.train_step(batch, optim)
    assert np.isfinite(float(log_vars['loss'].detach()))
    changed = [k for k, v in model.state_dict().items() if k in before and v.dtype.is_floating_point
               and not torch.equal(v, before[k])]
    assert len(changed) > 10  # the backbone trained
    if finetune == FINETUNE_CYL:
        assert any(k.startswith('voxel_encoder.') for k in changed)
    # predict: one label per point (the heads read their voxel maps back to the points)
    model.eval()
    with torch.no_grad():
        outs = model.val_step(batch)
    for out, pts in zip(outs, batch['inputs']['points']):
        assert out.pred_pts_seg.pts_semantic_mask.shape == (pts.shape[0], )


@pytest.mark.parametrize('name', sorted(f for f in os.listdir(SEG) if f.endswith('.py')))
def test_every_pretraining_config_builds_its_model_with_stock_key_names(name):
    from mmdet3d.registry import MODELS
    _scope()
    cfg = _cfg(osp.join(SEG, name))
    model = MODELS.build(cfg.model)
    prefixes = {k.split('.')[0] for k in model.state_dict()}
    assert {'img_backbone', 'backbone'} <= prefixes
    assert prefixes <= {'img_backbone', 'img_neck', 'voxel_encoder', 'backbone', 'point_proj', 'inter_point_proj',
                        'img_proj'}
    assert ('voxel_encoder' in prefixes) == ('cylinder3d' in name)
