"""The main job in one command, on embedded synthetic data, without GPU or download (``make demo``).

    python tools/demo.py [--work-dir work_dirs/demo] [--data-root data] [--skip-existing] [--quick]
                         [--jobs 2] [--threads N] [--steps STEP ...]

Steps (each prints its elapsed time; trainings are ``tools/train.py`` subprocesses whose mmengine logs are shown
live, prefixed by the step name, and kept in full under ``<work-dir>/logs/``):

1. ``data``       generate (or reuse) the embedded nuScenes-format root and the object sets
                  (``tools/create_synthetic_data.py``); a root is reused only when complete and made with the same
                  arguments
2. ``figures``    LiDAR points drawn on the six camera images; rendered objects next to their point clouds

then two lanes that run side by side (``--jobs 2``, one CPU thread per process), or one after the other:

3. ``simipu``     SimIPU pretraining of a ResNet-18 image encoder + CenterPoint's sparse LiDAR encoder, no labels
4. ``finetune``   CenterPoint with 10 % of the labels, from the SimIPU LiDAR encoder and from scratch, same schedule
                  (``tools/label_efficiency.py``)

5. ``crosspoint`` CrossPoint pretraining of a DGCNN point encoder + ResNet-18 image encoder, no labels
6. ``probe``      linear-SVM probe of the CrossPoint point encoder vs. its random init; t-SNE of the held-out
                  features
7. ``crossmost``  Cross-MoST label-free self-training from its weak start
                  (``tools/crossmost_synthetic_acceptance.py``)

and finally ``<work-dir>/report.md``: every number with the command that produced it, the figures, the time of
every step.

A failing step is reported loudly with its log; the steps that do not need it still run, the report is written
with the failure marked, and the exit status is 1. ``--skip-existing`` reuses the outputs of steps that finished in
an earlier run in the same work dir (e.g. to re-render the report); with ``--steps`` only the named steps run and
the others are reused. ``--quick`` shrinks data and schedules to a smoke test (its numbers mean nothing).
"""
import time

T_START = time.time()  # the imports below (torch, mmdet3d through mmxmodal) count in the demo's time

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import os.path as osp  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from typing import Callable, Dict, List, Optional, Sequence  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from mmxmodal.utils.report import (Report, StepRecord, add_sum_key, first_last, last_val,  # noqa: E402
                                   load_scalars, plot_bars, plot_curves, plot_runs_comparison, plot_tsne,
                                   train_series, val_series)

PY = sys.executable
BUDGET_S = 15 * 60
STEPS = ('data', 'figures', 'simipu', 'finetune', 'crosspoint', 'probe', 'crossmost')

CONFIGS = dict(
    simipu='configs/simipu/simipu_r18-sparse_1xb2-2e_synthetic-nuscenes.py',
    finetune='configs/finetune/centerpoint_voxel0512_second_secfpn_1xb2-40e_synthetic-nuscenes-3d_simipu.py',
    crosspoint='configs/crosspoint/crosspoint_dgcnn_1xb16-3e_synthetic-objects.py',  # the acceptance recipe

)

# ----------------------------------------------------------------------------------------- data and schedules
# Data: the arguments of the configs' header comments, so that the configs also run as they are on these roots.
DATA = dict(
    full=dict(
        nuscenes=dict(dir='synthetic_nuscenes',
                      args=dict(num_scenes=4, samples_per_scene=10, sweeps=3, seed=0, workers=2)),
        objects=dict(dir='synthetic_objects',
                     args=dict(num_objects=320, num_points=1024, image_size=64, num_views=4, cls_train_per_class=20,
                               cls_test_per_class=20, seed=0, scanobjectnn=False)),
        crossmost=dict(dir='synthetic_objects_crossmost',
                       args=dict(num_objects=12, num_views=2, cls_train_per_class=40, cls_test_per_class=20,
                                 cls_views=4, image_size=64, num_points=1024, seed=0, scanobjectnn=False)),
    ),
    quick=dict(
        nuscenes=dict(dir='synthetic_nuscenes',
                      args=dict(num_scenes=4, samples_per_scene=2, sweeps=1, seed=0, image_size='320x180',
                                workers=2)),
        objects=dict(dir='synthetic_objects',
                     args=dict(num_objects=32, num_points=256, image_size=32, num_views=2, cls_train_per_class=3,
                               cls_test_per_class=3, seed=0, scanobjectnn=False)),
        crossmost=dict(dir='synthetic_objects_crossmost',
                       args=dict(num_objects=12, num_views=2, cls_train_per_class=4, cls_test_per_class=2,
                                 cls_views=2, image_size=32, num_points=256, seed=0, scanobjectnn=False)),
    ),
)

# Demo schedules (the configs' own are longer), chosen so that the demo fits 15 min on 2 CPU cores.
SCHEDULES = dict(
    full=dict(
        simipu=dict(epochs=2, samples=None),  # None: every train sample
        finetune=dict(epochs=40, label_ratio=0.1),
        crosspoint=dict(epochs=None, val_interval=1),  # None: the config's schedule; the probe every epoch
        crossmost=dict(warmup_epochs=None, epochs=None),  # None: tools/crossmost_synthetic_acceptance.py defaults
    ),
    quick=dict(
        simipu=dict(epochs=1, samples=2),
        finetune=dict(epochs=1, label_ratio=0.5),
        crosspoint=dict(epochs=1, val_interval=1),
        crossmost=dict(warmup_epochs=1, epochs=1),
    ),
)


class StepFailed(RuntimeError):

    def __init__(self, msg: str, log: str = ''):
        super().__init__(msg)
        self.log = log


def rel(path: str) -> str:
    """Path relative to the repository root when inside it (for commands a user can paste)."""
    path = osp.abspath(path)
    return osp.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def cmd_text(cmd: Sequence[str]) -> str:
    """The command as a user would type it from the repository root."""
    cmd = list(cmd)
    if cmd and cmd[0] == PY:
        cmd[0] = 'python'
    return ' '.join(shlex.quote(rel(c) if osp.isabs(c) and c.startswith(ROOT) else c) for c in cmd)


# --------------------------------------------------------------------------------------------------- console
_PRINT_LOCK = threading.Lock()
_STEP = threading.local()  # .cpu: CPU seconds of the subprocesses run by the current step (this lane)


def say(tag: str, text: str) -> None:
    """Print whole lines, prefixed by ``[tag]``, safely from several lanes."""
    with _PRINT_LOCK:
        for line in text.splitlines() or ['']:
            sys.stdout.write(f'[{tag}] {line}\n')
        sys.stdout.flush()


