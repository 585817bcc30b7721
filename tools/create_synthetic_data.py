"""Generate the embedded synthetic data sets in real on-disk formats.

    python tools/create_synthetic_data.py objects  --out-dir data/synthetic_objects --num-objects 200 --seed 0
    python tools/create_synthetic_data.py nuscenes --help
    python tools/create_synthetic_data.py kitti    --help
    python tools/create_synthetic_data.py semantickitti --help

Each sub-command is defined by ``add_<name>_parser(subparsers)`` in ``mmxmodal/datasets/synthetic/<name>.py``;
the function adds its sub-parser and sets ``func`` (called with the parsed arguments). A generator module that
does not exist (yet) is listed as unavailable instead of breaking the other sub-commands.
"""
import argparse
import importlib
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

GENERATORS = ('objects', 'nuscenes', 'kitti', 'semantickitti')
PACKAGE = 'mmxmodal.datasets.synthetic'


def _unavailable(name: str, reason: str):

    def run(args: argparse.Namespace) -> None:
        sys.exit(f'create_synthetic_data.py: the {name!r} generator is unavailable: {reason}')

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest='generator', metavar='{' + ','.join(GENERATORS) + '}')
    subparsers.required = True
    for name in GENERATORS:
        module_name = f'{PACKAGE}.{name}'
        reason = None
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:  # a real import error inside an existing module: do not hide it
                raise
            reason = f'module {module_name} does not exist'
        else:
            adder = getattr(module, f'add_{name}_parser', None)
            if adder is None:
                reason = f'{module_name} defines no add_{name}_parser(subparsers)'
            else:
                adder(subparsers)
        if reason is not None:
            sub = subparsers.add_parser(name, help=f'(unavailable: {reason})')
            sub.set_defaults(func=_unavailable(name, reason), unavailable=True)
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, 'unavailable', False):
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    args.func(args)


if __name__ == '__main__':
    main()
