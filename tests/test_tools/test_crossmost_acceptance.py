"""Cross-MoST acceptance protocol on the embedded objects (slow: several minutes on 2 cores).

``tools/crossmost_synthetic_acceptance.py`` generates the data and a tiny CLIP, runs the label-free warm-up, builds
the 1-shot start classifier (a0), self-trains without labels and evaluates the EMA teacher and the student.

The issue's criterion (>= 10 points for the point AND the image branch, combined >= the better branch) is asserted
for the default protocol (seed 0), on data the tool generates here. It holds for seeds 0 and 2 but not for seeds 1
and 3 (docs/crossmost.md, "Acceptance status"): the run is deterministic, so this test guards the documented
number rather than a claim about every seed.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def acceptance_report(tmp_path_factory):
    work = tmp_path_factory.mktemp('crossmost_acceptance')
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    r = subprocess.run([sys.executable, 'tools/crossmost_synthetic_acceptance.py', '--work-dir', str(work)],
                       cwd=ROOT, capture_output=True, text=True, timeout=2400, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((work / 'acceptance.json').read_text())


@pytest.mark.slow
def test_protocol_runs_and_reports_every_branch(acceptance_report):
    rep = acceptance_report
    for key in ('a0', 'final', 'final_student', 'gain'):
        assert set(rep[key]) == {'pts_acc', 'img_acc', 'combined_acc'}, rep
    assert sorted(rep['shot_labels']) == list(range(12))  # exactly one labelled shot per class
    chance = 100.0 / 12
    assert rep['a0']['pts_acc'] > 2 * chance  # the start is weak but not random
    assert rep['final']['pts_acc'] > 2 * chance  # self-training did not collapse the point branch


@pytest.mark.slow
def test_self_training_gains_ten_points_per_branch(acceptance_report):
    a0, final = acceptance_report['a0'], acceptance_report['final']
    assert final['pts_acc'] - a0['pts_acc'] >= 10.0, acceptance_report
    assert final['img_acc'] - a0['img_acc'] >= 10.0, acceptance_report
    assert final['combined_acc'] >= max(final['pts_acc'], final['img_acc']), acceptance_report