class ConsoleFilter:
    """Decides which lines of a run reach the console (all of them stay in the log file): not the environment,
    config and hook-order dumps, not Python / torch warnings; a long val line is cut to its headline metrics.
    Call it with a line; returns the text to show or None."""
    HIDE = ('System environment:', 'Runtime environment:', 'Config:', 'Hooks will be executed', 'Exp name:')
    HEADLINE = re.compile(r'(\S*(?:NDS|mAP|accuracy|_acc))\s*:\s*([-+0-9.e]+|nan)')
    MAX_LEN = 300

    def __init__(self) -> None:
        self.hiding = False
        self.in_warning = False

    def __call__(self, line: str) -> Optional[str]:
        line = line.rstrip('\n')
        if self.in_warning and line.startswith((' ', '\t')):
            return None  # the source line printed under a warning
        self.in_warning = False
        if ' - mmengine - ' in line[:40]:
            msg = line.split(' - ', 3)[-1].strip() if line.count(' - ') >= 3 else ''
            self.hiding = msg.startswith(self.HIDE) or msg == ''
            return None if self.hiding else self._shorten(line)
        if line.startswith('Traceback') or (line[:1].isalpha() and 'Error' in line.split(':', 1)[0]):
            self.hiding = False
            return line
        if 'Warning:' in line or re.match(r'^W\d{4} ', line):
            self.in_warning = True
            return None
        return None if self.hiding else self._shorten(line)

    def _shorten(self, line: str) -> str:
        if len(line) <= self.MAX_LEN:
            return line
        if 'Epoch(val)' in line or 'Epoch(test)' in line:
            head = re.match(r'^.*?Epoch\((?:val|test)\)(?:\s*\[[^\]]*\])*', line).group(0)
            keys = ['{}: {}'.format(k.split('/')[-1], v) for k, v in self.HEADLINE.findall(line)]
            return head + '  ' + '  '.join(keys) + '  (all metrics in the log)'
        return line[:self.MAX_LEN] + ' ...'


class _Follower(threading.Thread):
    """Shows the new lines of log files that a command writes itself (``follow`` globs), filtered."""

    def __init__(self, patterns: Sequence[str], tag: str) -> None:
        super().__init__(daemon=True)
        self.patterns, self.tag = patterns, tag
        self.offsets: Dict[str, int] = {}
        self.filters: Dict[str, ConsoleFilter] = {}
        self.stop = threading.Event()

    def poll(self) -> None:
        for pat in self.patterns:
            for path in sorted(glob.glob(pat)):
                try:
                    with open(path) as f:
                        f.seek(self.offsets.get(path, 0))
                        chunk = f.read()
                except OSError:
                    continue
                if not chunk:
                    continue
                end = chunk.rfind('\n') + 1  # complete lines only
                self.offsets[path] = self.offsets.get(path, 0) + len(chunk[:end].encode())
                filt = self.filters.setdefault(path, ConsoleFilter())
                shown = [t for t in map(filt, chunk[:end].splitlines()) if t is not None]
                if shown:
                    say(f'{self.tag}:{osp.splitext(osp.basename(path))[0]}', '\n'.join(shown))

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.poll()
        self.poll()


def run_logged(cmd: List[str], log_path: str, title: str, tag: str = 'demo', env: Optional[dict] = None,
               follow: Sequence[str] = ()) -> float:
    """Run ``cmd`` from the repository root; its output goes to ``log_path`` and (filtered) to the console.
    Returns the CPU seconds (user + system) of the command and of the processes it waited for.

    Args:
        follow: globs of log files the command writes itself, shown live as well.

    Raises:
        StepFailed: non-zero exit (the message names the command and the log; the log tail is printed).
    """
    os.makedirs(osp.dirname(osp.abspath(log_path)), exist_ok=True)
    text = cmd_text(cmd)
    say(tag, f'{title}\n$ {text}\n  (full log: {rel(log_path)})')
    filt = ConsoleFilter()
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    follower = _Follower(follow, tag) if follow else None
    if follower:
        follower.start()
    with open(log_path, 'w') as log:
        log.write(f'$ {text}\n')
        log.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, env=full_env)
        for line in proc.stdout:
            log.write(line)
            log.flush()
            shown = filt(line)
            if shown is not None:
                say(tag, shown)
        # wait4: the exit status and the CPU time of this command (and of the processes it waited for)
        _, status, usage = os.wait4(proc.pid, 0)
        rc = proc.returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        _STEP.cpu = getattr(_STEP, 'cpu', 0.0) + cpu
    if follower:
        follower.stop.set()
        follower.join()
    if rc != 0:
        with open(log_path) as f:
            tail = f.read().splitlines()[-25:]
        say(tag, '---- last lines of ' + rel(log_path) + '\n' + '\n'.join('    ' + t for t in tail))
        raise StepFailed(f'command failed (exit {rc}): {text}', log=rel(log_path))
    return cpu


def train_cmd(config: str, work_dir: str, options: Dict[str, object]) -> List[str]:
    cmd = [PY, 'tools/train.py', config, '--work-dir', rel(work_dir)]
    if options:
        cmd += ['--cfg-options'] + [f'{k}={_opt(v)}' for k, v in options.items()]
    return cmd


