"""Skipped samples are counted in the main process and logged as ``train/skipped_samples``, also when the skips
happen in dataloader worker processes."""
import os.path as osp

import pytest
import torch
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

import mmxmodal  # noqa: F401
from mmxmodal.datasets.robust import RobustDatasetMixin
from mmxmodal.engine.hooks import SkippedSamplesHook, count_skipped

BAD = (3, 7, 8)


class _FailOnBad:
    """Pipeline step that fails on the BAD indices and appends each failure to a file (cross-process record)."""

    def __init__(self, record: str) -> None:
        self.record = record

    def __call__(self, results):
        if results['sample_idx'] in BAD:
            with open(self.record, 'a') as f:
                f.write(f'{results["sample_idx"]}\n')
            raise OSError(f'cannot read {results["path"]}')
        return dict(inputs=torch.full((2, ), float(results['sample_idx'])),
                    data_samples=BaseDataElement(metainfo=dict(sample_idx=results['sample_idx'])))


class _Flaky(RobustDatasetMixin, BaseDataset):

    def __init__(self, record, on_error='skip', n=12):
        self._init_robust(on_error)
        self.n = n
        super().__init__(pipeline=[_FailOnBad(record)], serialize_data=False)

    def load_data_list(self):
        return [dict(path=f'/data/sample_{i:03d}.bin') for i in range(self.n)]


class _Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=(torch.stack(inputs) * self.w).mean())


def test_raise_mode_names_the_sample(tmp_path):
    ds = _Flaky(str(tmp_path / 'rec.txt'), on_error='raise')
    with pytest.raises(OSError, match=r'_Flaky\[3\] \(sample_idx=3.*_FailOnBad failed: OSError: cannot read '
                       r'/data/sample_003\.bin'):
        ds[3]


@pytest.mark.parametrize('num_workers', [0, 2])
def test_skips_in_workers_reach_the_training_log(tmp_path, num_workers):
    record = str(tmp_path / 'failures.txt')
    runner = Runner(
        model=_Toy(), work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(dataset=_Flaky(record), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=3, collate_fn=dict(type='pseudo_collate'), num_workers=num_workers),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)), train_cfg=dict(by_epoch=True, max_epochs=1),
        custom_hooks=[dict(type='SkippedSamplesHook')],
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), default_scope='mmdet3d',
        experiment_name=f'skipped_{num_workers}_{osp.basename(str(tmp_path))}')  # own message hub / visualizer
    runner.train()
    with open(record) as f:
        failures = [int(ln) for ln in f if ln.strip()]
    assert len(failures) >= len(BAD) and set(failures) <= set(BAD)
    assert runner.message_hub.get_scalar('train/skipped_samples').current() == len(failures)
    assert runner.message_hub.get_info('skipped_samples') == len(failures)
    hook = next(h for h in runner.hooks if isinstance(h, SkippedSamplesHook))
    assert hook.total == len(failures) and hook.seen == 12 + len(failures)
    # the scalar is in the training log files (vis_data/scalars.json)
    import glob
    import json
    scalars = glob.glob(osp.join(str(tmp_path / 'work'), '*', 'vis_data', 'scalars.json'))
    rows = [json.loads(ln) for ln in open(scalars[0])]
    assert rows[-1]['skipped_samples'] == len(failures)


def test_max_ratio_stops_a_broken_dataset():
    hook = SkippedSamplesHook(max_ratio=0.1, min_samples=4)

    class _Hub:
        def __init__(self):
            self.info = {}

        def update_info(self, k, v):
            self.info[k] = v

        def update_scalar(self, k, v):
            self.info[k] = v

    class _Runner:
        message_hub = _Hub()
        iter = 0

    batch = dict(data_samples=[BaseDataElement(metainfo=dict(skipped_before=1)) for _ in range(4)])
    assert count_skipped(batch) == 4
    with pytest.raises(RuntimeError, match='4 of 8 fetched samples were bad'):
        hook.before_train_iter(_Runner(), 0, batch)
