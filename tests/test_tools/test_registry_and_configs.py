"""The plugin registers into mmdet3d's registries and configs load it with custom_imports."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, cwd=ROOT):
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_custom_imports_registers_and_builds_a_model(tmp_path):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)\n"
                   "model = dict(type='NTXentLoss', temperature=0.2)\n")
    # a fresh interpreter: nothing but the config's custom_imports imports mmxmodal
    r = _run(f"""
        from mmengine.config import Config
        from mmdet3d.registry import MODELS
        assert MODELS.get('NTXentLoss') is None
        cfg = Config.fromfile({str(cfg)!r})
        m = MODELS.build(cfg.model)
        print(type(m).__module__, m.temperature)
    """, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'mmxmodal.models.losses.info_nce 0.2' in r.stdout


def test_train_tool_names_an_unknown_type(tmp_path):
    cfg = tmp_path / 'bad_type.py'
    cfg.write_text("custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)\n"
                   "default_scope = 'mmdet3d'\n"
                   "model = dict(type='NoSuchEncoderXYZ')\n"
                   "train_dataloader = None\n")
    r = subprocess.run([sys.executable, 'tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w')], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert 'NoSuchEncoderXYZ' in r.stderr


def test_train_tool_names_a_missing_file(tmp_path):
    cfg = tmp_path / 'missing.py'
    cfg.write_text("custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)\n"
                   "model = dict(type='NTXentLoss')\n"
                   "load_from = 'checkpoints/not_there.pth'\n"
                   "train_dataloader = dict(dataset=dict(type='ShapeNetRenderDataset',\n"
                   "                        data_root='data/no_such_root/', ann_file='x.pkl'))\n")
    r = subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), str(cfg), '--work-dir', str(tmp_path / 'w')],
                       cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert 'FileNotFoundError' in r.stderr
    assert 'checkpoints/not_there.pth' in r.stderr and 'data/no_such_root/' in r.stderr
    assert 'train_dataloader.dataset.data_root' in r.stderr
    r = subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), str(tmp_path / 'nope.py')], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and 'nope.py' in r.stderr


def test_config_check_skips_the_loaders_a_tool_does_not_build(tmp_path):
    from mmengine.config import Config

    from mmxmodal.utils.config_checks import missing_config_paths
    (tmp_path / 'train_root').mkdir()
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(type='X', data_root=str(tmp_path / 'train_root'))),
        val_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(type='X', data_root=str(tmp_path / 'no_val'))])),
        test_dataloader=dict(dataset=dict(type='X', data_root=str(tmp_path / 'no_test')))))
    keys = [k for k, _ in missing_config_paths(cfg)]
    assert keys == ['val_dataloader.dataset.datasets[0].data_root', 'test_dataloader.dataset.data_root']
    # tools/train.py never builds the test loop; tools/test.py builds nothing else
    assert [k for k, _ in missing_config_paths(cfg, ignore=('test_dataloader',))] == keys[:1]
    assert [k for k, _ in missing_config_paths(cfg, ignore=('train_dataloader', 'val_dataloader'))] == keys[1:]
