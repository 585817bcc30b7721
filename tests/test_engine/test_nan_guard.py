"""NaNGuardHook names the loss term and the samples, and stops or skips by config."""
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

import mmxmodal  # noqa: F401  (registers the hook)

BAD = 5


class _Points(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.full((3, ), float(i)), data_samples=BaseDataElement(metainfo=dict(sample_idx=i)))


class _Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))

    def forward(self, inputs, data_samples=None, mode='loss'):
        x = torch.stack(inputs)
        ids = torch.tensor([s.sample_idx for s in data_samples])
        scale = torch.where(ids == BAD, torch.tensor(float('nan')), torch.tensor(1.0))
        return dict(loss_contrast=((x * self.w).sum(1) * scale).mean() * 1e-3, loss_ok=self.w.sum() * 0)


def _runner(tmp_path, action):
    return Runner(
        model=_Toy(), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=_Points(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                              collate_fn=dict(type='pseudo_collate'), num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)), train_cfg=dict(by_epoch=True, max_epochs=1),
        custom_hooks=[dict(type='NaNGuardHook', action=action)],
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmdet3d')


def test_stop_names_term_and_sample(tmp_path):
    runner = _runner(tmp_path, 'stop')
    with pytest.raises(FloatingPointError) as e:
        runner.train()
    assert 'loss_contrast' in str(e.value) and f'sample_idx={BAD}' in str(e.value)
    assert 'iteration 2' in str(e.value)


def test_skip_drops_only_the_bad_step(tmp_path):
    runner = _runner(tmp_path, 'skip')
    runner.train()
    hook = [h for h in runner.hooks if type(h).__name__ == 'NaNGuardHook'][0]
    assert hook.skipped == 1
    w = runner.model.w.detach()
    assert torch.isfinite(w).all()
    # three good steps of SGD on sum_i mean_b(x_b) * w_i * 1e-3 (batches {0,1}, {2,3}, {6,7}); {4,5} skipped
    expect = 1 - 0.1 * 1e-3 * (0.5 + 2.5 + 6.5)
    assert torch.allclose(w, torch.full((3, ), expect))
    assert runner.message_hub.get_scalar('train/nan_skipped').current() == 1
    with pytest.raises(ValueError, match='stop'):
        from mmxmodal.engine.hooks import NaNGuardHook
        NaNGuardHook(action='ignore')
