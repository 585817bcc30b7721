"""Checkpoints: the project's load in stock mmengine (no mmxmodal in the process), stock mmengine's load through
the documented trust step, ``safe://`` is opt-in, ``CheckedPretrained`` keeps spconv's module versions."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import mmxmodal  # noqa: F401
from mmxmodal.utils.checkpoint import CheckpointError, add_plain_checkpoint_hook, safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')


class _Data(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(inputs=torch.full((3, ), float(i)))


class _Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.lin(torch.stack(inputs) if isinstance(inputs, list) else inputs)
        return dict(loss=(out**2).mean()) if mode == 'loss' else out


def _runner(work_dir, max_iters=2, plain=True, **kw):
    cfg = Config(dict(custom_hooks=[]))
    if plain:
        assert add_plain_checkpoint_hook(cfg) and not add_plain_checkpoint_hook(cfg)  # added once
    return Runner(model=_Toy(), work_dir=str(work_dir), custom_hooks=cfg.custom_hooks,
                  train_dataloader=dict(dataset=_Data(), batch_size=2, sampler=dict(type='DefaultSampler',
                                                                                   shuffle=False),
                                        collate_fn=dict(type='default_collate')),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                  train_cfg=dict(by_epoch=False, max_iters=max_iters),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False)),
                  default_scope='mmdet3d', log_level='WARNING', **kw)


def test_project_checkpoint_loads_in_stock_mmengine_and_resumes_here(tmp_path):
    _runner(tmp_path / 'a').train()
    ckpt = str(tmp_path / 'a' / 'iter_2.pth')
    torch.load(ckpt, weights_only=True)  # no allow-list needed
    code = textwrap.dedent(f'''
        import sys, torch
        from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
        ck = _load_checkpoint({ckpt!r}, map_location='cpu')
        lin = torch.nn.Linear(3, 2)
        load_state_dict(lin, {{k[4:]: v for k, v in ck['state_dict'].items()}}, strict=True)
        assert ck['message_hub']['log_scalars']['train/loss']['log_history'].numel() == 2
        assert not any(m.startswith('mmxmodal') for m in sys.modules)
        print('STOCK_OK')
    ''')
    r = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=300)
    assert 'STOCK_OK' in r.stdout, r.stderr[-2000:]
    # resume here: the hook rebuilds the history buffers, so the logged statistics continue
    r2 = _runner(tmp_path / 'b', max_iters=3, resume=True, load_from=ckpt)
    r2.train()
    hist = r2.message_hub.get_scalar('train/loss')
    assert len(hist.data[0]) == 3 and r2.iter == 3


def _stock_run(work_dir) -> str:
    """A 1-epoch toy run in a process that never imports mmxmodal: the model holds a stock mmdet3d SparseEncoder
    (CenterPoint's ``pts_middle_encoder`` layout, spconv-2 module versions), trained on a parameter-only loss."""
    code = textwrap.dedent(f'''
        import sys, torch
        from mmengine.model import BaseModel
        from mmengine.runner import Runner
        from torch.utils.data import Dataset
        from mmdet3d.registry import MODELS
        from mmdet3d.utils import register_all_modules
        register_all_modules()

        class Data(Dataset):
            def __len__(self): return 2
            def __getitem__(self, i): return dict(inputs=torch.zeros(1))

        class Toy(BaseModel):
            def __init__(self):
                super().__init__()
                self.pts_middle_encoder = MODELS.build(dict(
                    type='SparseEncoder', in_channels=5, sparse_shape=[41, 160, 160], output_channels=128,
                    order=('conv', 'norm', 'act'), encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128),
                    (128, 128)), encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)),
                    block_type='basicblock'))
            def forward(self, inputs, data_samples=None, mode='tensor'):
                return dict(loss=sum((p.float() ** 2).mean() for p in self.parameters()))

        Runner(model=Toy(), work_dir={str(work_dir)!r},
               train_dataloader=dict(dataset=Data(), batch_size=2, sampler=dict(type='DefaultSampler'),
                                     collate_fn=dict(type='default_collate')),
               optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
               train_cfg=dict(by_epoch=True, max_epochs=1), log_level='WARNING').train()
        assert not any(m.startswith('mmxmodal') for m in sys.modules)
        print('WROTE')
    ''')
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=600)
    assert 'WROTE' in r.stdout, r.stderr[-3000:]
    return osp.join(str(work_dir), 'epoch_1.pth')


def test_stock_mmengine_checkpoint_loads_through_the_trust_step_into_a_project_config(tmp_path):
    from mmdet3d.registry import MODELS
    stock = _stock_run(tmp_path / 'stock')
    # as issue 16 measured: torch 2.14's weights-only load refuses it, and so does the opt-in safe:// scheme
    with pytest.raises(Exception):
        torch.load(stock, weights_only=True)
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(CheckpointError, match='strip_checkpoint.py'):
        _load_checkpoint('safe://' + stock)
    # the documented path: strip it once, saying --trust
    tool = osp.join(ROOT, 'tools', 'model_converters', 'strip_checkpoint.py')
    out = str(tmp_path / 'weights.pth')
    r = subprocess.run([sys.executable, tool, stock, out], capture_output=True, text=True, env=ENV)
    assert r.returncode != 0 and '--trust' in r.stderr and not osp.exists(out)
    r = subprocess.run([sys.executable, tool, stock, out, '--trust'], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    weights = torch.load(out, weights_only=True)['state_dict']
    # module versions survive the strip (spconv-2 kernels: version 2, else mmdet3d's loader would permute them)
    assert weights._metadata['pts_middle_encoder.conv_input.0']['version'] == 2
    # into the project's CenterPoint fine-tuning config (CheckedPretrained, prefix pts_middle_encoder.)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/finetune/'
                                   'centerpoint_voxel0512_second_secfpn_1xb2-40e_synthetic-nuscenes-3d_simipu.py'))
    cfg.model.init_cfg.override.checkpoint = out
    model = MODELS.build(cfg.model)
    model.init_weights()
    for k, v in model.pts_middle_encoder.state_dict().items():
        assert torch.equal(v, weights[f'pts_middle_encoder.{k}']), k


def test_safe_scheme_is_opt_in_and_refuses_code(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
    assert CheckpointLoader._schemes[''].__module__ == 'mmengine.runner.checkpoint'
    torch.save(dict(state_dict=dict(w=torch.ones(2))), tmp_path / 'ok.pth')
    assert torch.equal(_load_checkpoint('safe://' + str(tmp_path / 'ok.pth'))['state_dict']['w'], torch.ones(2))
    assert torch.equal(safe_load(str(tmp_path / 'ok.pth'))['state_dict']['w'], torch.ones(2))
