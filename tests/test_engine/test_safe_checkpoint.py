"""The opt-in ``safe://`` scheme loads weights-only: mmengine checkpoints (message hub included) work, a tampered
file is refused."""
import collections
import os

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

from mmxmodal.utils.checkpoint import CheckpointError, PlainCheckpointHook


class _Evil:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_mmengine_style_checkpoint_round_trips(tmp_path):
    hub = MessageHub.get_instance('safe-ckpt-test')
    hub.update_scalar('train/loss', 2.0)
    hub.update_scalar('train/loss', 4.0)
    hub.update_info('iter', 7)
    ckpt = dict(meta=dict(epoch=1, seed=np.int64(3), dataset_meta=dict(classes=('a', 'b'))),
                state_dict=collections.OrderedDict(w=torch.arange(3.0)), message_hub=hub.state_dict(),
                optimizer=dict(state={}, param_groups=[dict(lr=0.1, params=[0])]))
    # as written by stock mmengine: the history buffers pickle through getattr, refused with the way out
    torch.save(ckpt, tmp_path / 'stock.pth')
    with pytest.raises(CheckpointError, match='strip_checkpoint.py .*--trust'):
        _load_checkpoint('safe://' + str(tmp_path / 'stock.pth'))
    # as written by the project (PlainCheckpointHook): loads through safe:// and stock mmengine, resumes the hub
    PlainCheckpointHook().before_save_checkpoint(None, ckpt)
    torch.save(ckpt, tmp_path / 'ok.pth')
    for path in ('safe://' + str(tmp_path / 'ok.pth'), str(tmp_path / 'ok.pth')):
        loaded = _load_checkpoint(path)
        assert torch.equal(loaded['state_dict']['w'], torch.arange(3.0))
        assert loaded['meta']['seed'] == 3
        PlainCheckpointHook().after_load_checkpoint(None, loaded)
        assert loaded['message_hub']['log_scalars']['train/loss'].mean() == 3.0


def test_tampered_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / 'pwned'
    torch.save(dict(state_dict={}, payload=_Evil(str(marker))), tmp_path / 'evil.pth')
    with pytest.raises(CheckpointError, match='evil.pth') as e:
        _load_checkpoint('safe://' + str(tmp_path / 'evil.pth'))
    assert 'system' in str(e.value)
    assert not marker.exists()


def test_truncated_and_missing_checkpoints_fail_cleanly(tmp_path):
    torch.save(dict(state_dict=dict(w=torch.ones(1000))), tmp_path / 'ok.pth')
    (tmp_path / 'trunc.pth').write_bytes((tmp_path / 'ok.pth').read_bytes()[:200])
    with pytest.raises(CheckpointError, match='trunc.pth'):
        _load_checkpoint('safe://' + str(tmp_path / 'trunc.pth'))
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        _load_checkpoint('safe://' + str(tmp_path / 'nothere.pth'))
