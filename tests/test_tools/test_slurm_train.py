"""``tools/slurm_train.sh`` on a real single-node Slurm (Debian's slurm-wlm + munge, started here on the hostname
with a 2-CPU partition ``cpu``): 2 tasks, no GPU requested, both ranks train, and the loss equals
``tools/dist_train.sh`` with the same seed. The daemons this test starts are stopped at the end.

Slurm is installed with apt when absent (these machines and CI run as root with Debian's registry); the test is
skipped, with the reason, only where that is impossible (not root, no apt-get)."""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/crosspoint/crosspoint_dgcnn_1xb16-10e_synthetic-objects.py'
HOST = socket.gethostname().split('.')[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


SLURM_BINARIES = ('slurmctld', 'slurmd', 'srun', 'munged')
HAS_SLURM = all(shutil.which(b) for b in SLURM_BINARIES)
CAN_INSTALL_SLURM = os.geteuid() == 0 and shutil.which('apt-get') is not None
# the only condition under which these tests do not run: decided before collection, shown by ``pytest -rs``
pytestmark = pytest.mark.skipif(
    not (HAS_SLURM or CAN_INSTALL_SLURM),
    reason='slurm-wlm / munge are not installed and cannot be installed here (needs root and apt-get)')


def _ensure_slurm() -> None:
    """Install slurm-wlm and munge with apt-get when absent (the module is skipped where that is impossible)."""
    if all(shutil.which(b) for b in SLURM_BINARIES):
        return
    assert CAN_INSTALL_SLURM, 'the skipif above lets this test run only where slurm is installed or installable'
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    subprocess.run(['apt-get', 'update', '-q'], check=True, env=env, capture_output=True, timeout=900)
    r = subprocess.run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'slurm-wlm', 'munge'],
                       env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.fixture(scope='module')
def slurm(tmp_path_factory):
    """slurmctld + slurmd (+ munged if none runs) on this host; yields the environment for srun; stops them."""
    _ensure_slurm()
    d = tmp_path_factory.mktemp('slurm')
    for sub in ('state', 'spool', 'log'):
        (d / sub).mkdir()
    conf = d / 'slurm.conf'
    conf.write_text(textwrap.dedent(f"""
        ClusterName=mmxmodal-test
        SlurmctldHost={HOST}
        SlurmctldPort={_free_port()}
        SlurmdPort={_free_port()}
        AuthType=auth/munge
        SlurmUser=root
        SlurmdUser=root
        StateSaveLocation={d}/state
        SlurmdSpoolDir={d}/spool
        SlurmctldPidFile={d}/slurmctld.pid
        SlurmdPidFile={d}/slurmd.pid
        SlurmctldLogFile={d}/log/slurmctld.log
        SlurmdLogFile={d}/log/slurmd.log
        ProctrackType=proctrack/linuxproc
        TaskPlugin=task/none
        MpiDefault=none
        JobAcctGatherType=jobacct_gather/none
        AccountingStorageType=accounting_storage/none
        SelectType=select/cons_tres
        SelectTypeParameters=CR_CPU
        ReturnToService=2
        NodeName={HOST} CPUs=2 State=UNKNOWN
        PartitionName=cpu Nodes={HOST} Default=YES MaxTime=INFINITE State=UP
    """))
    env = dict(os.environ, SLURM_CONF=str(conf))
    started = []
    if subprocess.run(['pgrep', '-x', 'munged'], capture_output=True).returncode != 0:
        key = Path('/etc/munge/munge.key')
        if not key.exists():
            subprocess.run(['mungekey', '--create'], check=False, capture_output=True)
        Path('/run/munge').mkdir(parents=True, exist_ok=True)
        started.append(subprocess.Popen(['munged', '--foreground', '--force'], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT))
        time.sleep(1)
    started.append(subprocess.Popen(['slurmctld', '-D', '-i', '-f', str(conf)], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.STDOUT))
    time.sleep(2)
    started.append(subprocess.Popen(['slurmd', '-D', '-f', str(conf)], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.STDOUT))
    try:
        for _ in range(60):
            r = subprocess.run(['sinfo', '-h', '-o', '%t', '-p', 'cpu'], env=env, capture_output=True, text=True)
            if r.stdout.strip() in ('idle', 'mix', 'alloc'):
                break
            time.sleep(1)
        else:
            logs = ''.join(p.read_text()[-1500:] for p in (d / 'log').glob('*.log'))
            raise AssertionError(f'slurm node did not come up: {r.stdout} {r.stderr}\n{logs}')
        yield env
    finally:
        for p in reversed(started):  # only the daemons started here
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope='module')
def tiny_objects(tmp_path_factory) -> str:
    from mmxmodal_bench.synthetic.objects import generate_objects
    root = tmp_path_factory.mktemp('slurm_objects')
    generate_objects(str(root), num_objects=16, seed=1, num_views=2, image_size=32, num_points=512,
                     cls_train_per_class=1, cls_test_per_class=1, scanobjectnn=False, workers=1)
    return str(root)


