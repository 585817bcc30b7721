"""pyproject.toml lists what mmxmodal (and the bench) import and packages the plugin alone; every config in
configs/ loads, and its model builds."""
import ast
import glob
import os.path as osp
import re
import sys
import tomllib

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmxmodal  # noqa: F401
from mmdet3d.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# import name -> distribution name, where they differ
DIST = {'sklearn': 'scikit-learn', 'skimage': 'scikit-image', 'cv2': 'opencv-python-headless', 'PIL': 'Pillow', 'nuscenes': 'nuscenes-devkit',
        'open_clip': 'open-clip-torch', 'spconv': 'spconv-cu120', 'mmdet3d': 'mmdet3d', 'yaml': 'PyYAML'}


def _imports(root: str):
    names = {}
    for path in glob.glob(osp.join(root, '**', '*.py'), recursive=True):
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for m in mods:
                names.setdefault(m.split('.')[0], osp.relpath(path, ROOT))
    return names


def _listed(meta: dict, extras) -> set:
    reqs = meta['dependencies'] + [r for name in extras for r in meta['optional-dependencies'][name]]
    return {re.split(r'[<>=!~\[; ]', req, maxsplit=1)[0].lower() for req in reqs}


def _missing(root: str, listed: set) -> dict:
    missing = {}
    for name, where in _imports(osp.join(ROOT, root)).items():
        if name in sys.stdlib_module_names or name in ('mmxmodal', 'mmxmodal_bench'):
            continue
        if DIST.get(name, name).lower() not in listed:
            missing[name] = where
    return missing


def test_pyproject_lists_every_imported_distribution():
    """The plugin's imports are in its dependencies or its own extras (clip, sparse); the bench's and the tools'
    imports also may come from the ``bench`` extra."""
    meta = tomllib.load(open(osp.join(ROOT, 'pyproject.toml'), 'rb'))['project']
    plugin_extras = [e for e in meta['optional-dependencies'] if e not in ('bench', 'tests')]
    missing = _missing('mmxmodal', _listed(meta, plugin_extras))
    assert not missing, f'mmxmodal imports these, pyproject.toml does not list them: {missing}'
    for root in ('mmxmodal_bench', 'tools'):
        missing = _missing(root, _listed(meta, meta['optional-dependencies']))
        missing.pop('crossmost_init_classifier', None)  # a sibling script of tools/
        assert not missing, f'{root} imports these, pyproject.toml does not list them: {missing}'


def test_the_wheel_is_the_plugin_without_the_bench():
    """setuptools' package discovery with pyproject's settings: every package of mmxmodal/, none of the bench."""
    from setuptools import find_packages
    cfg = tomllib.load(open(osp.join(ROOT, 'pyproject.toml'), 'rb'))['tool']['setuptools']['packages']['find']
    found = set(find_packages(where=ROOT, include=cfg['include'], exclude=cfg.get('exclude', ())))
    on_disk = {osp.relpath(osp.dirname(p), ROOT).replace(osp.sep, '.')
               for p in glob.glob(osp.join(ROOT, 'mmxmodal', '**', '__init__.py'), recursive=True)}
    assert found == on_disk, (found ^ on_disk)
    assert 'mmxmodal.datasets.converters' in found
    assert not any(p.startswith('mmxmodal_bench') for p in found)


CONFIGS = sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)
# Every model is built (constructed), none is initialised: init_weights() reads the checkpoints named in init_cfg,
# which exist only after a pretraining run (or a released / converted file), so these configs build with their
# init_cfg unread. The list is explicit (a config that starts reading a file at init must be added here, with why):
PRETRAINED_INIT = {
    # ULIP-style point-encoder weights converted by tools/model_converters (data/crossmost_shift/ulip_dgcnn.pth)
    'configs/crossmost/crossmost_tinyclip-dgcnn_1xb16-10e_synthetic-shift.py',
    # CrossPoint-pretrained DGCNN (work_dirs/crosspoint_*/epoch_N.pth)
    'configs/finetune/dgcnn_cls_1xb16-10e_synthetic-objects.py',
    'configs/finetune/dgcnn_cls_1xb32-250e_modelnet40.py',
    'configs/finetune/dgcnn_cls_1xb32-250e_scanobjectnn.py',
    # SimIPU-pretrained image / LiDAR backbones (work_dirs/simipu_*/epoch_N.pth)
    'configs/finetune/fcos3d_r50-caffe-dcn_fpn_head-gn_8xb2-1x_nus-mono3d_simipu.py',
    'configs/finetune/minkunet18-w16_spconv_1xb2-20e_synthetic-semantickitti-10pct_simipu-seg.py',
    'configs/finetune/minkunet18-w16_spconv_1xb2-20e_synthetic-semantickitti_simipu-seg.py',
    'configs/finetune/minkunet18-w16_spconv_lp-20e_synthetic-semantickitti_simipu-seg.py',
    'configs/finetune/minkunet34_w32_spconv_8xb2-3x_semantickitti-10pct_simipu-seg.py',
    'configs/finetune/minkunet34_w32_spconv_8xb2-3x_semantickitti-1pct_simipu-seg.py',
    'configs/finetune/minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti_simipu-seg.py',
    'configs/finetune/minkunet34_w32_spconv_lp-3x_semantickitti_simipu-seg.py',
}
# crossmost_vit-b16-pointbert_1xb32-25e_modelnet40.py builds a randomly initialised ViT-B/16 (its img_encoder has
# pretrained=None; the released CLIP file is given with --cfg-options, see its header): built like the others.


def _checkpoint_inits(node, path='model'):
    """(path, checkpoint) of every init_cfg in a model config that names a checkpoint file."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        for c in init if isinstance(init, (list, tuple)) else [init]:
            if isinstance(c, dict) and c.get('checkpoint'):
                yield f'{path}.init_cfg', c['checkpoint']
        for k, v in node.items():
            if k != 'init_cfg':
                yield from _checkpoint_inits(v, f'{path}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _checkpoint_inits(v, f'{path}.{i}')


def test_the_configs_whose_init_reads_a_checkpoint_are_the_listed_ones():
    found = {c for c in CONFIGS if list(_checkpoint_inits(Config.fromfile(osp.join(ROOT, c)).model.to_dict()))}
    assert found == PRETRAINED_INIT, (found - PRETRAINED_INIT, PRETRAINED_INIT - found)


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory) -> str:
    from mmxmodal.models.clip_utils import make_tiny_clip
    return make_tiny_clip(str(tmp_path_factory.mktemp('clip') / 'clip'))['local_dir']


@pytest.mark.parametrize('config', CONFIGS)
def test_every_config_loads_and_its_model_builds(config, tiny_clip):
    cfg = Config.fromfile(osp.join(ROOT, config))
    assert cfg.get('model') is not None, config
    assert 'mmxmodal' in cfg.get('custom_imports', {}).get('imports', []), config
    if cfg.model.get('img_encoder', {}).get('local_dir'):  # the generated tiny CLIP of the synthetic configs
        cfg.model.img_encoder.local_dir = tiny_clip
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet3d')):
        model = MODELS.build(cfg.model)  # not initialised: see PRETRAINED_INIT
    assert sum(p.numel() for p in model.parameters()) > 0


def test_every_base_config_loads():
    for path in glob.glob(osp.join(ROOT, 'configs', '_base_', '**', '*.py'), recursive=True):
        assert Config.fromfile(path) is not None, path
