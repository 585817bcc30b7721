"""One transfer-evaluation tool for every method: pretrain, then the downstream protocol, for N seeds.

    python tools/eval_transfer.py METHOD [method options] --seeds 0 1 2 --out benchmarks/results/NAME.json

Every method's protocol lives in ``mmxmodal_bench/protocols/<method>.py`` (``add_arguments`` + ``run``). The
protocol is fixed before the run: choices are made on the ``val`` split only (``--select-on`` accepts nothing
else), ``test`` is measured once and reported. The tool writes ``NAME.json`` (common schema), ``NAME.md`` (mean +-
std, min, max per arm with its baseline) and ``NAME.png``.
"""
import argparse
import importlib
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmxmodal_bench import transfer  # noqa: E402

METHODS = ('crosspoint', 'segmentation', 'crossmost', 'detection')


def _protocol(method: str):
    return importlib.import_module(f'mmxmodal_bench.protocols.{method}')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='method', required=True)
    for method in METHODS:
        try:
            mod = _protocol(method)
        except ModuleNotFoundError as e:
            if e.name != f'mmxmodal_bench.protocols.{method}':
                raise
            continue
        p = sub.add_parser(method, help=(mod.__doc__ or '').strip().splitlines()[0] if mod.__doc__ else None)
        p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='pretraining / training seeds')
        p.add_argument('--select-on', default=transfer.SELECTION_SPLIT,
                       help='split every choice is made on (only "val" is accepted)')
        p.add_argument('--out', required=True, help='results file, benchmarks/results/<name>.json')
        p.add_argument('--work-dir', default=None, help='where runs and logs go (default work_dirs/eval_<method>)')
        mod.add_arguments(p)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        transfer.check_selection_split(args.select_on)
    except transfer.ProtocolError as e:
        print(f'eval_transfer: {e}', file=sys.stderr)
        return 2
    if args.work_dir is None:
        args.work_dir = osp.join('work_dirs', f'eval_{args.method}')
    results = _protocol(args.method).run(args)
    write_all(results, args.out)
    return 0


def write_all(results: dict, out: str) -> None:
    """``out`` (JSON), and beside it the markdown table and the figure, both made from that file.

    Protocols put display hints in the results' extra keys: ``baselines`` (arm -> baseline arm), ``chance`` and
    ``scale`` (100 to show fractions as %).
    """
    transfer.write_results(out, results)
    res = transfer.load_results(out)
    stem = osp.splitext(out)[0]
    kw = dict(chance=res.get('chance'), scale=res.get('scale', 1.0))
    with open(stem + '.md', 'w') as f:
        f.write(transfer.results_markdown(res, baselines=res.get('baselines'), **kw))
    transfer.plot_results(res, stem + '.png', **kw)
    print(f'eval_transfer: wrote {out}, {stem}.md, {stem}.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
