"""The segmentation transfer protocol: the tool runs a tiny setting (2 seeds, a few iterations) end to end and writes
its results file (common schema), table and figure; protocol pieces checked on their own."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from mmxmodal_bench import transfer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_linear_probe_learns_separable_features_and_ignores_label_19():
    from mmxmodal_bench.protocols.segmentation import seg_miou, train_linear_probe
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    x = (np.eye(3)[y] * 4 + rng.normal(0, 0.5, (3000, 3))).astype(np.float32)
    y_ign = y.copy()
    y_ign[:500] = 19  # ignored points
    pred = train_linear_probe(x, y_ign, 19, lr=0.05, steps=100, max_points=1000, seed=0)
    miou, per_class = seg_miou([pred(x)], [y], [f'c{i}' for i in range(19)])
    assert miou > 95 and per_class['c0'] > 95 and per_class['c5'] is None  # absent class: nan -> None


@pytest.mark.slow
def test_tool_runs_the_tiny_protocol_and_writes_its_table(tmp_path):
    pytest.importorskip('mmxmodal_bench.synthetic.semantickitti',
                        reason='needs the SemanticKITTI generator (branch seg-data)')
    root = tmp_path / 'sk'
    gen = subprocess.run([sys.executable, 'tools/create_synthetic_data.py', 'semantickitti', '--out-dir', str(root),
                          '--frames-per-sequence', '2', '--num-azimuths', '128'], cwd=ROOT, capture_output=True,
                         text=True)
    assert gen.returncode == 0, gen.stderr[-2000:]
    out = tmp_path / 'seg.json'
    cmd = [sys.executable, 'tools/eval_transfer.py', 'segmentation', '--seeds', '0', '1', '--out', str(out),
           '--work-dir', str(tmp_path / 'wd'), '--data-root', str(root), '--pretrain-epochs', '2',
           '--pretrain-select-epochs', '1', '2',
           '--lp-lrs', '0.01', '0.1', '--lp-steps', '5', '--lp-points', '5000', '--ft-epochs', '1',
           '--ft-options', 'train_dataloader.dataset.indices=[0,1]', '--jobs', '2']  # seeds in 2 processes
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    res = transfer.load_results(str(out))
    assert res['metric'] == 'mIoU' and res['split'] == 'test' and res['seeds'] == [0, 1]
    assert set(res['arms']) == {'lp_pretrained', 'lp_random', 'ft_pretrained', 'ft_scratch'}
    assert all(len(v) == 2 and all(0 <= x <= 100 for x in v) for v in res['arms'].values())
    assert res['baselines'] == {'lp_pretrained': 'lp_random', 'ft_pretrained': 'ft_scratch'}
    assert res['label_fraction'] == 0.1
    # v2: (pretraining epoch, probe lr) chosen on val per seed; the random arm gets the same lr grid
    assert all(c in ('epoch=1,lr=0.01', 'epoch=1,lr=0.1', 'epoch=2,lr=0.01', 'epoch=2,lr=0.1')
               for c in res['lp_chosen']['lp_pretrained'])
    assert all(c in ('lr=0.01', 'lr=0.1') for c in res['lp_chosen']['lp_random'])
    assert all(len(s) == 4 for s in res['lp_val_scores']['lp_pretrained'])
    assert all(c in ('epoch=1', 'epoch=2') for c in res['pretrain_checkpoint_chosen'])
    assert res['protocol']['version'] == 2 and res['protocol']['pretrain_select_epochs'] == [1, 2]
    assert not [f for f in os.listdir(tmp_path / 'wd' / 'seed0' / 'pretrain') if f.startswith('epoch_')]
    assert 'road' in res['per_class']['lp_pretrained']
    md = open(osp.splitext(str(out))[0] + '.md').read()
    assert '`lp_pretrained`' in md and 'vs `lp_random`' in md
    assert osp.getsize(osp.splitext(str(out))[0] + '.png') > 1000
    json.dumps(res, allow_nan=False)  # strict JSON: absent classes are null, not NaN


def test_v2_probe_chooses_checkpoint_and_lr_on_val_and_measures_test_once_with_them(monkeypatch):
    """Protocol v2: every (checkpoint, lr) pair is scored on val; test features come only from the chosen one."""
    import argparse

    from mmxmodal_bench.protocols import segmentation as S
    rng = np.random.default_rng(0)
    classes = [f'c{i}' for i in range(19)]

    def split(noise, n=2000):
        y = rng.integers(0, 3, n)
        x = (np.eye(3)[y] * 4 + rng.normal(0, noise, (n, 3))).astype(np.float32)
        return [x], [y]

    noise = {'epoch=1': 6.0, 'epoch=2': 0.3}  # epoch 2's features separate the classes, epoch 1's barely
    calls = []
    monkeypatch.setattr(S, '_load_cfg', lambda path, args, ckpt: ckpt)
    def fake_features(cfg, loader, seed):
        calls.append((cfg, loader))
        f, y = split(noise[cfg])
        return f, y, None
    monkeypatch.setattr(S, 'point_features', fake_features)
    args = argparse.Namespace(lp_config='x', lp_lrs=[1e-4, 0.05], lp_steps=60, lp_points=1000)
    r = S.linear_probe(args, 0, {'epoch=1': 'epoch=1', 'epoch=2': 'epoch=2'}, classes)
    assert set(r['val_scores']) == {'epoch=1,lr=0.0001', 'epoch=1,lr=0.05', 'epoch=2,lr=0.0001', 'epoch=2,lr=0.05'}
    assert r['chosen'] == 'epoch=2,lr=0.05' and r['checkpoint'] == 'epoch=2'
    assert r['val'] == max(r['val_scores'].values()) and r['test'] > 90
    assert [c for c in calls if c[1] == 'test_dataloader'] == [('epoch=2', 'test_dataloader')]  # test once
    # one candidate (random init, or v1's last checkpoint): keys are the lrs alone, as in v1
    calls.clear()
    r = S.linear_probe(args, 0, {'random': 'epoch=2'}, classes)
    assert set(r['val_scores']) == {'lr=0.0001', 'lr=0.05'} and r['checkpoint'] == 'random'


def test_select_epochs_checks_the_candidates():
    import argparse

    from mmxmodal_bench.protocols.segmentation import select_epochs
    assert select_epochs(argparse.Namespace(pretrain_select_epochs=None, pretrain_epochs=5)) is None
    assert select_epochs(argparse.Namespace(pretrain_select_epochs=[10, 5, 10], pretrain_epochs=10)) == [5, 10]
    with pytest.raises(ValueError):
        select_epochs(argparse.Namespace(pretrain_select_epochs=[5, 12], pretrain_epochs=10))
