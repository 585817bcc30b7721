"""`tools/dist_train.sh CONFIG 2` trains a tiny CrossPoint config with two CPU processes (gloo) to completion."""
import glob
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/crosspoint/crosspoint_dgcnn_1xb16-10e_synthetic-objects.py'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def tiny_objects(tmp_path_factory) -> str:
    from mmxmodal_bench.synthetic.objects import generate_objects
    root = tmp_path_factory.mktemp('dist_objects')
    generate_objects(str(root), num_objects=16, seed=1, num_views=2, image_size=32, num_points=512,
                     cls_train_per_class=1, cls_test_per_class=1, scanobjectnn=False, workers=1)
    return str(root)


@pytest.mark.slow
def test_dist_train_two_cpu_processes(tmp_path, tiny_objects):
    cfg = tmp_path / 'tiny_dist.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = ['{CONFIG}']
        train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                                dataset=dict(data_root='{tiny_objects}/'))
        train_cfg = dict(max_epochs=1, val_interval=100)
        val_dataloader = None
        val_evaluator = None
        val_cfg = None
        test_dataloader = None
        test_evaluator = None
        test_cfg = None
        env_cfg = dict(dist_cfg=dict(backend='nccl'))  # a GPU config: must fall back to gloo without CUDA
        default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                             checkpoint=dict(type='CheckpointHook', interval=1))
    """))
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    work = tmp_path / 'work'
    r = subprocess.run(['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', str(work)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (work / 'epoch_1.pth').is_file()
    log = open(glob.glob(str(work / '*' / '*.log'))[0]).read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # mmengine's name for the world size
    assert 'using the gloo backend instead of nccl' in r.stdout + r.stderr + log
    # 16 objects, batch 4 per process, 2 processes: 2 iterations in the epoch
    assert 'Epoch(train) [1][2/2]' in log


def test_train_py_frees_its_runner_before_the_process_group_is_destroyed(tmp_path, tiny_objects):
    """Nothing outlives ``tools/train.py``'s runner: its DDP wrapper holds the process group, and a group that lives
    until interpreter exit can abort a gloo rank there (the SIGABRT once seen under ``dist_train.sh``). An optional
    import that fails while the runner builds its visualizer keeps a traceback, and with it the runner's frames."""
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = ['{CONFIG}']
        train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                                dataset=dict(data_root='{tiny_objects}/'))
        train_cfg = dict(max_epochs=1, val_interval=100)
        val_dataloader = val_evaluator = val_cfg = None
        test_dataloader = test_evaluator = test_cfg = None
        default_hooks = dict(checkpoint=None)
    """))
    script = textwrap.dedent(f"""
        import gc, runpy, sys
        sys.argv = ['tools/train.py', {str(cfg)!r}, '--work-dir', {str(tmp_path / 'work')!r}]
        runpy.run_path('tools/train.py', run_name='__main__')
        gc.collect()
        from mmengine.runner import Runner
        alive = [o for o in gc.get_objects() if isinstance(o, Runner)]
        print('RUNNERS_ALIVE', len(alive))
    """)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'RUNNERS_ALIVE 0' in r.stdout, r.stdout[-2000:]