def _config(tmp_path, data_root) -> Path:
    (tmp_path / 'rank_marker.py').write_text(textwrap.dedent('''
        import os
        import torch.distributed as dist
        from mmengine.hooks import Hook
        from mmdet3d.registry import HOOKS

        @HOOKS.register_module()
        class RankMarkerHook(Hook):
            def before_train(self, runner):
                with open(os.path.join(runner.work_dir, f'rank{dist.get_rank()}_of_{dist.get_world_size()}'),
                          'w') as f:
                    f.write(os.environ.get('SLURM_PROCID', os.environ.get('RANK', '?')))
    '''))
    cfg = tmp_path / 'tiny_slurm.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = ['{CONFIG}']
        custom_imports = dict(imports=['mmxmodal', 'rank_marker'], allow_failed_imports=False)
        custom_hooks = [dict(type='RankMarkerHook')]
        train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                                dataset=dict(data_root='{data_root}/'))
        train_cfg = dict(max_epochs=1, val_interval=100)
        val_dataloader = None
        val_evaluator = None
        val_cfg = None
        test_dataloader = None
        test_evaluator = None
        test_cfg = None
        randomness = dict(seed=0)
        env_cfg = dict(dist_cfg=dict(backend='nccl'))  # a GPU config: falls back to gloo without CUDA
        default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                             checkpoint=dict(type='CheckpointHook', interval=1))
    """))
    return cfg


def _losses(work: Path):
    rows = [json.loads(ln) for ln in open(glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))[0])]
    return [r['loss'] for r in rows if 'loss' in r]


@pytest.mark.slow
def test_local_slurm_runs_two_tasks(slurm):
    r = subprocess.run(['srun', '-p', 'cpu', '--ntasks=2', '--cpus-per-task=1', 'bash', '-c', 'echo rank=$SLURM_PROCID'],
                       env=slurm, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(r.stdout.split()) == ['rank=0', 'rank=1']


@pytest.mark.slow
def test_slurm_train_two_tasks_on_cpu_equals_dist_train(slurm, tmp_path, tiny_objects):
    cfg = _config(tmp_path, tiny_objects)
    env = dict(slurm, PYTHON=sys.executable, GPUS='2', GPUS_PER_NODE='0', CPUS_PER_TASK='1', OMP_NUM_THREADS='1',
               MASTER_PORT=str(_free_port()),
               PYTHONPATH=f'{tmp_path}{os.pathsep}{ROOT}{os.pathsep}' + os.environ.get('PYTHONPATH', ''))
    work = tmp_path / 'slurm_work'
    r = subprocess.run(['bash', 'tools/slurm_train.sh', 'cpu', 'mmxmodal-test', str(cfg), str(work)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=1200)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert '--gres' not in out  # no GPU asked for
    assert (work / 'epoch_1.pth').is_file()
    assert sorted(p.name for p in work.glob('rank*')) == ['rank0_of_2', 'rank1_of_2']  # both tasks took part
    assert {(work / f'rank{i}_of_2').read_text() for i in (0, 1)} == {'0', '1'}  # as SLURM_PROCID 0 and 1
    log = open(glob.glob(str(work / '*' / '*.log'))[0]).read()
    assert 'Distributed launcher: slurm' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert 'Epoch(train) [1][2/2]' in log  # 16 objects, batch 4 per task, 2 tasks: the epoch ran to the end

    dist_work = tmp_path / 'dist_work'
    env_d = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1',
                 PYTHONPATH=env['PYTHONPATH'])
    r = subprocess.run(['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', str(dist_work)], cwd=ROOT,
                       env=env_d, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    a, b = _losses(work), _losses(dist_work)
    assert len(a) == len(b) == 2
    assert a == pytest.approx(b, rel=1e-5, abs=1e-6), (a, b)
