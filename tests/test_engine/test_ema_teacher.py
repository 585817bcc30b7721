"""EMA teacher: decay ramp values, averaging, and checkpoint / resume of the teacher."""
import copy

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import mmxmodal  # noqa: F401
from mmxmodal.engine.hooks import EMATeacherHook, RampedEMA, ema_decay_at
from mmxmodal.utils.checkpoint import PlainCheckpointHook


def test_decay_schedule_values():
    assert ema_decay_at(0) == pytest.approx(0.99)
    assert ema_decay_at(500, 0.99, 0.9998, 1000) == pytest.approx(0.9949)
    assert ema_decay_at(250, 0.99, 0.9998, 1000) == pytest.approx(0.99245)
    assert ema_decay_at(1000, 0.99, 0.9998, 1000) == pytest.approx(0.9998)
    assert ema_decay_at(10**6, 0.99, 0.9998, 1000) == pytest.approx(0.9998)
    assert ema_decay_at(5, 0.99, 0.9998, 0) == pytest.approx(0.9998)
    vals = [ema_decay_at(t, 0.99, 0.9998, 100) for t in range(0, 120)]
    assert all(b >= a for a, b in zip(vals, vals[1:]))


def test_ramped_ema_update_rule():
    src = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        src.weight.fill_(1.0)
    ema = RampedEMA(src, decay_start=0.9, decay_end=0.99, ramp_iters=10)
    ema.update_parameters(src)  # step 0 copies
    assert torch.allclose(ema.module.weight, torch.ones(1, 2))
    with torch.no_grad():
        src.weight.fill_(0.0)
    ema.update_parameters(src)  # step 1: decay 0.909
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.909))
    assert ema.decay == pytest.approx(0.918)  # the next update (step 2)


class _Data(Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(4, generator=g))


class _TeacherStudent(BaseModel):
    """Minimal model with the teacher interface of CrossMoST."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.set_teacher(None)

    def set_teacher(self, teacher):
        object.__setattr__(self, '_teacher', teacher)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        y = self.bn(self.lin(x))
        if mode == 'loss':
            return dict(loss=((y - 1.0)**2).mean())
        return y


def _runner(work_dir, max_iters, **kw):
    return Runner(model=_TeacherStudent(), work_dir=str(work_dir),
                  train_dataloader=dict(dataset=_Data(), sampler=dict(type='DefaultSampler', shuffle=False),
                                        batch_size=4, collate_fn=dict(type='pseudo_collate')),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                  train_cfg=dict(by_epoch=False, max_iters=max_iters),
                  custom_hooks=[EMATeacherHook(decay_start=0.9, decay_end=0.99, ramp_iters=4,
                                               update_buffers=True),
                                PlainCheckpointHook()],  # as tools/train.py adds (weights-only resume)
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False)),
                  default_scope='mmdet3d', **kw)


def test_hook_teacher_is_attached_averaged_and_resumed(tmp_path):
    r1 = _runner(tmp_path, 3)
    r1.train()
    hook = [h for h in r1.hooks if isinstance(h, EMATeacherHook)][0]
    teacher = hook.ema_model.module
    assert r1.model._teacher is teacher
    assert int(hook.ema_model.steps) == 3
    # the teacher is not in the optimizer
    opt_params = {id(p) for g in r1.optim_wrapper.optimizer.param_groups for p in g['params']}
    assert not any(id(p) in opt_params for p in teacher.parameters())
    # teacher != student after 3 SGD steps, and it is their EMA (decays 0.9225 and 0.945 for steps 1, 2)
    assert not torch.allclose(teacher.lin.weight, r1.model.lin.weight)
    t_state = copy.deepcopy(teacher.state_dict())
    s_state = copy.deepcopy(r1.model.state_dict())
    ckpt = torch.load(tmp_path / 'iter_3.pth', map_location='cpu', weights_only=False)
    # deployable weights = teacher; training weights kept in ema_state_dict
    assert torch.allclose(ckpt['state_dict']['lin.weight'], t_state['lin.weight'])
    assert torch.allclose(ckpt['ema_state_dict']['module.lin.weight'], s_state['lin.weight'])

    r2 = _runner(tmp_path / 'resumed', 3, resume=True, load_from=str(tmp_path / 'iter_3.pth'))
    r2.train()  # resumes at iter 3 = max_iters: restores, trains nothing
    hook2 = [h for h in r2.hooks if isinstance(h, EMATeacherHook)][0]
    assert r2.model._teacher is hook2.ema_model.module
    assert int(hook2.ema_model.steps) == 3
    for k, v in t_state.items():
        assert torch.allclose(hook2.ema_model.module.state_dict()[k].float(), v.float()), k
    for k, v in s_state.items():
        assert torch.allclose(r2.model.state_dict()[k].float(), v.float()), k
    assert hook2.ema_model.decay == pytest.approx(ema_decay_at(3, 0.9, 0.99, 4))
