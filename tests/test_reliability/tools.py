"""Run the project's tools (``tools/train.py``, ``tools/dist_train.sh``, ``tools/create_data.py``) on tiny generated
data for the fault tests: config writers and a subprocess runner with a bounded time."""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
SIMIPU_CONFIG = ROOT / 'configs/simipu/simipu_r18-sparse_1xb2-2e_synthetic-nuscenes.py'
CROSSPOINT_CONFIG = ROOT / 'configs/crosspoint/crosspoint_dgcnn_1xb16-3e_synthetic-objects.py'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(cmd: List[str], timeout: float = 600, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run a tool from the repository root (stdout + stderr captured, bounded time: a hang fails the test)."""
    e = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')
    e.update(env or {})
    return subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout)


def train(config: str, work_dir: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run([sys.executable, 'tools/train.py', str(config), '--work-dir', str(work_dir), *args], timeout=timeout)


def output(r: subprocess.CompletedProcess) -> str:
    return (r.stdout or '') + (r.stderr or '')


def scalars(work_dir: str) -> List[dict]:
    """Rows of the newest run's ``vis_data/scalars.json`` in ``work_dir`` (training rows only)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert files, f'no scalars.json under {work_dir}'
    with open(files[-1]) as f:
        return [r for r in map(json.loads, f) if 'loss' in r]


def logs(work_dir: str) -> str:
    return '\n'.join(open(p).read() for p in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))))


