"""CrossPoint transfer protocol: pretrain per seed, then linear-SVM and few-shot probes, pretrained vs random init.

    python tools/eval_transfer.py crosspoint --seeds 0 1 2 --out benchmarks/results/crosspoint_transfer.json

Fixed before the run (nothing here is tuned on the test rows):

- **Data.** The embedded objects of the ``hard`` class set (32 classes in confusable families), generated once
  into ``--data-root`` (data seed ``--data-seed``): ``--num-objects`` unlabelled ShapeNetRender objects for
  pretraining, ``--cls-train-per-class`` labelled train rows and ``--cls-test-per-class`` held-out test rows per
  class (different instances). The last ``--val-per-class`` train rows of every class are the **validation**
  rows; the others are the **fit** rows.
- **Pretraining.** ``tools/train.py CONFIG`` with ``randomness.seed=SEED`` (one run per seed); a checkpoint every
  ``--ckpt-interval`` epochs. The checkpoint used downstream is chosen per seed by the canonical linear probe on the
  validation rows (fit on fit rows).
- **Random init.** The same model built under ``set_random_seed(SEED)`` and ``init_weights()``, no training.
- **Linear probe** (canonical: the stored clouds, no augmentation; augmented: the config's fixed per-sample draw
  of CrossPoint's augmentation, ``probe_train_pipeline`` / ``probe_test_pipeline``): ``SVC(kernel='linear')`` on
  standardised features (the scale of raw features would otherwise decide the result), ``C`` chosen from
  ``--svm-c`` on the validation rows, refit on fit + validation rows, scored once on the test rows.
- **Scan probe** (``--scan-probe``): the same linear probe on ScanObjectNN-layout partial scans of the same
  labelled objects (one viewpoint, canonical pose, no augmentation; ``--scan-occlusion`` / ``--scan-background``
  as in the generator's :func:`partial_scan`), same fit / val / test rows, ``C`` chosen on val.
- **Few-shot** (CrossPoint / Sharma & Kaul): K-way M-shot episodes, support from the labelled train rows, queries
  (``--fewshot-queries`` per class) from the test rows, ``--fewshot-runs`` episodes, ``SVC`` with ``C=1`` on
  standardised features (CrossPoint's setting, not tuned).

Reported (fractions; the table shows %): one value per seed and arm, ``probe_canonical_{pretrained,random}``,
``probe_augmented_{pretrained,random}``, with ``--scan-probe`` ``probe_scan_{pretrained,random}``,
``fewshot_<K>w<M>s_{pretrained,random}``, plus the choices made on validation (epoch, C) and their validation scores.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmxmodal_bench import transfer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = 'configs/crosspoint/crosspoint_dgcnn_1xb16-6e_synthetic-objects-hard.py'
ARMS = ('pretrained', 'random')


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--config', default=DEFAULT_CONFIG, help='CrossPoint pretraining config')
    p.add_argument('--data-root', default='data/synthetic_objects_hard',
                   help='embedded objects (generated here when meta.json is missing)')
    p.add_argument('--data-seed', type=int, default=0, help='seed of the generated objects (one data set)')
    p.add_argument('--class-set', default='hard', help="generator class set ('hard': 32 confusable classes)")
    p.add_argument('--classes', nargs='+', default=None, help='explicit classes instead of --class-set')
    p.add_argument('--num-objects', type=int, default=480, help='unlabelled pretraining objects')
    p.add_argument('--cls-train-per-class', type=int, default=24, help='labelled train rows per class (fit + val)')
    p.add_argument('--val-per-class', type=int, default=6, help='train rows per class held out for validation')
    p.add_argument('--cls-test-per-class', type=int, default=20, help='held-out test rows per class')
    p.add_argument('--num-points', type=int, default=256, help='points per cloud fed to the encoder')
    p.add_argument('--epochs', type=int, default=None, help='pretraining epochs (default: the config)')
    p.add_argument('--ckpt-interval', type=int, default=2, help='epochs between candidate checkpoints')
    p.add_argument('--svm-c', type=float, nargs='+', default=[0.01, 0.1, 1.0, 10.0],
                   help='candidate C of the linear probe (chosen on validation rows)')
    p.add_argument('--fewshot', nargs='+', default=['5x10', '10x20'], help='few-shot settings WAYSxSHOTS')
    p.add_argument('--fewshot-queries', type=int, default=20, help='queries per class (test rows)')
    p.add_argument('--fewshot-runs', type=int, default=10, help='episodes per setting')
    p.add_argument('--batch-size', type=int, default=None, help='pretraining batch size (default: the config)')
    p.add_argument('--scan-probe', action='store_true',
                   help='also probe ScanObjectNN-layout partial scans (one viewpoint, canonical pose, no '
                        'augmentation) of the same labelled objects: arms probe_scan_*')
    p.add_argument('--scan-occlusion', type=float, default=0.0, help='occluded share of a scan, up to (generator)')
    p.add_argument('--scan-background', type=float, default=0.0, help='background share of a scan (generator)')
    p.add_argument('--train-cfg-options', nargs='*', default=[],
                   help='extra key=value for tools/train.py --cfg-options')


# ----------------------------------------------------------------------------------------------------------- data
def ensure_data(args: argparse.Namespace) -> dict:
    """Generate the objects into ``args.data_root`` unless a complete set with the same settings is there."""
    from mmxmodal_bench.synthetic.objects import generate_objects
    want = dict(num_objects=args.num_objects, seed=args.data_seed, num_views=4, image_size=64,
                num_points=max(1024, args.num_points), cls_train_per_class=args.cls_train_per_class,
                cls_test_per_class=args.cls_test_per_class, cls_views=1,
                scanobjectnn=bool(getattr(args, 'scan_probe', False)))
    if want['scanobjectnn']:
        want.update(scan_occlusion=float(args.scan_occlusion), scan_background=float(args.scan_background))
    meta_path = osp.join(args.data_root, 'meta.json')
    if osp.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        n_cls = len(meta.get('classes', []))
        have = dict(meta, cls_train_per_class=meta.get('cls_counts', {}).get('train', -1) // max(n_cls, 1),
                    cls_test_per_class=meta.get('cls_counts', {}).get('test', -1) // max(n_cls, 1))
        have.setdefault('scan_occlusion', 0.0)
        have.setdefault('scan_background', 0.0)
        same = all(have.get(k) == v for k, v in want.items())
        classes_ok = (meta.get('classes') == list(args.classes)) if args.classes else \
            meta.get('class_set') == args.class_set
        if same and classes_ok:
            _log(f'reusing the objects in {args.data_root}')
            return meta
        raise transfer.ProtocolError(
            f'{args.data_root} holds objects generated with other settings ({meta_path}); use another '
            f'--data-root or delete it')
    _log(f'generating objects into {args.data_root}')
    return generate_objects(args.data_root, workers=min(2, os.cpu_count() or 1), verbose=True,
                            classes=args.classes, class_set=None if args.classes else args.class_set, **want)


def val_rows(data_root: str, val_per_class: int) -> np.ndarray:
    """:func:`val_mask` of the labelled train split stored under ``data_root`` (row order of the h5 files)."""
    import h5py
    with h5py.File(osp.join(data_root, 'modelnet40_ply_hdf5_2048', 'ply_data_train0.h5'), 'r') as f:
        return val_mask(f['label'][:, 0].astype(np.int64), val_per_class)


def val_mask(labels: np.ndarray, val_per_class: int) -> np.ndarray:
    """True for the last ``val_per_class`` rows (in row order) of every class: the validation rows."""
    mask = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        if len(rows) <= val_per_class:
            raise transfer.ProtocolError(f'class {c} has {len(rows)} train rows, needs > {val_per_class} '
                                         f'(--val-per-class) to keep fit rows')
        mask[rows[len(rows) - val_per_class:]] = True
    return mask


# ------------------------------------------------------------------------------------------------------- features
def _cfg(args: argparse.Namespace):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, args.config) if not osp.isabs(args.config) else args.config)
    return cfg


def probe_sets(cfg, num_points: int, data_root: str, scan: bool = False) -> Dict[str, dict]:
    """The probes: ``canonical`` (stored full clouds), ``augmented`` (the config's fixed per-sample draws of
    CrossPoint's augmentation) and, with ``scan``, ``scan`` (the ScanObjectNN-layout partial scans of the same
    labelled objects, same rows, canonical pose, no augmentation). Each: ``dataset`` (type, data_root, extra
    kwargs), ``train`` and ``test`` pipelines."""
    canonical, augmented = _pipelines(cfg, num_points)
    mn = dict(type='ModelNet40Dataset', data_root=osp.join(data_root, 'modelnet40_ply_hdf5_2048'))
    out = dict(canonical=dict(dataset=mn, train=canonical[0], test=canonical[1]),
               augmented=dict(dataset=mn, train=augmented[0], test=augmented[1]))
    if scan:
        so = dict(type='ScanObjectNNDataset', data_root=osp.join(data_root, 'ScanObjectNN'), split_dir='main_split',
                  variant='objectdataset')
        out['scan'] = dict(dataset=so, train=canonical[0], test=canonical[1])
    return out


def _pipelines(cfg, num_points: int) -> Tuple[Tuple[list, list], Tuple[list, list]]:
    """Probe pipelines: canonical (stored clouds) and augmented (the config's fixed per-sample draws)."""
    canonical = [dict(type='LoadObjectPoints', num_points=num_points), dict(type='PackObjectInputs', keys=['points'])]

    def npts(pipe):
        pipe = [dict(t) for t in pipe]
        for t in pipe:
            if t['type'] == 'LoadObjectPoints':
                t['num_points'] = num_points
        return pipe

    return (canonical, canonical), (npts(cfg.probe_train_pipeline), npts(cfg.probe_test_pipeline))


def build_model(cfg, seed: int, checkpoint: Optional[str] = None):
    """The config's model: random init under ``seed``, or the weights of ``checkpoint``."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint, set_random_seed

    from mmdet3d.registry import MODELS
    import mmxmodal  # noqa: F401  (registers the modules)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    set_random_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', revise_keys=[(r'^module\.', '')], logger='silent')
    return model.eval()


def extract(model, dataset: dict, split: str, pipeline: list) -> Tuple[np.ndarray, np.ndarray]:
    """Frozen global features (N, D) and labels (N,) of one labelled split (``dataset``: type, data_root and
    kwargs of a labelled object dataset), in row order."""
    from mmengine.runner import Runner

    from mmxmodal.evaluation.few_shot import extract_features
    loader = Runner.build_dataloader(dict(
        batch_size=32, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(dataset, split=split, pipeline=pipeline, test_mode=True)))
    out = extract_features(model, loader)
    return out['feats'], out['labels']


# ---------------------------------------------------------------------------------------------------------- probes
def probe_select(train_x: np.ndarray, train_y: np.ndarray, is_val: np.ndarray,
                 cs: Sequence[float]) -> Tuple[float, Dict[str, float]]:
    """Choose C on the validation rows (fit on the fit rows); returns the chosen C and the val score per C."""
    from mmxmodal.evaluation.linear_svm import linear_svm_accuracy
    scores = {f'{c:g}': linear_svm_accuracy(train_x[~is_val], train_y[~is_val], train_x[is_val], train_y[is_val],
                                            C=c, standardize=True) for c in cs}
    best = transfer.select_on_val(scores, split=transfer.SELECTION_SPLIT)
    return float(best), scores


def probe_test(train_x, train_y, test_x, test_y, C: float) -> float:
    """Fit on every train row (fit + val) with the chosen C, score the test rows once."""
    from mmxmodal.evaluation.linear_svm import linear_svm_accuracy
    return linear_svm_accuracy(train_x, train_y, test_x, test_y, C=C, standardize=True)


def parse_fewshot(specs: Sequence[str]) -> List[Tuple[int, int]]:
    out = []
    for s in specs:
        try:
            ways, shots = (int(x) for x in s.lower().split('x'))
        except ValueError:
            raise argparse.ArgumentTypeError(f'--fewshot {s!r}: expected WAYSxSHOTS, e.g. 5x10') from None
        out.append((ways, shots))
    return out


# ------------------------------------------------------------------------------------------------------ pretraining
def pretrain(args: argparse.Namespace, seed: int, work_dir: str) -> Dict[int, str]:
    """Run ``tools/train.py`` for one seed; returns {epoch: checkpoint path} of the candidate checkpoints."""
    data_root = osp.abspath(args.data_root).rstrip('/') + '/'
    probe_root = data_root + 'modelnet40_ply_hdf5_2048/'
    opts = [f'randomness.seed={seed}', f'train_dataloader.dataset.data_root={data_root}',
            f'default_hooks.checkpoint.interval={args.ckpt_interval}', 'default_hooks.checkpoint.max_keep_ckpts=-1',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
            f'val_dataloader.dataset.datasets.0.data_root={probe_root}',
            f'val_dataloader.dataset.datasets.1.data_root={probe_root}',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            f'test_dataloader.dataset.datasets.0.data_root={probe_root}',
            f'test_dataloader.dataset.datasets.1.data_root={probe_root}',
            'train_dataloader.dataset.pipeline.0.num_points=%d' % args.num_points]
    epochs = args.epochs
    if epochs is not None:
        opts += [f'train_cfg.max_epochs={epochs}', f'param_scheduler.0.T_max={epochs}',
                 f'param_scheduler.0.end={epochs}']
    # the config's val loop scores the test rows: never run it here (no choice may see them)
    opts += ['train_cfg.val_interval=100000']
    if args.batch_size is not None:
        opts.append(f'train_dataloader.batch_size={args.batch_size}')
    opts += list(args.train_cfg_options)
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), osp.join(ROOT, args.config) if not
           osp.isabs(args.config) else args.config, '--work-dir', work_dir, '--cfg-options', *opts]
    os.makedirs(work_dir, exist_ok=True)
    log = osp.join(work_dir, 'train_stdout.log')
    _log(f'seed {seed}: pretraining ({osp.relpath(log)})')
    t0 = time.time()
    with open(log, 'w') as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if rc != 0:
        tail = open(log).read()[-3000:]
        raise RuntimeError(f'pretraining of seed {seed} failed (exit {rc}), log {log}:\n{tail}')
    ckpts = {}
    for name in os.listdir(work_dir):
        if name.startswith('epoch_') and name.endswith('.pth'):
            ckpts[int(name[6:-4])] = osp.join(work_dir, name)
    if not ckpts:
        raise RuntimeError(f'pretraining of seed {seed} wrote no epoch_*.pth in {work_dir}')
    _log(f'seed {seed}: pretrained in {time.time() - t0:.0f} s, checkpoints at epochs {sorted(ckpts)}')
    return ckpts


# ------------------------------------------------------------------------------------------------------------- run
def _log(msg: str) -> None:
    try:
        from mmengine.logging import print_log
        print_log(f'[eval_transfer crosspoint] {msg}', logger='current')
    except ImportError:  # pragma: no cover
        print(f'[eval_transfer crosspoint] {msg}', flush=True)


def evaluate_model(model, pipes: dict, is_val: np.ndarray, cs: Sequence[float],
                   fewshot: Sequence[Tuple[int, int]], queries: int, runs: int, seed: int) -> dict:
    """Every downstream measurement of one frozen encoder: probes (C on val) and few-shot."""
    from mmxmodal.evaluation.few_shot import few_shot_eval
    out, choices = {}, {}
    feats = {}
    for kind, p in pipes.items():
        tr_x, tr_y = extract(model, p['dataset'], 'train', p['train'])
        te_x, te_y = extract(model, p['dataset'], 'test', p['test'])
        feats[kind] = (tr_x, tr_y, te_x, te_y)
        C, val_scores = probe_select(tr_x, tr_y, is_val, cs)
        out[f'probe_{kind}'] = probe_test(tr_x, tr_y, te_x, te_y, C)
        choices[f'probe_{kind}'] = dict(C=C, val=val_scores)
    tr_x, tr_y, te_x, te_y = feats['canonical']
    for ways, shots in fewshot:
        r = few_shot_eval(tr_x, tr_y, te_x, te_y, ways=ways, shots=shots, queries=queries, runs=runs,
                          pool='train-test', C=1.0, standardize=True, seed=seed)
        out[f'fewshot_{ways}w{shots}s'] = r['mean'] / 100.0
        choices[f'fewshot_{ways}w{shots}s'] = dict(std_over_episodes=r['std'] / 100.0)
    return dict(values=out, choices=choices)


def probe_val_score(model, pipes: dict, is_val: np.ndarray, cs: Sequence[float],
                    kind: str = 'canonical') -> float:
    """Best validation accuracy of the ``kind`` probe (fit rows -> val rows) over the C candidates."""
    tr_x, tr_y = extract(model, pipes[kind]['dataset'], 'train', pipes[kind]['train'])
    _, scores = probe_select(tr_x, tr_y, is_val, cs)
    return max(scores.values())


def run(args: argparse.Namespace) -> dict:
    """The protocol (see the module docstring); returns the results dict in the common schema."""
    transfer.check_selection_split(args.select_on)
    fewshot = parse_fewshot(args.fewshot)
    t_start = time.time()
    commit = transfer.git_commit()  # the code that runs (the tree may change during a long run)
    meta = ensure_data(args)
    classes = meta['classes']
    cfg = _cfg(args)
    scan = bool(getattr(args, 'scan_probe', False))
    pipes = probe_sets(cfg, args.num_points, args.data_root, scan=scan)
    is_val = val_rows(args.data_root, args.val_per_class)
    for ways, shots in fewshot:
        if ways > len(classes) or shots > args.cls_train_per_class or args.fewshot_queries > args.cls_test_per_class:
            raise transfer.ProtocolError(f'{ways}-way {shots}-shot with {args.fewshot_queries} queries needs '
                                         f'{ways} classes, {shots} train and {args.fewshot_queries} test rows per '
                                         f'class; the data has {len(classes)}, {args.cls_train_per_class}, '
                                         f'{args.cls_test_per_class}')
    per_seed = {}

    def one_seed(seed: int) -> Dict[str, float]:
        t0 = time.time()
        ckpts = pretrain(args, seed, osp.join(args.work_dir, f'seed{seed}'))
        val_by_epoch = {}
        for epoch in sorted(ckpts):
            model = build_model(cfg, seed, ckpts[epoch])
            val_by_epoch[epoch] = probe_val_score(model, pipes, is_val, args.svm_c)
        best_epoch = transfer.select_on_val(val_by_epoch, split=transfer.SELECTION_SPLIT)
        _log(f'seed {seed}: canonical val accuracy by epoch {val_by_epoch} -> epoch {best_epoch}')
        values, record = {}, dict(epoch=int(best_epoch), val_by_epoch={str(k): v for k, v in val_by_epoch.items()})
        for arm in ARMS:
            model = build_model(cfg, seed, ckpts[best_epoch] if arm == 'pretrained' else None)
            res = evaluate_model(model, pipes, is_val, args.svm_c, fewshot, args.fewshot_queries,
                                 args.fewshot_runs, seed)
            for k, v in res['values'].items():
                values[f'{k}_{arm}'] = v
            record[arm] = res['choices']
        record['seconds'] = round(time.time() - t0, 1)
        per_seed[str(seed)] = record
        _log(f'seed {seed}: ' + ', '.join(f'{k} {100 * v:.1f}' for k, v in values.items()))
        return values

    arms = transfer.run_seeds(args.seeds, one_seed)
    probes = ['probe_canonical', 'probe_augmented'] + (['probe_scan'] if scan else [])
    order = [f'{k}_{a}' for k in probes + [f'fewshot_{w}w{s}s' for w, s in fewshot]
             for a in ARMS]
    arms = {k: arms[k] for k in order}
    baselines = {k: k[:-len('pretrained')] + 'random' for k in order if k.endswith('_pretrained')}
    return transfer.make_results(
        'accuracy', args.seeds, arms, split=transfer.REPORT_SPLIT, commit=commit,
        baselines=baselines, chance=1.0 / len(classes), scale=100,
        chance_fewshot={f'fewshot_{w}w{s}s': 1.0 / w for w, s in fewshot},
        protocol=dict(config=args.config, classes=classes, data_seed=args.data_seed, num_objects=args.num_objects,
                      train_rows_per_class=args.cls_train_per_class - args.val_per_class,
                      val_rows_per_class=args.val_per_class, test_rows_per_class=args.cls_test_per_class,
                      num_points=args.num_points, epochs=args.epochs,
                      scan_probe=dict(occlusion=args.scan_occlusion, background=args.scan_background) if scan
                      else None, ckpt_interval=args.ckpt_interval,
                      svm='SVC(kernel=linear) on standardised features, C chosen on val from '
                          f'{list(args.svm_c)}, refit on fit+val',
                      fewshot=dict(settings=[f'{w}-way {s}-shot' for w, s in fewshot],
                                   queries=args.fewshot_queries, runs=args.fewshot_runs, pool='train-test', C=1.0),
                      selection_split=transfer.SELECTION_SPLIT,
                      epoch_choice='checkpoint with the best canonical-probe val accuracy, per seed'),
        per_seed=per_seed, wall_seconds=round(time.time() - t_start, 1))
