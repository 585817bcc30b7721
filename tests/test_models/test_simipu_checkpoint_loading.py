"""A SimIPU checkpoint loads into the stock detectors of the mmdet3d wheel through ``init_cfg`` with a prefix.

The detectors are built from ``configs/finetune/*_simipu.py``, which inherit the wheel's configs
(``mmdet3d::centerpoint/...``, ``mmdet3d::fcos3d/...``, ``mmdet3d::second/...``) and only add the Pretrained init
(and, for FCOS3D, depth=50). The check: after ``init_weights()`` the loaded sub-module has exactly the keys of the
checkpoint under the prefix (zero missing, zero unexpected), equal tensors, and mmengine logged no key mismatch.
"""
import logging
from pathlib import Path

import pytest
import torch

import mmxmodal  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def _stock(rel: str):
    """A config of the installed mmdet3d wheel (``mmdet3d::rel``)."""
    import os.path as osp

    import mmdet3d
    from mmengine.config import Config
    return Config.fromfile(osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'configs', rel))


def _build(cfg_model):
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    return MODELS.build(cfg_model)


def _perturbed_checkpoint(model, path: Path) -> dict:
    """Save a checkpoint as mmengine's CheckpointHook does (``weights_to_cpu(get_state_dict(model))``, which
    keeps the module versions in ``_metadata``) after moving every entry away from any initial value."""
    from mmengine.runner.checkpoint import get_state_dict, weights_to_cpu
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for v in model.state_dict().values():
            if v.is_floating_point():
                v.add_(0.5 + torch.rand(v.shape, generator=g))
            else:
                v.add_(7)
    state = weights_to_cpu(get_state_dict(model))
    torch.save(dict(meta=dict(note='simipu test'), state_dict=state), path)
    return {k: v.clone() for k, v in state.items()}


@pytest.fixture(scope='module')
def nus_checkpoint(tmp_path_factory):
    from mmengine.config import Config
    cfg = Config.fromfile(str(ROOT / 'configs/simipu/simipu_r50-caffe-dcn_voxel01-sparse_8xb4-20e_nus.py'))
    path = tmp_path_factory.mktemp('simipu_ckpt') / 'simipu_nus.pth'
    state = _perturbed_checkpoint(_build(cfg.model), path)
    return str(path), state


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _init_and_capture(model):
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    handler = _Capture()
    logger.addHandler(handler)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(handler)
    return handler.messages


def _assert_loaded(submodule, state: dict, prefix: str, messages):
    expected = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    got = submodule.state_dict()
    missing = sorted(set(got) - set(expected))
    unexpected = sorted(set(expected) - set(got))
    assert not missing and not unexpected, (missing[:5], unexpected[:5])
    assert len(got) > 50
    for k, v in expected.items():
        assert torch.equal(got[k], v), k
    text = '\n'.join(messages)
    assert f'load {prefix} in model from' in text  # the Pretrained init ran with the prefix
    for bad in ('missing keys', 'unexpected key', 'do not match', 'size mismatch'):
        assert bad not in text, text[-2000:]


def test_simipu_sparse_encoder_loads_into_stock_centerpoint(nus_checkpoint):
    from mmengine.config import Config
    path, state = nus_checkpoint
    cfg = Config.fromfile(
        str(ROOT / 'configs/finetune/centerpoint_voxel01_second_secfpn_8xb4-cyclic-20e_nus-3d_simipu.py'))
    stock = _stock('centerpoint/centerpoint_voxel01_second_secfpn_8xb4-cyclic-20e_nus-3d.py')
    assert cfg.model.pts_middle_encoder == stock.model.pts_middle_encoder  # the wheel's encoder, unchanged
    cfg.model.init_cfg.override.checkpoint = path
    det = _build(cfg.model)
    assert type(det).__name__ == 'CenterPoint'
    messages = _init_and_capture(det)
    _assert_loaded(det.pts_middle_encoder, state, 'pts_middle_encoder.', messages)
    # the rest of the detector is not touched by the checkpoint
    head = det.pts_bbox_head.state_dict()
    assert not any(k.startswith('pts_bbox_head.') for k in state) and len(head) > 0


def test_simipu_image_backbone_loads_into_stock_fcos3d_r50(nus_checkpoint):
    from mmengine.config import Config
    path, state = nus_checkpoint
    cfg = Config.fromfile(
        str(ROOT / 'configs/finetune/fcos3d_r50-caffe-dcn_fpn_head-gn_8xb2-1x_nus-mono3d_simipu.py'))
    stock = _stock('fcos3d/fcos3d_r101-caffe-dcn_fpn_head-gn_8xb2-1x_nus-mono3d.py')
    assert stock.model.backbone.depth == 101 and cfg.model.backbone.depth == 50  # the override of the issue
    assert cfg.model.backbone.dcn == stock.model.backbone.dcn and cfg.model.backbone.style == 'caffe'
    cfg.model.backbone.init_cfg.checkpoint = path
    det = _build(cfg.model)
    assert type(det).__name__ == 'FCOSMono3D'
    messages = _init_and_capture(det)
    _assert_loaded(det.backbone, state, 'img_backbone.', messages)


def test_stock_pretrained_prefix_drops_spconv_versions(nus_checkpoint):
    """Why the sparse encoder uses ``CheckedPretrained``: mmengine's ``Pretrained`` + prefix loses the module
    versions, mmdet3d's spconv-2 loader then permutes the kernels and rejects them."""
    from mmengine.config import Config
    path, state = nus_checkpoint
    cfg = Config.fromfile(
        str(ROOT / 'configs/finetune/centerpoint_voxel01_second_secfpn_8xb4-cyclic-20e_nus-3d_simipu.py'))
    cfg.model.init_cfg.override.update(type='Pretrained', checkpoint=path)
    det = _build(cfg.model)
    messages = '\n'.join(_init_and_capture(det))
    assert 'size mismatch' in messages
    w = det.pts_middle_encoder.conv_input[0].weight
    assert not torch.equal(w, state['pts_middle_encoder.conv_input.0.weight'])


def test_kitti_sparse_encoder_loads_into_stock_second(tmp_path):
    from mmengine.config import Config
    pre = Config.fromfile(str(ROOT / 'configs/simipu/simipu_r50-caffe_second-sparse_8xb4-20e_kitti.py'))
    model = _build(pre.model)
    state = {k: v for k, v in _perturbed_checkpoint(model, tmp_path / 'k.pth').items()}
    cfg = Config.fromfile(str(ROOT / 'configs/finetune/second_hv_secfpn_8xb6-80e_kitti-3d-3class_simipu.py'))
    cfg.model.init_cfg.override.checkpoint = str(tmp_path / 'k.pth')
    det = _build(cfg.model)
    assert type(det).__name__ == 'VoxelNet'
    messages = _init_and_capture(det)
    _assert_loaded(det.middle_encoder, state, 'pts_middle_encoder.', messages)
