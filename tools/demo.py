"""The main job in one command, on embedded synthetic data, without GPU or download (``make demo``).

    python tools/demo.py [--work-dir work_dirs/demo] [--data-root data] [--skip-existing] [--quick]
                         [--jobs 2] [--threads N] [--steps STEP ...]

The steps, their runner and the report are the bench's :mod:`mmxmodal_bench.demo` (its docstring lists the steps);
this file is the command line.
"""
import time

T_START = time.time()  # the imports below (torch, mmdet3d through mmxmodal) count in the demo's time

import argparse  # noqa: E402
import os  # noqa: E402
import os.path as osp  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from mmxmodal_bench.demo import STEPS, Demo  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    import mmxmodal_bench.demo
    p = argparse.ArgumentParser(description=mmxmodal_bench.demo.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--data-root', default=None, help='where the data sets are generated / reused (default: data, '
                   'or <work-dir>/data with --quick)')
    p.add_argument('--skip-existing', action='store_true',
                   help='reuse the outputs of steps that finished in an earlier run in this work dir')
    p.add_argument('--quick', action='store_true', help='tiny data and schedules (a smoke test, for the tests)')
    p.add_argument('--jobs', type=int, default=2,
                   help='lanes run side by side (scene lane: simipu, finetune; object lane: crosspoint, probe, '
                   'crossmost; evaluation-tool lane: transfer_crosspoint, transfer_segmentation); 1 runs them one '
                   'after the other')
    p.add_argument('--threads', type=int, default=None,
                   help='CPU threads per process (OMP_NUM_THREADS; default: cores // jobs)')
    p.add_argument('--steps', nargs='+', choices=STEPS,
                   help='run only these steps; the others reuse the outputs of an earlier run in this work dir')
    return p.parse_args(argv)


def main(argv=None) -> int:
    return Demo(parse_args(argv), t_start=T_START).run()


if __name__ == '__main__':
    sys.exit(main())
