"""Cross-MoST protocol on the embedded objects, end to end (slow: a few minutes on 2 cores).

``tools/crossmost_synthetic_acceptance.py`` generates the data and a tiny CLIP, runs the label-free warm-up, builds
the start classifier (a0), self-trains without labels and evaluates the EMA teacher and the student.

Only what holds on every seed and machine is asserted (a self-training run is chaotic: another CPU's float bits
give another trajectory, issue 11): the protocol runs and reports every branch, the start is better than chance,
self-training does not collapse the point branch, the masked-modelling and alignment losses fall, pseudo-labels
are accepted and monitored per epoch, and both encoders move off their start. How much self-training gains is a
claim over seeds, measured by ``tools/eval_transfer.py crossmost`` into ``benchmarks/results/`` (docs/crossmost.md).

``MMXMODAL_TEST_SEED`` (default 0, :mod:`tests.seeds`, as for the other acceptance tests) picks the seed of data,
CLIP, shots and training, to rerun this test under other seeds.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.seeds import acceptance_seed

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 6  # a short schedule: the assertions are about the pipeline, not about the final accuracy
CHANCE = 100.0 / 12


@pytest.fixture(scope='module')
def acceptance_report(tmp_path_factory):
    work = tmp_path_factory.mktemp('crossmost_acceptance')
    seed = str(acceptance_seed())
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    r = subprocess.run([sys.executable, 'tools/crossmost_synthetic_acceptance.py', '--work-dir', str(work),
                        '--seed', seed, '--epochs', str(EPOCHS)],
                       cwd=ROOT, capture_output=True, text=True, timeout=2400, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((work / 'acceptance.json').read_text())
    print('[crossmost acceptance] seed', seed, json.dumps({k: rep[k] for k in (
        'a0', 'final', 'img_encoder_drift', 'point_encoder_drift')}), json.dumps(rep['pseudo_labels'][-1]),
        json.dumps({k: (v[0], v[-1]) for k, v in rep['selftrain_losses'].items()}),
        'max pl_rate_pts', max(r['pl_rate_pts'] for r in rep['pseudo_labels']))
    return rep


@pytest.mark.slow
def test_protocol_runs_and_reports_every_branch(acceptance_report):
    rep = acceptance_report
    for key in ('a0', 'final', 'final_student', 'gain'):
        assert set(rep[key]) == {'pts_acc', 'img_acc', 'combined_acc'}, rep
        assert all(math.isfinite(v) for v in rep[key].values()), rep
    assert sorted(rep['shot_labels']) == list(range(12))  # exactly one labelled shot per class
    assert rep['selftrain_epochs'] == EPOCHS
    # wide margins: on this machine a0 (point) is 59-78 % and the final point branch 68-83 % over seeds 0-3;
    # another machine measured 62 % -> 55 % for seed 0
    assert rep['a0']['pts_acc'] > 2 * CHANCE  # the start is weak but not random
    assert rep['final']['pts_acc'] > 2 * CHANCE  # self-training did not collapse the point branch


@pytest.mark.slow
def test_self_supervised_losses_fall(acceptance_report):
    losses = acceptance_report['selftrain_losses']
    for key in ('loss_mim', 'loss_mpm', 'loss_align'):
        assert len(losses[key]) == EPOCHS, losses
        assert losses[key][-1] < 0.95 * losses[key][0], (key, losses[key])


@pytest.mark.slow
def test_pseudo_labels_are_made_and_monitored_every_epoch(acceptance_report):
    records = acceptance_report['pseudo_labels']
    assert [r['epoch'] for r in records] == list(range(1, EPOCHS + 1))
    for r in records:
        for key in ('pl_rate_img', 'pl_rate_pts', 'pl_share_img', 'pl_share_pts', 'teacher_acc_img',
                    'teacher_acc_pts'):
            assert 0.0 <= r[key] <= 1.0, r
        assert r['pl_share_img'] + r['pl_share_pts'] == pytest.approx(1.0), r
    # labels are accepted during the run, and the accepted ones are better than chance
    assert max(r['pl_rate_pts'] for r in records) > 0.2, records
    assert records[-1].get('pl_acc_pts', 0.0) > 2 / 12, records[-1]


@pytest.mark.slow
def test_both_encoders_move_off_their_start(acceptance_report):
    # relative L2 change of the teacher's weights between the start and the end of self-training
    assert acceptance_report['img_encoder_drift'] > 1e-3, acceptance_report['img_encoder_drift']
    assert acceptance_report['point_encoder_drift'] > 1e-3, acceptance_report['point_encoder_drift']