def write_config(path: str, text: str) -> str:
    with open(path, 'w') as f:
        f.write(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------------------------------------ configs
def crosspoint_config(path: str, data_root: str, max_epochs: int = 3, batch_size: int = 4, loader: str = '',
                      dataset: str = '', checkpoint: str = '') -> str:
    """The shipped CrossPoint config (AtomicCheckpointHook, ShardCheckHook, RNGStateHook ...) cut to a tiny PointNet
    model on ``data_root``: one checkpoint per epoch, ``max_keep_ckpts=1``, no validation. ``loader``, ``dataset``
    and ``checkpoint`` are extra ``key=value, `` text for the train dataloader, its dataset and the checkpoint
    hook."""
    return write_config(path, f"""
        _base_ = [{str(CROSSPOINT_CONFIG)!r}]
        custom_imports = dict(imports=['mmxmodal', 'tests.test_reliability.fault_hooks'], allow_failed_imports=False)
        model = dict(
            point_encoder=dict(_delete_=True, type='PointNetEncoder', in_channels=3, mlp_channels=(16, 16, 16, 32),
                               emb_dims=32),
            img_backbone=dict(depth=18, base_channels=8),
            point_head=dict(in_channels=32, hidden_channels=32, out_channels=16),
            img_head=dict(in_channels=64, hidden_channels=32, out_channels=16))
        max_epochs = {max_epochs}
        train_cfg = dict(max_epochs=max_epochs, val_interval=1000)
        param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5, by_epoch=True, begin=0,
                                end=max_epochs)]
        train_dataloader = dict(batch_size={batch_size}, num_workers=0, persistent_workers=False, {loader}
                                dataset=dict(data_root={data_root + '/'!r}, {dataset}))
        val_dataloader = None
        val_evaluator = None
        val_cfg = None
        test_dataloader = None
        test_evaluator = None
        test_cfg = None
        default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                             checkpoint=dict(interval=1, max_keep_ckpts=1, {checkpoint}))
        log_processor = dict(window_size=1)
        randomness = dict(seed=0, deterministic=True)
    """)


def simipu_config(path: str, data_root: str, ann_file: str, validate_points: bool = True, nan_guard: bool = True,
                  max_epochs: int = 1) -> str:
    """The shipped SimIPU config (pipeline with ValidatePoints / ValidateImages, on_error='skip', the reliability
    hooks) cut to a tiny model on a :func:`tests.test_reliability.data.make_scene_root` root (two cameras)."""
    from tests.test_reliability.data import CAMS, PREFIX
    hooks = "dict(type='SkippedSamplesHook'), dict(type='RNGStateHook')"
    if nan_guard:
        hooks += ", dict(type='NaNGuardHook', action='skip', max_skips=20)"
    return write_config(path, f"""
        _base_ = [{str(SIMIPU_CONFIG)!r}]
        pcr = [-25.6, -25.6, -5.0, 25.6, 25.6, 3.0]
        voxel = [0.8, 0.8, 0.2]
        model = dict(
            data_preprocessor=dict(voxel_layer=dict(max_num_points=5, voxel_size=voxel, point_cloud_range=pcr,
                                                    max_voxels=(4000, 4000))),
            img_backbone=dict(base_channels=8),
            img_feat_levels=(0, 1, 2, 3), img_feat_channels=(8, 16, 32, 64),
            pts_middle_encoder=dict(
                _delete_=True, type='SparseEncoder', in_channels=5, sparse_shape=[41, 64, 64], output_channels=16,
                base_channels=8, order=('conv', 'norm', 'act'),
                encoder_channels=((8, 8, 16), (16, 16, 16), (16, 16, 16), (16, 16)),
                encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)), block_type='basicblock'),
            sparse_point_sources=('conv_input', 'encoder_layer1', 'bev'),
            point_proj=dict(hidden_channels=(16, ), out_channels=8),
            loss_intra=dict(max_pairs=64), loss_inter=dict(max_pairs=64), max_pairs_intra=64, max_pairs_inter=64)
        pipeline = [
            dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
            dict(type='ValidatePoints', check_finite={validate_points}, min_points=1, stage='as loaded'),
            dict(type='PointsRangeFilter', point_cloud_range=pcr),
            dict(type='ValidatePoints', check_finite=False, min_points=1, stage='after PointsRangeFilter'),
            dict(type='ValidateImages'),
            dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views={len(CAMS)}),
            dict(type='MultiViewImageAug', final_shape=(32, 64), scale_range=(1.0, 1.2), crop_mode='random',
                 flip_ratio=0.5, pad_size_divisor=32),
            dict(type='ProjectPointsToCameras', min_depth=0.5, time_dim=4),
            dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5),
            dict(type='PackPairedSceneInputs'),
        ]
        train_dataloader = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            dataset=dict(data_root={data_root!r}, ann_file={ann_file!r}, data_prefix={PREFIX!r},
                         cam_names={list(CAMS)!r}, pipeline=pipeline, on_error='skip'))
        train_cfg = dict(max_epochs={max_epochs})
        custom_hooks = [{hooks}]
        randomness = dict(seed=0, deterministic=True)
    """)


_TRAIN_MODULE = None


def train_in_fork(config: str, work_dir: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``tools/train.py CONFIG --work-dir DIR ARGS`` as its own process, forked from this (already warm) one.

    The child runs the tool's ``main()`` with the tool's ``sys.argv``: a real process that a test can SIGKILL or
    interrupt, without paying the imports of a fresh interpreter again (about 15 s of CPU each on 2 cores). Returns
    like :func:`subprocess.run` (``returncode`` is ``-signal`` for a killed child; stdout holds both streams). A
    child running past ``timeout`` is killed and the test fails.
    """
    import importlib.util
    import signal
    import tempfile
    import time
    import traceback
    global _TRAIN_MODULE
    if _TRAIN_MODULE is None:
        spec = importlib.util.spec_from_file_location('_mmxmodal_tools_train', str(ROOT / 'tools' / 'train.py'))
        _TRAIN_MODULE = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_TRAIN_MODULE)
    argv = ['tools/train.py', str(config), '--work-dir', str(work_dir), *args]
    fd, log = tempfile.mkstemp(prefix='train_fork_', suffix='.log')
    os.close(fd)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            out = open(log, 'w', buffering=1)
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            sys.stdout = sys.stderr = out
            os.chdir(ROOT)
            sys.argv = argv
            _TRAIN_MODULE.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001  (KeyboardInterrupt included: the Ctrl-C tests)
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
            finally:
                os._exit(code)
    start = time.time()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.time() - start > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise subprocess.TimeoutExpired(argv, timeout)
        time.sleep(0.05)
    rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    with open(log) as f:
        text = f.read()
    os.remove(log)
    return subprocess.CompletedProcess(argv, rc, text, '')
