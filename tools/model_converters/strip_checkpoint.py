# Copyright (c) mmxmodal contributors.
"""Strip a checkpoint you trust (e.g. one written by stock mmengine / the OpenMMLab model zoo) to weights.

Under torch >= 2.6 ``torch.load`` is weights-only, and mmengine 0.10's checkpoints do not load that way: their
message hub pickles ``HistoryBuffer`` through ``getattr``. Loading such a file means running its pickle, so this
tool does it only when you say ``--trust``; the output holds the state dict (module versions kept) and the plain
parts of ``meta``, and loads weights-only anywhere (``load_from``, ``init_cfg``, ``tools/test.py``)::

    python tools/model_converters/strip_checkpoint.py work_dirs/run/epoch_12.pth epoch_12_weights.pth --trust
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a checkout


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint to strip (its pickle is executed: trust it)')
    parser.add_argument('dst', help='output weights-only checkpoint')
    parser.add_argument('--trust', action='store_true',
                        help='required: confirm that SRC comes from a source you trust')
    parser.add_argument('--no-meta', action='store_true', help='drop meta (keep the state dict only)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.src):
        print(f'error: checkpoint not found: {args.src}', file=sys.stderr)
        return 2
    if not args.trust:
        print(f'error: loading {args.src} executes its pickle; pass --trust if you trust where it comes from',
              file=sys.stderr)
        return 2
    from mmxmodal.utils.checkpoint import strip_trusted_checkpoint
    out = strip_trusted_checkpoint(args.src, args.dst, keep_meta=not args.no_meta)
    print(f'wrote {args.dst}: {len(out["state_dict"])} tensors (weights-only loadable)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
