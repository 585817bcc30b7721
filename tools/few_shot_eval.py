# Copyright (c) mmxmodal contributors.
"""Few-shot evaluation of frozen point features (K-way M-shot, Q queries per class, repeated runs, linear SVM).

    python tools/few_shot_eval.py CONFIG CHECKPOINT [--ways 5 10] [--shots 10 20] [--queries 20] [--runs 10]
                                  [--pool train|train-test] [--C 1.0] [--no-standardize] [--seed 0]
                                  [--dataloader val_dataloader] [--out results.json] [--cfg-options k=v ...]

CHECKPOINT may be ``random`` to evaluate the randomly initialised encoder. Features come from
``model.extract_feat`` over the config's ``--dataloader`` (default ``val_dataloader``: for CrossPoint configs the
``SplitConcatDataset`` of the labelled train and test splits). ``--pool train`` (CrossPoint's
``eval_fewshot.py``) draws support and queries from the train split; ``train-test`` draws queries from the test
split. Every ways x shots combination is run; results are printed as ``mean +- std`` and optionally saved.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner, load_checkpoint  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Few-shot linear-SVM evaluation of frozen point features')
    parser.add_argument('config', help='config file (model + labelled dataloader)')
    parser.add_argument('checkpoint', help="checkpoint file, or 'random' for the randomly initialised model")
    parser.add_argument('--ways', type=int, nargs='+', default=[5, 10], help='K (classes per episode)')
    parser.add_argument('--shots', type=int, nargs='+', default=[10, 20], help='M (support samples per class)')
    parser.add_argument('--queries', type=int, default=20, help='query samples per class')
    parser.add_argument('--runs', type=int, default=10, help='episodes per setting')
    parser.add_argument('--pool', choices=['train', 'train-test'], default='train',
                        help="'train': support and queries from the train split (CrossPoint); 'train-test': "
                        'queries from the test split')
    parser.add_argument('--C', type=float, default=1.0, help='SVM regularisation')
    parser.add_argument('--no-standardize', action='store_true', help='do not standardise features')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--dataloader', default='val_dataloader', help='config key of the labelled dataloader')
    parser.add_argument('--out', help='write the results as JSON to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format (see tools/train.py)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import numpy as np
    from mmdet3d.registry import MODELS

    from mmxmodal.evaluation.few_shot import extract_features, few_shot_eval

    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    model = MODELS.build(cfg.model)
    if args.checkpoint != 'random':
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
        load_checkpoint(model, args.checkpoint, map_location='cpu', revise_keys=[(r'^module\.', '')])
    dl_cfg = cfg.get(args.dataloader)
    if dl_cfg is None:
        raise KeyError(f'{args.config} has no {args.dataloader}')
    loader = Runner.build_dataloader(dl_cfg, seed=args.seed)
    t0 = time.time()
    data = extract_features(model, loader)
    splits = data['splits']
    train = splits == 'train' if (splits == 'train').any() else np.ones(len(splits), bool)
    test = splits == 'test'
    if args.pool == 'train-test' and not test.any():
        raise ValueError("--pool train-test needs samples tagged split='test' (SplitConcatDataset)")
    print(f'features: {int(train.sum())} train / {int(test.sum())} test samples, dim '
          f'{data["feats"].shape[1]} ({time.time() - t0:.1f} s)')
    results = []
    for ways in args.ways:
        for shots in args.shots:
            r = few_shot_eval(data['feats'][train], data['labels'][train], data['feats'][test],
                              data['labels'][test], ways=ways, shots=shots, queries=args.queries,
                              runs=args.runs, pool=args.pool, C=args.C, standardize=not args.no_standardize,
                              seed=args.seed)
            results.append(r)
            print(f'{ways}-way {shots}-shot ({args.queries} queries, {args.runs} runs, pool {args.pool}): '
                  f'{r["mean"]:.2f} +- {r["std"]:.2f}')
    out = dict(config=args.config, checkpoint=args.checkpoint, results=results)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == '__main__':
    main()
