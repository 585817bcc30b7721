"""Acceptance: SimIPU pretraining on the embedded nuScenes root with ``tools/train.py`` (1 process) and
``tools/dist_train.sh`` (2 processes, gloo): both losses fall and both contrastive top-1 accuracies rise well above
chance (1 / number of candidate keys), as logged by mmengine."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.seeds import acceptance_seed

ROOT = Path(__file__).resolve().parents[2]
CONFIG = 'configs/simipu/simipu_r18-sparse_1xb2-2e_synthetic-nuscenes.py'
#: the embedded root of configs/_base_/datasets/synthetic-nuscenes-paired.py (30 train samples)
SEED = acceptance_seed()
ROOT_KW = dict(num_scenes=4, samples_per_scene=10, sweeps=3, seed=SEED)


@pytest.fixture(scope='module')
def embedded_nuscenes(tmp_path_factory) -> str:
    from mmxmodal.datasets.converters.nuscenes import create_nuscenes_infos
    from mmxmodal_bench.synthetic.nuscenes import generate_nuscenes_root
    root = tmp_path_factory.mktemp('simipu_nuscenes')
    out = generate_nuscenes_root(str(root), **ROOT_KW)
    create_nuscenes_infos(out['root'], out['root'], version=out['version'], max_sweeps=10)
    return out['root']


def _env():
    # one BLAS thread per process by default (on a shared 2-core machine multi-threaded matmuls spin for each
    # other); OMP_NUM_THREADS from the caller is kept, to check the margins under other thread counts
    threads = os.environ.get('OMP_NUM_THREADS', '1')
    return dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHON=sys.executable)


def _scalars(work_dir: Path) -> list:
    files = sorted(work_dir.glob('*/vis_data/scalars.json'))
    assert files, f'no mmengine scalars under {work_dir}'
    rows = [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]
    return [r for r in rows if 'loss_intra' in r]


def _check_learning(rows: list, world: int) -> dict:
    assert len(rows) >= 12
    head, tail = rows[:3], rows[-3:]

    def mean(part, key):
        return float(np.mean([r[key] for r in part]))

    chance = 1.0 / (rows[0]['npairs_intra'] * world)  # positives of all processes are the candidates
    out = {k: (mean(head, k), mean(tail, k)) for k in ('loss_intra', 'loss_inter', 'acc_intra', 'acc_inter')}
    for k in ('loss_intra', 'loss_inter'):
        assert out[k][1] < 0.9 * out[k][0], (k, out[k])
    assert out['acc_intra'][1] > 10 * chance, (out['acc_intra'], chance)
    assert out['acc_inter'][1] > 5 * chance, (out['acc_inter'], chance)
    assert all(np.isfinite(r['loss']) for r in rows)
    return out


@pytest.mark.slow
def test_simipu_pretraining_learns_with_train_py(embedded_nuscenes, tmp_path):
    work = tmp_path / 'work'
    r = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work), '--cfg-options',
                        f'train_dataloader.dataset.data_root={embedded_nuscenes}/', f'randomness.seed={SEED}'],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = _scalars(work)
    assert len(rows) == 30  # 2 epochs x 15 iterations
    print(_check_learning(rows, world=1))
    assert (work / 'epoch_2.pth').is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_simipu_pretraining_learns_with_dist_train_sh(embedded_nuscenes, tmp_path):
    work = tmp_path / 'work'
    env = dict(_env(), PORT=str(_free_port()))
    r = subprocess.run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work), '--cfg-options',
                        f'train_dataloader.dataset.data_root={embedded_nuscenes}/', 'train_cfg.max_epochs=3',
                        f'randomness.seed={SEED}'],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = _scalars(work)
    assert len(rows) == 24  # 3 epochs x 8 iterations (30 samples / (2 processes x 2))
    print(_check_learning(rows, world=2))
