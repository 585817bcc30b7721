"""Fault injection for the checkpoint tests (imported by the test configs through ``custom_imports``).

:class:`FaultInjectionCheckpointHook` is :class:`~mmxmodal.engine.hooks.AtomicCheckpointHook` that sends a signal to
its own process at one named step of one save: deterministic injection points instead of sleeps.
"""
import glob
import os
import os.path as osp
import signal

from mmdet3d.registry import HOOKS
from mmxmodal.engine.hooks import AtomicCheckpointHook

#: ``tmp_truncated``: the temporary file is cut to half its size, then the process is killed (a kill in the middle
#: of the write); the other names are :attr:`AtomicCheckpointHook.FAULT_POINTS`.
POINTS = ('before_write', 'tmp_truncated') + AtomicCheckpointHook.FAULT_POINTS[1:]


@HOOKS.register_module(force=True)
class FaultInjectionCheckpointHook(AtomicCheckpointHook):
    """Kill (``sig='KILL'``) or interrupt (``sig='INT'``, i.e. Ctrl-C) the process at ``point`` of save ``save``."""

    def __init__(self, *args, point: str = 'renamed', save: int = 2, sig: str = 'KILL', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        assert point in POINTS, point
        self.point, self.save, self.sig = point, save, getattr(signal, f'SIG{sig}')
        self._saves = 0

    def _fault_point(self, name: str) -> None:
        if name == 'before_write':
            self._saves += 1
        if self._saves != self.save:
            return
        if self.point == 'tmp_truncated' and name == 'tmp_written':
            for tmp in glob.glob(osp.join(self.out_dir, '.*.tmp')):
                size = os.path.getsize(tmp)
                with open(tmp, 'r+b') as f:
                    f.truncate(size // 2)
        elif name != self.point:
            return
        if self.sig == signal.SIGINT:
            # a terminal's Ctrl-C raises KeyboardInterrupt; a process started with SIGINT ignored (a background job
            # of a non-interactive shell, as CI may run) would otherwise never see it
            signal.signal(signal.SIGINT, signal.default_int_handler)
        os.kill(os.getpid(), self.sig)
