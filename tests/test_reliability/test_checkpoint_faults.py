"""An interrupted save cannot break ``--resume`` (issue 12), through ``tools/train.py`` on generated objects.

A tiny CrossPoint run (the shipped config: ``AtomicCheckpointHook``, ``max_keep_ckpts=1``, one checkpoint per
epoch, 3 epochs) is killed by SIGKILL at each step of its second save (before anything is written; in the middle of
the write, i.e. a truncated temporary file; after the write; after the fsync; after the rename; after the temporary
``last_checkpoint``; after ``last_checkpoint`` was updated, before the old checkpoint is removed) and interrupted by
Ctrl-C (SIGINT) at two of them. Each time ``tools/train.py CONFIG --resume`` continues from the newest complete
checkpoint and ends with the same loss and weights as an uninterrupted run. The injection points are hook methods
(:mod:`tests.test_reliability.fault_hooks`), not sleeps. Each run is ``tools/train.py``'s ``main()`` in its own process,
forked from the test process (:func:`tests.test_reliability.tools.train_in_fork`): a real process killed by a real
signal, without 19 fresh interpreters' imports.
"""
import glob
import os.path as osp
import shutil

import pytest
import torch

import mmxmodal  # noqa: F401
from tests.test_reliability.fault_hooks import POINTS
from tests.test_reliability.tools import crosspoint_config, logs, output, scalars, train_in_fork as train

MAX_EPOCHS = 3


@pytest.fixture(scope='module')
def objects(tmp_path_factory):
    from mmxmodal_bench.synthetic.objects import generate_objects
    root = str(tmp_path_factory.mktemp('ckpt_objects'))
    generate_objects(root, num_objects=8, seed=0, num_views=2, image_size=32, num_points=256, cls_train_per_class=1,
                     cls_test_per_class=1, scanobjectnn=False, workers=1)
    return root


@pytest.fixture(scope='module')
def baseline(objects, tmp_path_factory):
    """The uninterrupted run: (work_dir, per-iteration losses, final weights)."""
    tmp = tmp_path_factory.mktemp('ckpt_baseline')
    cfg = crosspoint_config(str(tmp / 'cfg.py'), objects, max_epochs=MAX_EPOCHS)
    work = str(tmp / 'work')
    r = train(cfg, work)
    assert r.returncode == 0, output(r)[-4000:]
    assert _checkpoint_files(work) == ['epoch_3.pth']
    return work, scalars(work), _weights(osp.join(work, 'epoch_3.pth'))


def _weights(path):
    from mmxmodal.utils.checkpoint import safe_load
    return safe_load(path)['state_dict']


def _checkpoint_files(work):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth')) + glob.glob(osp.join(work, '.*')))


def _interrupt_and_resume(objects, tmp_path, baseline, point, sig):
    cfg = crosspoint_config(str(tmp_path / 'cfg.py'), objects, max_epochs=MAX_EPOCHS,
                            checkpoint=f"type='FaultInjectionCheckpointHook', point={point!r}, save=2, sig={sig!r}")
    work = str(tmp_path / 'work')
    r = train(cfg, work)
    if sig == 'KILL':
        assert r.returncode == -9, output(r)[-3000:]
    else:
        assert r.returncode != 0 and 'KeyboardInterrupt' in output(r), output(r)[-3000:]
    with open(osp.join(work, 'last_checkpoint')) as f:
        last = f.read().strip()
    # last_checkpoint always names a complete checkpoint: epoch 1, or epoch 2 once its rename is done
    assert osp.basename(last) in ('epoch_1.pth', 'epoch_2.pth'), last
    expected = 'epoch_2.pth' if point in ('last_checkpoint_updated', ) else 'epoch_1.pth'
    assert osp.basename(last) == expected, (point, last, _checkpoint_files(work))
    _weights(last)  # loads: not truncated

    resume_cfg = crosspoint_config(str(tmp_path / 'cfg.py'), objects, max_epochs=MAX_EPOCHS)  # the normal hook
    r = train(resume_cfg, work, '--resume')
    assert r.returncode == 0, output(r)[-4000:]
    assert f'Auto resumed from the latest checkpoint {last}' in output(r) + logs(work), output(r)[-3000:]
    base_work, base_rows, base_weights = baseline
    rows = scalars(work)
    assert rows[-1]['step'] == base_rows[-1]['step']
    assert rows[-1]['loss'] == pytest.approx(base_rows[-1]['loss'], rel=1e-5, abs=1e-6)
    weights = _weights(osp.join(work, f'epoch_{MAX_EPOCHS}.pth'))
    for k, v in base_weights.items():
        assert torch.allclose(v.float(), weights[k].float(), atol=1e-5, rtol=1e-5), k
    # nothing half-written or retired stays behind: max_keep_ckpts=1 keeps the final checkpoint only
    assert _checkpoint_files(work) == [f'epoch_{MAX_EPOCHS}.pth'], _checkpoint_files(work)
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert osp.basename(f.read().strip()) == f'epoch_{MAX_EPOCHS}.pth'
    shutil.rmtree(work)


@pytest.mark.slow
@pytest.mark.parametrize('point', POINTS[:-1])  # 'old_removed' comes after the save is complete
def test_sigkill_during_a_save_then_resume(objects, tmp_path, baseline, point):
    _interrupt_and_resume(objects, tmp_path, baseline, point, 'KILL')


@pytest.mark.slow
@pytest.mark.parametrize('point', ['tmp_written', 'renamed'])
def test_ctrl_c_during_a_save_then_resume(objects, tmp_path, baseline, point):
    _interrupt_and_resume(objects, tmp_path, baseline, point, 'INT')
