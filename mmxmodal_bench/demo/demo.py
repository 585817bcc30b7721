"""The demo: its steps run in order or in two lanes side by side, each recorded, then one report.

Every step is a function ``run(demo) -> bool`` (True: outputs of an earlier run reused) in
:mod:`mmxmodal_bench.demo.steps`; they run their commands through the one runner (:mod:`.runner`) and hand their
numbers, figures and sections to the :class:`Demo`, which writes ``<work-dir>/report.md`` in step order.
"""
import argparse
import json
import os
import os.path as osp
import threading
import time
import traceback
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence

from mmxmodal_bench.report import Report, StepRecord, load_scalars

from .runner import (ROOT, StepFailed, cpu_seconds, last_checkpoint, load_json, rel, reset_cpu_seconds,
                     run_in_threads, run_logged, say)
from .settings import BUDGET_S, DATA, SCHEDULES, STEPS
from .steps import crossmost, crosspoint, data, figures, finetune, probe, simipu, transfer

#: (step, the steps it needs): first, in order
FIRST = (('data', ()), ('figures', ('data', )))
#: then these lanes, side by side with ``--jobs 2``: scenes, objects, the evaluation tool
LANES = (
    (('simipu', ('data', )), ('finetune', ('data', 'simipu'))),
    (('crosspoint', ('data', )), ('probe', ('data', 'crosspoint')), ('crossmost', ('data', ))),
    (('transfer_crosspoint', ()), ('transfer_segmentation', ())),
)


class Demo:
    """One run of the demo in ``args.work_dir`` (see :mod:`mmxmodal_bench.demo`)."""

    def __init__(self, args: argparse.Namespace, t_start: Optional[float] = None) -> None:
        """``args``: the options of ``tools/demo.py`` (``work_dir``, ``data_root``, ``skip_existing``, ``quick``,
        ``jobs``, ``threads``, ``steps``); ``t_start``: when the demo started (default: now)."""
        self.args = args
        self.t0 = time.time() if t_start is None else t_start
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
        self.sections: Dict[str, list] = {}  # step -> [(heading, markdown)]
        self.records: Dict[str, StepRecord] = {}
        self.step_fns: Dict[str, Callable[['Demo'], Optional[bool]]] = dict(
            data=data.run, figures=figures.run, simipu=simipu.run, finetune=finetune.run, crosspoint=crosspoint.run,
            probe=probe.run, crossmost=crossmost.run, transfer_crosspoint=transfer.run_crosspoint,
            transfer_segmentation=transfer.run_segmentation)
        self.timings_file = osp.join(self.work, 'timings.json')
        self.timings = load_json(self.timings_file)  # of earlier runs: shown for reused steps
        self.wanted = set(args.steps or STEPS)
        self._lock = threading.Lock()
        os.makedirs(self.logs, exist_ok=True)
        os.makedirs(self.figs, exist_ok=True)

    def root(self, name: str) -> str:
        return osp.join(self.data_root, self.data_cfg[name]['dir'])

    def fig(self, name: str) -> str:
        return osp.join(self.figs, name)

    # per-step collection (lanes run in threads; the report is assembled in step order at the end)
    def add(self, step: str, *args, **kwargs) -> None:
        self.numbers.setdefault(step, []).append((args, kwargs))

    def add_figure(self, step: str, caption: str, path: str) -> None:
        self.figures.setdefault(step, []).append((caption, osp.relpath(path, self.work)))

    def add_section(self, step: str, heading: str, markdown: str) -> None:
        self.sections.setdefault(step, []).append((heading, markdown))

    def may_run(self, step: str, what: str) -> None:
        """Raise when ``step`` may only reuse earlier outputs (not named in ``--steps``)."""
        if step not in self.wanted:
            raise StepFailed(f'not requested with --steps and no earlier outputs to reuse ({what})')

    def reuse_ok(self, step: str) -> bool:
        return self.args.skip_existing or step not in self.wanted

    # ------------------------------------------------------------------------------------------ step runner
    def run_step(self, name: str, needs: tuple = ()) -> None:
        """Run step ``name`` (its function in :attr:`step_fns`) unless a step it needs did not finish; record its
        status, wall and CPU time; a failure is recorded (with its log), never raised."""
        missing = [n for n in needs if self.status.get(n) not in ('ok', 'reused')]
        if missing:
            msg = f'not run: needs step(s) {", ".join(missing)}'
            say(name, f'==== step {name}: SKIPPED ({msg})')
            self._record(name, StepRecord(name, None, 'skipped', error=msg))
            return
        say(name, f'==== step {name} starts ({time.time() - self.t0:.0f} s into the demo)')
        t = time.time()
        reset_cpu_seconds()
        thread_cpu = time.thread_time()  # subprocesses + this lane's own work (figures, probe)
        log = ''
        try:
            reused = self.step_fns[name](self)
            status, err = ('reused' if reused else 'ok'), ''
        except StepFailed as e:
            status, err, log = 'FAILED', str(e), e.log
        except Exception as e:  # a bug or a broken artefact: keep the traceback in a log
            log = rel(osp.join(self.logs, f'{name}.traceback.log'))
            with open(osp.join(ROOT, log), 'w') as f:
                f.write(traceback.format_exc())
            status, err = 'FAILED', f'{type(e).__name__}: {e}'
        dt = time.time() - t
        cpu = cpu_seconds() + time.thread_time() - thread_cpu
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
        for name, needs in steps:
            self.run_step(name, needs)  # a step not named in --steps only reuses earlier outputs

    def run(self) -> int:
        """All steps (see :data:`LANES`), then the report; 0 when every step finished with all its numbers."""
        say('demo', f'work dir {rel(self.work)}, data under {rel(self.data_root)}; {self.jobs} lane(s) at a time, '
            f'{self.threads} CPU thread(s) per process ({os.cpu_count()} cores, load average '
            f'{os.getloadavg()[0]:.1f})')
        self.lane(FIRST)
        self.lane_start = time.time()
        run_in_threads([partial(self.lane, steps) for steps in LANES], workers=self.jobs)
        total = time.time() - self.t0
        self.write_report(total)
        ok = self.report.complete
        say('demo', f'total {total:.0f} s ({total / 60:.1f} min; budget {BUDGET_S // 60} min on 2 CPU cores; load '
            f'average now {os.getloadavg()[0]:.1f})')
        say('demo', f'report: {rel(osp.join(self.work, "report.md"))}')
        if not ok:
            say('demo', 'FAILED steps or missing numbers: see the "Failures" section of the report')
        return 0 if ok else 1

    def train(self, step: str, cmd: List[str], wd: str, title: str, log_name: Optional[str] = None) -> bool:
        """Run a training command unless its finished outputs may be reused (checkpoint + scalars); True if
        reused."""
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


    # ---------------------------------------------------------------------------------------------- report
    def write_report(self, total: float) -> None:
        r = self.report
        r.wall_seconds = total
        r.warnings = list(self.warnings)
        for step in STEPS:
            for args, kwargs in self.numbers.get(step, []):
                r.add(*args, **kwargs)
            r.figures += self.figures.get(step, [])
            r.sections += self.sections.get(step, [])
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
