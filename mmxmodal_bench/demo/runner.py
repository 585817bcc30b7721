"""The one runner of the demo's steps: commands in subprocesses with their logs tailed, and steps side by side.

Every command a step runs goes through :func:`run_logged`: its output goes to a log file and, filtered by
:class:`ConsoleFilter`, to the console prefixed by the step's tag; log files the command writes itself (``follow``
globs) are tailed by a :class:`LogFollower`; a non-zero exit raises :class:`StepFailed` naming the command and the
log. :func:`run_in_threads` runs callables side by side (the demo's lanes, the data generators) and
:func:`cpu_seconds` tells the CPU time of the subprocesses the calling thread ran since :func:`reset_cpu_seconds`.
"""
import glob
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import threading
from typing import Callable, Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository (commands run from there)
PY = sys.executable


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
_STEP = threading.local()  # .cpu: CPU seconds of the subprocesses run by this thread's step


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


class LogFollower(threading.Thread):
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
    follower = LogFollower(follow, tag) if follow else None
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
        add_cpu_seconds(cpu)
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
    """``tools/train.py CONFIG --work-dir WORK_DIR --cfg-options ...``."""
    cmd = [PY, 'tools/train.py', config, '--work-dir', rel(work_dir)]
    if options:
        cmd += ['--cfg-options'] + [f'{k}={cfg_option(v)}' for k, v in options.items()]
    return cmd


def cfg_option(v) -> str:
    """A value as ``--cfg-options`` text (lists as ``[a,b]``)."""
    if isinstance(v, (list, tuple)):
        return '[' + ','.join(cfg_option(x) for x in v) + ']'
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


def load_json(path: str) -> dict:
    """The JSON object in ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def reset_cpu_seconds() -> None:
    """Start counting the CPU time of the subprocesses this thread runs (see :func:`cpu_seconds`)."""
    _STEP.cpu = 0.0


def add_cpu_seconds(seconds: float) -> None:
    _STEP.cpu = getattr(_STEP, 'cpu', 0.0) + seconds


def cpu_seconds() -> float:
    """CPU seconds of the subprocesses run by this thread since :func:`reset_cpu_seconds`."""
    return getattr(_STEP, 'cpu', 0.0)


def run_in_threads(fns: Sequence[Callable[[], None]], workers: Optional[int] = None) -> None:
    """Run ``fns`` side by side, at most ``workers`` at a time (default: all), one thread each, and wait for all
    (with one worker: one after the other in this thread). The CPU seconds of the subprocesses they run are added to
    this thread's count."""
    workers = len(fns) if workers is None else max(1, min(workers, len(fns)))
    if workers <= 1:
        for fn in fns:
            fn()
        return
    todo = list(fns)
    lock = threading.Lock()
    cpu: List[float] = []

    def worker():
        reset_cpu_seconds()
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    fn = todo.pop(0)
                fn()
        finally:
            cpu.append(cpu_seconds())

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    add_cpu_seconds(sum(cpu))