def _opt(v) -> str:
    if isinstance(v, (list, tuple)):
        return '[' + ','.join(_opt(x) for x in v) + ']'
    return 'None' if v is None else str(v)


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint named in ``<work_dir>/last_checkpoint`` (written by mmengine's CheckpointHook)."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise StepFailed(f'no checkpoint written in {rel(work_dir)} (no last_checkpoint file)')
    with open(marker) as f:
        ckpt = f.read().strip()
    ckpt = ckpt if osp.isabs(ckpt) else osp.join(ROOT, ckpt)
    if not osp.isfile(ckpt):
        raise StepFailed(f'{rel(marker)} names a missing checkpoint: {ckpt}')
    return ckpt


# ------------------------------------------------------------------------------------------------------ demo
class Demo:

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.mode = 'quick' if args.quick else 'full'
        self.work = osp.abspath(args.work_dir)
        self.data_root = osp.abspath(args.data_root or (osp.join(self.work, 'data') if args.quick else 'data'))
        self.logs = osp.join(self.work, 'logs')
        self.figs = osp.join(self.work, 'figures')
        self.data_cfg = DATA[self.mode]
        self.sched = SCHEDULES[self.mode]
        self.jobs = max(1, args.jobs)
        self.threads = args.threads or max(1, (os.cpu_count() or 2) // self.jobs)
        self.env = dict(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        self.report = Report(title='mmxmodal demo: label-free cross-modal pretraining on embedded synthetic data')
        self.results: Dict[str, dict] = {}
        self.status: Dict[str, str] = {}
        self.numbers: Dict[str, list] = {}  # step -> [(args, kwargs)] for Report.add, in step order
        self.warnings: List[str] = []
        self.figures: Dict[str, list] = {}  # step -> [(caption, path)]
        self.timings_file = osp.join(self.work, 'timings.json')
        self.timings = self._load_json(self.timings_file)  # of earlier runs: shown for reused steps
        self.wanted = set(args.steps or STEPS)
        self._lock = threading.Lock()
        os.makedirs(self.logs, exist_ok=True)
        os.makedirs(self.figs, exist_ok=True)

    @staticmethod
    def _load_json(path: str) -> dict:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def root(self, name: str) -> str:
        return osp.join(self.data_root, self.data_cfg[name]['dir'])

    def fig(self, name: str) -> str:
        return osp.join(self.figs, name)

    # per-step collection (lanes run in threads; the report is assembled in step order at the end)
    def add(self, step: str, *args, **kwargs) -> None:
        self.numbers.setdefault(step, []).append((args, kwargs))

    def add_figure(self, step: str, caption: str, path: str) -> None:
        self.figures.setdefault(step, []).append((caption, osp.relpath(path, self.work)))

    def may_run(self, step: str, what: str) -> None:
        """Raise when ``step`` may only reuse earlier outputs (not named in ``--steps``)."""
        if step not in self.wanted:
            raise StepFailed(f'not requested with --steps and no earlier outputs to reuse ({what})')

    def reuse_ok(self, step: str) -> bool:
        return self.args.skip_existing or step not in self.wanted

    # ------------------------------------------------------------------------------------------ step runner
    def run_step(self, name: str, fn: Callable[[], Optional[bool]], needs: tuple = ()) -> None:
        missing = [n for n in needs if self.status.get(n) not in ('ok', 'reused')]
        if missing:
            msg = f'not run: needs step(s) {", ".join(missing)}'
            say(name, f'==== step {name}: SKIPPED ({msg})')
            self._record(name, StepRecord(name, None, 'skipped', error=msg))
            return
        say(name, f'==== step {name} starts ({time.time() - self.t0:.0f} s into the demo)')
        t = time.time()
        _STEP.cpu, thread_cpu = 0.0, time.thread_time()  # subprocesses + this lane's own work (figures, probe)
        log = ''
        try:
            reused = fn()
            status, err = ('reused' if reused else 'ok'), ''
        except StepFailed as e:
            status, err, log = 'FAILED', str(e), e.log
        except Exception as e:  # a bug or a broken artefact: keep the traceback in a log
            log = rel(osp.join(self.logs, f'{name}.traceback.log'))
            with open(osp.join(ROOT, log), 'w') as f:
                f.write(traceback.format_exc())
            status, err = 'FAILED', f'{type(e).__name__}: {e}'
        dt = time.time() - t
        cpu = _STEP.cpu + time.thread_time() - thread_cpu
        if status == 'FAILED':
            say(name, f'!!!! step {name} FAILED after {dt:.0f} s: {err}' + (f'\n!!!! log: {log}' if log else ''))
        else:
            say(name, f'==== step {name}: {status} in {dt:.1f} s')
        rec = StepRecord(name, dt, status, log=log, error=err, start=t - self.t0, cpu_seconds=cpu)
        if status == 'reused':
            earlier = self.timings.get(name)
            rec.error = 'outputs of an earlier run reused' + (
                f' (there: {earlier["wall"]:.0f} s wall, {earlier["cpu"]:.0f} s CPU)' if isinstance(earlier, dict)
                else '')
        self._record(name, rec, dict(wall=round(dt, 1), cpu=round(cpu, 1)) if status == 'ok' else None)

    def _record(self, name: str, rec: StepRecord, timing: Optional[dict] = None) -> None:
        with self._lock:
            self.status[name] = rec.status
            self.records[name] = rec
            if timing is not None:
                self.timings[name] = timing
                with open(self.timings_file, 'w') as f:
                    json.dump(self.timings, f, indent=1)

    def lane(self, steps: Sequence[tuple]) -> None:
        for name, fn, needs in steps:
            self.run_step(name, fn, needs)  # a step not named in --steps only reuses earlier outputs

    def run(self) -> int:
        self.t0 = T_START
        self.records: Dict[str, StepRecord] = {}
        say('demo', f'work dir {rel(self.work)}, data under {rel(self.data_root)}; {self.jobs} lane(s) at a time, '
            f'{self.threads} CPU thread(s) per process ({os.cpu_count()} cores, load average '
            f'{os.getloadavg()[0]:.1f})')
        self.lane([('data', self.step_data, ()), ('figures', self.step_figures, ('data', ))])
        lanes = [
            [('simipu', self.step_simipu, ('data', )), ('finetune', self.step_finetune, ('data', 'simipu'))],
            [('crosspoint', self.step_crosspoint, ('data', )), ('probe', self.step_probe, ('data', 'crosspoint')),
             ('crossmost', self.step_crossmost, ('data', ))],
        ]
        self.lane_start = time.time()
        if self.jobs > 1:
            threads = [threading.Thread(target=self.lane, args=(steps, ), daemon=True) for steps in lanes]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        else:
            for steps in lanes:
                self.lane(steps)
        total = time.time() - self.t0
        self.write_report(total)
        ok = self.report.complete
        say('demo', f'total {total:.0f} s ({total / 60:.1f} min; budget {BUDGET_S // 60} min on 2 CPU cores; load '
            f'average now {os.getloadavg()[0]:.1f})')
        say('demo', f'report: {rel(osp.join(self.work, "report.md"))}')
        if not ok:
            say('demo', 'FAILED steps or missing numbers: see the "Failures" section of the report')
        return 0 if ok else 1

    # ------------------------------------------------------------------------------------------------ data
    def _objects_cmd(self, name: str) -> List[str]:
        a = self.data_cfg[name]['args']
        cmd = [PY, 'tools/create_synthetic_data.py', 'objects', '--out-dir', rel(self.root(name))]
        for k in ('num_objects', 'num_points', 'image_size', 'num_views', 'cls_train_per_class',
                  'cls_test_per_class', 'cls_views', 'seed'):
            if k in a:
                cmd += ['--' + k.replace('_', '-'), str(a[k])]
        if not a.get('scanobjectnn', True):
            cmd.append('--no-scanobjectnn')
        return cmd

    def _objects_ok(self, name: str) -> bool:
        """meta.json (written last by the generator) matches the arguments and the h5 lists exist."""
        root, a = self.root(name), self.data_cfg[name]['args']
        meta = self._load_json(osp.join(root, 'meta.json'))
        if not meta:
            return False
        want = dict(num_objects=a['num_objects'], num_points=a['num_points'], image_size=a['image_size'],
                    num_views=a['num_views'], seed=a['seed'], scanobjectnn=a['scanobjectnn'],
                    cls_views=a.get('cls_views', a['num_views']))
        if any(meta.get(k) != v for k, v in want.items()):
            return False
        n_cls = len(meta.get('classes', []))
        counts = meta.get('cls_counts', {})
        if counts.get('train') != a['cls_train_per_class'] * n_cls or \
                counts.get('test') != a['cls_test_per_class'] * n_cls:
            return False
        mn = osp.join(root, 'modelnet40_ply_hdf5_2048')
        return all(osp.isfile(osp.join(mn, f)) for f in ('shape_names.txt', 'train_files.txt', 'test_files.txt'))

    def _nuscenes_cmd(self) -> List[str]:
        a = self.data_cfg['nuscenes']['args']
        cmd = [PY, 'tools/create_synthetic_data.py', 'nuscenes', '--out-dir', rel(self.root('nuscenes'))]
        for k in ('num_scenes', 'samples_per_scene', 'sweeps', 'image_size', 'seed', 'workers'):
            if k in a:
                cmd += ['--' + k.replace('_', '-'), str(a[k])]
        return cmd

    def _nuscenes_ok(self) -> bool:
        """Tables with the expected number of samples, and both info pkls written after them (they come last)."""
        root, a = self.root('nuscenes'), self.data_cfg['nuscenes']['args']
        sample_json = osp.join(root, 'v1.0-mini', 'sample.json')
        pkls = [osp.join(root, f'nuscenes_infos_{s}.pkl') for s in ('train', 'val')]
        if not osp.isfile(sample_json) or not all(osp.isfile(p) for p in pkls):
            return False
        if min(osp.getmtime(p) for p in pkls) < osp.getmtime(sample_json):
            return False
        samples = self._load_json(sample_json)
        scenes = self._load_json(osp.join(root, 'v1.0-mini', 'scene.json'))
        if not (isinstance(samples, list) and isinstance(scenes, list) and len(scenes) == a['num_scenes']
                and len(samples) == a['num_scenes'] * a['samples_per_scene']):
            return False
        width, height = map(int, str(a.get('image_size', '640x360')).split('x'))
        sample_data = self._load_json(osp.join(root, 'v1.0-mini', 'sample_data.json'))
        cams = [sd for sd in sample_data if sd.get('width')] if isinstance(sample_data, list) else []
        return bool(cams) and (cams[0]['width'], cams[0]['height']) == (width, height)

    def step_data(self) -> bool:
        """Generate the missing roots side by side (the generators are CPU-bound; each also uses 2 workers)."""
        jobs = [('nuscenes', self._nuscenes_cmd(), self._nuscenes_ok),
                ('objects', self._objects_cmd('objects'), lambda: self._objects_ok('objects')),
                ('crossmost', self._objects_cmd('crossmost'), lambda: self._objects_ok('crossmost'))]
        cmds = {name: cmd_text(cmd) for name, cmd, _ in jobs}
        todo = []
        for name, cmd, ok in jobs:
            if ok():
                say('data', f'reusing {rel(self.root(name))} (complete, same generator arguments)')
            else:
                self.may_run('data', rel(self.root(name)))
                todo.append((name, cmd, ok))
        errors, cpu = [], []

        def generate(name, cmd, ok):
            log = osp.join(self.logs, f'data_{name}.log')
            try:
                cpu.append(run_logged(cmd, log, f'generating {rel(self.root(name))}', tag=f'data:{name}',
                                      env=self.env))
                if not ok():
                    raise StepFailed(f'{rel(self.root(name))} is incomplete after generation', rel(log))
            except StepFailed as e:
                errors.append(e)

        threads = [threading.Thread(target=generate, args=job, daemon=True) for job in todo]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        _STEP.cpu = getattr(_STEP, 'cpu', 0.0) + sum(cpu)
        if errors:
            raise StepFailed('; '.join(str(e) for e in errors), ', '.join(e.log for e in errors))
        self.results['data'] = cmds
        self._data_numbers(cmds)
        return not todo

    def _data_numbers(self, cmds: Dict[str, str]) -> None:
        import pickle
        for split in ('train', 'val'):
            with open(osp.join(self.root('nuscenes'), f'nuscenes_infos_{split}.pkl'), 'rb') as f:
                n = len(pickle.load(f)['data_list'])
            self.add('data', 'data', f'nuScenes-format samples, {split} split (LiDAR + 6 cameras each)', n,
                     command=cmds['nuscenes'])
        for name, what in (('objects', 'CrossPoint'), ('crossmost', 'Cross-MoST')):
            meta = self._load_json(osp.join(self.root(name), 'meta.json'))
            if name == 'objects':
                self.add('data', 'data', f'{what}: unlabelled pretraining objects (ShapeNetRender layout)',
                         meta['num_objects'], command=cmds[name])
            self.add('data', 'data', f'{what}: labelled objects, train split ({len(meta["classes"])} classes)',
                     meta['cls_counts']['train'], command=cmds[name])
            self.add('data', 'data', f'{what}: labelled objects, held-out test split', meta['cls_counts']['test'],
                     command=cmds[name])

    # --------------------------------------------------------------------------------------------- figures
    def step_figures(self) -> bool:
        from mmxmodal_bench.synthetic.visualize import save_object_grid
        from mmxmodal_bench.synthetic.visualize_scene import save_lidar_on_cameras
        reused = True
        out = self.fig('lidar_on_cameras.png')
        if not (self.reuse_ok('figures') and osp.isfile(out)):
            with warnings.catch_warnings():  # the devkit's import-time deprecation warnings
                warnings.simplefilter('ignore')
                save_lidar_on_cameras(self.root('nuscenes'), 0, out, dot_size=2.0)
            reused = False
        self.add_figure('figures', 'LiDAR points (coloured by depth) projected on the six cameras of a generated '
                        'nuScenes-format sample: the pairs SimIPU learns from', out)
        out2 = self.fig('objects.png')
        if not (self.reuse_ok('figures') and osp.isfile(out2)):
            save_object_grid(self.root('objects'), out2)
            reused = False
        self.add_figure('figures', 'Generated objects, one per class: a rendered view next to the point cloud (the '
                        'pairs CrossPoint learns from)', out2)
        return reused

    def _train(self, step: str, cmd: List[str], wd: str, title: str, log_name: Optional[str] = None) -> bool:
        """Run a training command unless its finished outputs may be reused (checkpoint + scalars)."""
        if self.reuse_ok(step):
            try:
                last_checkpoint(wd)
                load_scalars(wd)
                say(step, f'reusing {rel(wd)}')
                return True
            except (StepFailed, FileNotFoundError):
                pass
        self.may_run(step, rel(wd))
        run_logged(cmd, osp.join(self.logs, f'{log_name or step}.log'), title, tag=step, env=self.env)
        return False

    # ---------------------------------------------------------------------------------------------- SimIPU
    def step_simipu(self) -> bool:
        s = self.sched['simipu']
        wd = osp.join(self.work, 'simipu')
        opts = {'train_dataloader.dataset.data_root': rel(self.root('nuscenes')) + '/',
                'train_cfg.max_epochs': s['epochs'], 'default_hooks.checkpoint.interval': s['epochs']}
        if s.get('samples'):
            opts['train_dataloader.dataset.indices'] = s['samples']
        cmd = train_cmd(CONFIGS['simipu'], wd, opts)
        reused = self._train('simipu', cmd, wd, 'SimIPU pretraining (image + LiDAR encoders, no labels)')
        recs = load_scalars(wd)
        self.results['simipu'] = dict(ckpt=last_checkpoint(wd), cmd=cmd_text(cmd))
        per_epoch = max(1, len(train_series(recs, 'loss')[1]) // max(1, s['epochs']))
        text = cmd_text(cmd)
        for key, what, scale, unit in (
                ('loss_intra', 'intra-modal InfoNCE (LiDAR view vs augmented view)', 1, ''),
                ('loss_inter', 'inter-modal InfoNCE (LiDAR point vs its pixel)', 1, ''),
                ('acc_intra', 'intra-modal contrastive top-1 accuracy (1024 pairs per batch)', 100, '%'),
                ('acc_inter', 'inter-modal contrastive top-1 accuracy (1024 pairs per batch)', 100, '%')):
            a, b = first_last(recs, key, window=per_epoch)
            self.add('simipu', 'SimIPU pretraining', f'{what}, mean over the first epoch', a * scale, unit,
                     command=text)
            self.add('simipu', 'SimIPU pretraining', f'{what}, mean over the last epoch', b * scale, unit,
                     command=text, note=f'{s["epochs"]} epochs x {per_epoch} iterations')
        out = self.fig('simipu_pretraining.png')
        plot_curves([
            dict(title='SimIPU InfoNCE losses', ylabel='loss',
                 series=[('loss_intra (LiDAR-LiDAR)', *train_series(recs, 'loss_intra')),
                         ('loss_inter (LiDAR-image)', *train_series(recs, 'loss_inter'))]),
            dict(title='contrastive top-1 accuracy', ylabel='accuracy',
                 series=[('acc_intra', *train_series(recs, 'acc_intra')),
                         ('acc_inter', *train_series(recs, 'acc_inter'))]),
        ], out, title='SimIPU pretraining on the embedded nuScenes-format scenes (no labels)', smooth_window=3)
        self.add_figure('simipu', 'SimIPU pretraining: both InfoNCE losses and their contrastive accuracies', out)
        return reused

    # -------------------------------------------------------------------------------------------- finetune
    def step_finetune(self) -> bool:
        """``tools/label_efficiency.py`` with the demo's SimIPU checkpoint: CenterPoint from scratch and from the
        SimIPU LiDAR encoder, same labelled samples and schedule."""
        s = self.sched['finetune']
        wd = osp.join(self.work, 'finetune')
        out = osp.join(wd, 'label_efficiency')
        ckpt = self.results['simipu']['ckpt']
        cmd = [PY, 'tools/label_efficiency.py', '--data-root', rel(self.root('nuscenes')), '--ratio',
               str(s['label_ratio']), '--seeds', '0', '--checkpoint', rel(ckpt), '--finetune-epochs',
               str(s['epochs']), '--work-dir', rel(wd), '--out', rel(out)]
        reused = self.reuse_ok('finetune') and osp.isfile(out + '.json')
        if not reused:
            self.may_run('finetune', rel(out + '.json'))
            if osp.isfile(out + '.json'):
                os.remove(out + '.json')
            run_logged(cmd, osp.join(self.logs, 'finetune.log'),
                       f'CenterPoint with {s["label_ratio"]:.0%} of the labels: from scratch, then from the SimIPU '
                       'LiDAR encoder', tag='finetune', env=self.env, follow=[osp.join(wd, '*_seed0.log')])
        res = self._load_json(out + '.json')
        if not res.get('runs'):
            raise StepFailed(f'{rel(out)}.json not written or without runs', rel(osp.join(self.logs, 'finetune.log')))
        runs = {r['init']: r for r in res['runs'] if r.get('seed', 0) == 0}
        text = cmd_text(cmd)
        note = f'{s["label_ratio"]:.0%} labels, {s["epochs"]} epochs, val split'
        labels = {'simipu': 'SimIPU-pretrained LiDAR encoder', 'scratch': 'from scratch'}
        for metric in ('NDS', 'mAP'):
            for init in ('simipu', 'scratch'):
                self.add('finetune', 'CenterPoint fine-tuning', f'{metric}, {labels[init]}',
                         runs.get(init, {}).get(metric), command=text, note=note)
            if 'simipu' in runs and 'scratch' in runs:
                self.add('finetune', 'CenterPoint fine-tuning', f'{metric} gain (pretrained - scratch)',
                         runs['simipu'][metric] - runs['scratch'][metric])
        for init in ('simipu', 'scratch'):
            self.add('finetune', 'CenterPoint fine-tuning', f'final train loss, {labels[init]}',
                     runs.get(init, {}).get('final_train_loss'), command=text)
        curves = {}
        for init in ('simipu', 'scratch'):
            try:
                recs = load_scalars(osp.join(wd, f'{init}_seed0'))
            except FileNotFoundError as e:
                raise StepFailed(f'no training curves: {e}', rel(osp.join(wd, f'{init}_seed0.log')))
            # CenterPoint logs one heatmap / box loss per task head (task0.loss_heatmap, ...): plot their sums
            curves[labels[init]] = add_sum_key(add_sum_key(recs, 'loss_heatmap'), 'loss_bbox')
        fig = self.fig('finetune_pretrained_vs_scratch.png')
        plot_runs_comparison(curves, [('loss', 'total loss'), ('sum.loss_heatmap', 'heatmap loss (all task heads)'),
                                      ('sum.loss_bbox', 'box regression loss (all task heads)')], fig,
                             smooth_window=5, logy=True,
                             title=f'CenterPoint with {s["label_ratio"]:.0%} of the labels, same schedule: SimIPU '
                             'init vs scratch')
        fig2 = self.fig('finetune_metrics.png')
        plot_bars({labels[i]: [runs.get(i, {}).get('NDS'), runs.get(i, {}).get('mAP')] for i in ('simipu', 'scratch')},
                  ['NDS', 'mAP'], fig2, ylabel='val', value_fmt='{:.4f}', title='CenterPoint on the val split')
        self.add_figure('finetune', 'Fine-tuning CenterPoint on a labelled fraction: training losses from the '
                        'SimIPU-pretrained LiDAR encoder vs from scratch', fig)
        self.add_figure('finetune', 'Fine-tuning CenterPoint: val NDS / mAP', fig2)
        return reused

    # ------------------------------------------------------------------------------------------ CrossPoint
    def _crosspoint_opts(self) -> Dict[str, object]:
        s = self.sched['crosspoint']
        root = rel(self.root('objects')) + '/'
        probe = root + 'modelnet40_ply_hdf5_2048/'
        opts = {'train_dataloader.dataset.data_root': root,
                'val_dataloader.dataset.datasets.0.data_root': probe,
                'val_dataloader.dataset.datasets.1.data_root': probe,
                'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
                'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
                'train_cfg.val_interval': s['val_interval']}
        if s.get('epochs'):
            opts.update({'train_cfg.max_epochs': s['epochs'], 'param_scheduler.0.T_max': s['epochs'],
                         'param_scheduler.0.end': s['epochs'], 'default_hooks.checkpoint.interval': s['epochs']})
        if self.args.quick:
            opts['model.point_encoder.k'] = 8
        return opts

    def step_crosspoint(self) -> bool:
        wd = osp.join(self.work, 'crosspoint')
        opts = self._crosspoint_opts()
        cmd = train_cmd(CONFIGS['crosspoint'], wd, opts)
        reused = self._train('crosspoint', cmd, wd, 'CrossPoint pretraining (point + image encoders, no labels)')
        recs = load_scalars(wd)
        self.results['crosspoint'] = dict(ckpt=last_checkpoint(wd), cmd=cmd_text(cmd), opts=opts)
        epochs = int(max(r.get('epoch', 1) for r in recs if 'loss' in r))
        per_epoch = max(1, len(train_series(recs, 'loss')[1]) // epochs)
        text = cmd_text(cmd)
        for key, what in (('loss_intra', 'NT-Xent between two augmented point views'),
                          ('loss_cross', 'NT-Xent between the points and their rendered image')):
            a, b = first_last(recs, key, window=per_epoch)
            self.add('crosspoint', 'CrossPoint pretraining', f'{what}, first epoch', a, command=text)
            self.add('crosspoint', 'CrossPoint pretraining', f'{what}, last epoch', b, command=text,
                     note=f'{epochs} epochs')
        acc_keys = sorted({k for r in recs for k in r if k.endswith('/accuracy')})
        self.results['crosspoint']['val_acc'] = {k.split('/')[0]: last_val(recs, k) for k in acc_keys}
        for k in acc_keys:
            self.add('crosspoint', 'CrossPoint pretraining', f'linear-SVM accuracy ({k.split("/")[0]}) logged by the '
                     'val loop, last epoch', last_val(recs, k), '%', command=text,
                     note='LinearSVMMetric, train split -> test split')
        if not acc_keys:
            self.add('crosspoint', 'CrossPoint pretraining', 'linear-SVM accuracy logged by the val loop', None,
                     note='no */accuracy key in the val records')
        out = self.fig('crosspoint_pretraining.png')
        plot_curves([dict(title='loss_intra (point-point NT-Xent)', series=[('loss_intra',
                                                                             *train_series(recs, 'loss_intra'))]),
                     dict(title='loss_cross (point-image NT-Xent)', series=[('loss_cross',
                                                                             *train_series(recs, 'loss_cross'))]),
                     dict(title='linear-SVM probe accuracy (%) per epoch', xlabel='epoch', markers=True,
                          series=[(k, *val_series(recs, k)) for k in acc_keys])],
                    out, title='CrossPoint pretraining on the embedded objects (no labels)', smooth_window=3)
        self.add_figure('crosspoint', 'CrossPoint pretraining: both NT-Xent losses and the linear-SVM probe of '
                        'the val loop', out)
        return reused

    def step_probe(self) -> bool:
        """Features of the labelled splits from the pretrained and the randomly initialised encoder -> linear SVM
        (as ``LinearSVMMetric``: train split -> test split) and t-SNE of the held-out test split."""
        import numpy as np
        out_json = osp.join(self.work, 'probe', 'probe.json')
        feats_npz = osp.join(self.work, 'probe', 'features.npz')
        cp = self.results['crosspoint']
        reused = self.reuse_ok('probe') and osp.isfile(out_json) and osp.isfile(feats_npz)
        if reused:
            res, feats = self._load_json(out_json), dict(np.load(feats_npz))
        else:
            self.may_run('probe', rel(out_json))
            with warnings.catch_warnings():  # import-time deprecation warnings of the libraries
                warnings.simplefilter('ignore')
                res, feats = self._probe(cp['ckpt'], cp['opts'])
            os.makedirs(osp.dirname(out_json), exist_ok=True)
            with open(out_json, 'w') as f:
                json.dump(res, f, indent=2)
            np.savez_compressed(feats_npz, **feats)
        test_opts = ' '.join(f'{k.replace("val_", "test_", 1)}={v}' for k, v in cp['opts'].items()
                             if k.startswith(('val_', 'model.')))
        cmd = f'python tools/test.py {CONFIGS["crosspoint"]} {{}} --cfg-options {test_opts}'
        note = f'fit on {res["num_train"]} train, scored on {res["num_test"]} held-out objects'
        for i, (name, kw) in enumerate(res['metrics'].items()):
            what = f'linear-SVM accuracy ({name}: C={kw.get("C")}' + (', standardised features)' if
                                                                     kw.get('standardize') else ')')
            self.add('probe', 'CrossPoint linear probe', f'{what}, CrossPoint-pretrained point encoder',
                     res['pretrained'][name], '%', command=cmd.format(rel(cp['ckpt'])), note=note)
            self.add('probe', 'CrossPoint linear probe', f'{what}, same encoder randomly initialised',
                     res['random'][name], '%', command=cmd.format(rel(res['random_ckpt'])),
                     note='random_init.pth: init_weights() with the config seed, written by the demo')
            self.add('probe', 'CrossPoint linear probe', f'{what}, gain (pretrained - random init)',
                     res['pretrained'][name] - res['random'][name], 'points')
        head = next(iter(res['metrics']))  # CrossPoint's own probe
        # the same SVM on the same objects: the val loop of the training run must agree with the saved checkpoint
        logged = self.results['crosspoint'].get('val_acc', {})
        for name in res['metrics']:
            if name in logged and abs(logged[name] - res['pretrained'][name]) > 1.0:
                self.warnings.append(
                    f'CrossPoint {name}: the val loop of the training run logged {logged[name]:.2f} % at the last '
                    f'epoch, but the saved checkpoint {rel(cp["ckpt"])} scores {res["pretrained"][name]:.2f} % on '
                    'the same objects in a fresh process (as tools/test.py does): the evaluation during training and '
                    'the evaluation of the saved weights disagree')
        out = self.fig('crosspoint_tsne.png')
        from threadpoolctl import threadpool_limits
        with threadpool_limits(self.threads):  # sklearn's OpenMP threads crawl on a busy machine
            plot_tsne([dict(title=f'CrossPoint-pretrained DGCNN (SVM {res["pretrained"][head]:.1f} %)',
                            feats=feats['pretrained_test'], labels=feats['labels_test']),
                       dict(title=f'random init (SVM {res["random"][head]:.1f} %)', feats=feats['random_test'],
                            labels=feats['labels_test'])], out, class_names=res.get('class_names'),
                      title='t-SNE of DGCNN features of the held-out test objects, coloured by class (labels unseen '
                      'in pretraining)')
        self.add_figure('probe', 't-SNE of the point features of the held-out objects: CrossPoint-pretrained vs '
                        'randomly initialised encoder', out)
        return reused

    def _probe(self, ckpt: str, opts: dict):
        import logging

        import numpy as np
        import torch
        from mmengine.config import Config
        from mmengine.logging import MMLogger
        from mmengine.registry import init_default_scope
        from mmengine.runner import Runner, load_checkpoint, set_random_seed

        from mmdet3d.registry import MODELS
        from mmxmodal.evaluation.few_shot import extract_features
        from mmxmodal.evaluation.linear_svm import linear_svm_accuracy
        from threadpoolctl import threadpool_limits
        torch.set_num_threads(self.threads)
        threadpool_limits(self.threads)  # BLAS / OpenMP pools of this process (sklearn's SVM and t-SNE)
        MMLogger.get_current_instance().setLevel(logging.WARNING)  # no per-parameter init_weights report
        # the config exactly as the training run used it (mmengine dumps it into the work dir), so that the probe
        # matches the run's own val loop even if the config file changed since
        dumped = osp.join(osp.dirname(ckpt), osp.basename(CONFIGS['crosspoint']))
        if osp.isfile(dumped):
            cfg = Config.fromfile(dumped)
        else:
            cfg = Config.fromfile(osp.join(ROOT, CONFIGS['crosspoint']))
            cfg.merge_from_dict(opts)
        init_default_scope(cfg.get('default_scope', 'mmdet3d'))
        loader_cfg = cfg.val_dataloader.copy()
        for ds in loader_cfg.dataset.datasets:
            ds.data_root = osp.join(ROOT, ds.data_root)
        # the val loop's linear-SVM metrics (CrossPoint's probe first; e.g. also one on standardised features)
        evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, (list, tuple)) else [cfg.val_evaluator]
        metrics = {(e.get('prefix') or 'svm'): {k: v for k, v in e.items() if k in ('C', 'classifier', 'standardize',
                                                                                    'max_iter')}
                   for e in evaluators if e.get('type') == 'LinearSVMMetric'}
        if not metrics:
            raise StepFailed(f'{CONFIGS["crosspoint"]} has no LinearSVMMetric in val_evaluator')
        res, feats = dict(metrics=metrics), {}
        random_ckpt = osp.join(self.work, 'probe', 'random_init.pth')
        os.makedirs(osp.dirname(random_ckpt), exist_ok=True)
        for tag in ('pretrained', 'random'):
            set_random_seed(cfg.get('randomness', {}).get('seed', 0))
            model = MODELS.build(cfg.model)
            if tag == 'pretrained':
                load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
            else:
                model.init_weights()
                torch.save(dict(state_dict=model.state_dict(), meta=dict(note='init_weights() with the config seed')),
                           random_ckpt)
            loader = Runner.build_dataloader(loader_cfg, seed=0)
            t = time.time()
            data = extract_features(model, loader)
            train, test = data['splits'] == 'train', data['splits'] == 'test'
            res[tag] = {name: 100.0 * linear_svm_accuracy(data['feats'][train], data['labels'][train],
                                                          data['feats'][test], data['labels'][test], **kw)
                        for name, kw in metrics.items()}
            say('probe', f'{tag}: {int(train.sum())} train / {int(test.sum())} test features '
                f'({data["feats"].shape[1]}-d, {time.time() - t:.1f} s) -> linear-SVM accuracy '
                + ', '.join(f'{n} {a:.2f} %' for n, a in res[tag].items()))
            for split, m in (('train', train), ('test', test)):
                feats[f'{tag}_{split}'] = data['feats'][m]
                feats[f'labels_{split}'] = data['labels'][m]
            res.update(num_train=int(train.sum()), num_test=int(test.sum()),
                       num_classes=int(len(np.unique(data['labels']))))
        res['random_ckpt'] = random_ckpt
        names_file = osp.join(loader_cfg.dataset.datasets[0].data_root, 'shape_names.txt')
        if osp.isfile(names_file):
            with open(names_file) as f:
                res['class_names'] = [ln.strip() for ln in f if ln.strip()]
        return res, feats

    # ------------------------------------------------------------------------------------------- Cross-MoST
    def step_crossmost(self) -> bool:
        s = self.sched['crossmost']
        wd = osp.join(self.work, 'crossmost')
        cmd = [PY, 'tools/crossmost_synthetic_acceptance.py', '--work-dir', rel(wd), '--data-dir',
               rel(self.root('crossmost')), '--threads', str(self.threads)]
        if s.get('warmup_epochs') is not None:
            cmd += ['--warmup-epochs', str(s['warmup_epochs'])]
        if s.get('epochs'):
            cmd += ['--epochs', str(s['epochs'])]
        out_json = osp.join(wd, 'acceptance.json')
        reused = self.reuse_ok('crossmost') and osp.isfile(out_json)
        if not reused:
            self.may_run('crossmost', rel(out_json))
            if osp.isfile(out_json):
                os.remove(out_json)
            run_logged(cmd, osp.join(self.logs, 'crossmost.log'), 'Cross-MoST: label-free image-point warm-up, '
                       '1-shot start classifier, then self-training with an EMA teacher (no labels)', tag='crossmost',
                       env=self.env)
        res = self._load_json(out_json)
        if not res.get('a0') or not res.get('final'):
            raise StepFailed(f'{rel(out_json)} not written or incomplete', rel(osp.join(self.logs, 'crossmost.log')))
        text = cmd_text(cmd)
        names = dict(pts_acc='point branch', img_acc='image branch', combined_acc='combined')
        for k, what in names.items():
            self.add('crossmost', 'Cross-MoST', f'held-out accuracy, {what}, weak start a0', res['a0'][k], '%',
                     command=text, note=res.get('start', ''))
            self.add('crossmost', 'Cross-MoST', f'held-out accuracy, {what}, after self-training (EMA teacher)',
                     res['final'][k], '%', command=text,
                     note=f'{res.get("selftrain_epochs")} epochs on unlabelled train objects')
            self.add('crossmost', 'Cross-MoST', f'gain of the EMA teacher, {what}', res['final'][k] - res['a0'][k],
                     'points')
            if k in res.get('final_student', {}):
                self.add('crossmost', 'Cross-MoST', f'held-out accuracy, {what}, after self-training (student)',
                         res['final_student'][k], '%', command=text)
        out = self.fig('crossmost.png')
        bars = {'weak start (a0)': [res['a0'][k] for k in names],
                'self-trained EMA teacher': [res['final'][k] for k in names]}
        if all(k in res.get('final_student', {}) for k in names):
            bars['self-trained student'] = [res['final_student'][k] for k in names]
        plot_bars(bars, list(names.values()), out,
                  ylabel='held-out accuracy (%)', title='Cross-MoST on the embedded objects (no labels in training)')
        self.add_figure('crossmost', 'Cross-MoST: held-out accuracy of the weak start and after label-free '
                        'self-training', out)
        try:  # self-training curves
            recs = load_scalars(osp.join(wd, 'selftrain'))
            keys = sorted({k for rr in recs if 'iter' in rr for k in rr})

            def series(names, scale=1.0):
                return [(k, *[v * m for v, m in zip(train_series(recs, k), (1.0, scale))]) for k in names
                        if k in keys]

            panels = [dict(title='pseudo-label and fairness losses', ylabel='loss',
                           series=series([k for k in keys if k.startswith(('loss_pl', 'loss_fair'))])),
                      dict(title='alignment and masked-modelling losses', ylabel='loss',
                           series=series([k for k in keys if k.startswith(('loss_align', 'loss_mim', 'loss_mpm'))])),
                      dict(title='pseudo-label accuracy (%, monitor only)', ylabel='%',
                           series=series([k for k in keys if k.startswith(('pl_acc', 'teacher_acc'))], 100.0))]
            panels = [p for p in panels if p['series']]
            if panels:
                out2 = self.fig('crossmost_selftraining.png')
                plot_curves(panels, out2, title='Cross-MoST self-training on the unlabelled train objects',
                            smooth_window=5)
                self.add_figure('crossmost', 'Cross-MoST self-training curves (labels are read only by the monitor)',
                                out2)
        except (FileNotFoundError, KeyError, ValueError) as e:
            say('crossmost', f'(no self-training curves: {e})')
        return reused

    # ---------------------------------------------------------------------------------------------- report
    def write_report(self, total: float) -> None:
        r = self.report
        r.wall_seconds = total
        r.warnings = list(self.warnings)
        for step in STEPS:
            for args, kwargs in self.numbers.get(step, []):
                r.add(*args, **kwargs)
            r.figures += self.figures.get(step, [])
            if step in self.records:
                r.steps.append(self.records[step])
        # a step that ran but produced no number is a failure too
        for step in STEPS:
            if self.status.get(step) in ('ok', 'reused') and step != 'figures' and not self.numbers.get(step):
                r.failures.append(f'step {step} finished but reported no number')
        r.intro = (
            f'Written by `python tools/demo.py --work-dir {rel(self.work)}` ({self.mode} mode) on '
            f'{time.strftime("%Y-%m-%d %H:%M")}: {os.cpu_count()} CPU cores, no GPU, {self.jobs} lane(s) side by side '
            f'with {self.threads} thread(s) per process. Total {total:.0f} s ({total / 60:.1f} min); load average '
            f'at the end {os.getloadavg()[0]:.1f}. Every data set is generated in its real on-disk format under '
            f'`{rel(self.data_root)}`; no pretraining step sees a label. Commands are run from the repository root; '
            'the figures are under `figures/`, the full logs under `logs/`.')
        reused = [s.name for s in r.steps if s.status == 'reused']
        if reused:
            r.intro += (f' Steps reused from an earlier run in this work dir (their time is not in the total): '
                        f'{", ".join(reused)}.')
        if self.args.quick:
            r.intro += '\n\n**Quick mode**: a smoke test with tiny data and schedules; the numbers mean nothing.'
        lanes = time.time() - self.lane_start if hasattr(self, 'lane_start') else float('nan')
        sched = '\n'.join(f'- {k}: ' + ', '.join(f'{kk}={vv}' for kk, vv in v.items()) for k, v in self.sched.items())
        r.sections.append(('Schedules of this demo', sched + '\n\nThe configs\' own schedules are longer; the demo '
                           'shortens them with `--cfg-options` or the tools\' arguments (see the commands). Wall time '
                           f'of the lanes after data and figures: {lanes:.0f} s.'))
        r.write(osp.join(self.work, 'report.md'))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--data-root', default=None, help='where the data sets are generated / reused (default: data, '
                   'or <work-dir>/data with --quick)')
    p.add_argument('--skip-existing', action='store_true',
                   help='reuse the outputs of steps that finished in an earlier run in this work dir')
    p.add_argument('--quick', action='store_true', help='tiny data and schedules (a smoke test, for the tests)')
    p.add_argument('--jobs', type=int, default=2,
                   help='lanes run side by side (scene lane: simipu, finetune; object lane: crosspoint, probe, '
                   'crossmost); 1 runs them one after the other')
    p.add_argument('--threads', type=int, default=None,
                   help='CPU threads per process (OMP_NUM_THREADS; default: cores // jobs)')
    p.add_argument('--steps', nargs='+', choices=STEPS,
                   help='run only these steps; the others reuse the outputs of an earlier run in this work dir')
    return p.parse_args(argv)


def main(argv=None) -> int:
    return Demo(parse_args(argv)).run()


if __name__ == '__main__':
    sys.exit(main())
