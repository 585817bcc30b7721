"""LiDAR semantic segmentation transfer (issue 13): SimIPU-Seg pretraining, linear probe and label-fraction
fine-tuning of MinkUNet, pretrained vs random init, on the embedded SemanticKITTI root (held-out test sequence).

    python tools/eval_transfer.py segmentation --seeds 0 1 2 --out benchmarks/results/segmentation_transfer.json

Per seed (the protocol is fixed before any test number is seen):

1. **Pretrain once**: ``tools/train.py`` with the SimIPU-Seg config (``randomness.seed=seed``), label-free, on the
   train sequences (LiDAR + image_2). The checkpoint is reduced to its weights (a file this run wrote, trusted).
2. **Linear probe** (``lp_pretrained`` / ``lp_random``): the backbone of the downstream MinkUNet (the LP config,
   ``FrozenBackboneMinkUNet``) is frozen, loaded from the checkpoint or randomly initialised (``torch.manual_seed``
   (seed)); its per-point features (every point through its voxel, the test pipeline: no augmentation) are computed
   once for the train, val and test frames, standardised with train statistics, and a linear per-point classifier
   (19 classes, cross-entropy, ignore index 19) is trained on the train frames. With a frozen backbone and no
   augmentation this equals training the LP config's linear head, at a fraction of the cost. The learning rate is
   chosen among ``--lp-lrs`` by val mIoU (per arm and seed), then test is measured once.
3. **Fine-tuning** (``ft_pretrained`` / ``ft_scratch``) with the smallest label fraction holding >= 2 scans (the
   fixed frame list of the 10 % config) and the config's schedule, run in-process with mmengine's ``Runner``; val and
   test mIoU from mmdet3d's ``SegMetric``.

Protocol v2 (``--pretrain-select-epochs``): the checkpoints of the candidate epochs are kept and, per seed, the
(checkpoint, probe lr) pair with the best linear-probe val mIoU is chosen; the fine-tuning arm starts from that
checkpoint; test is measured once with the chosen pair. Without it the last checkpoint is used (protocol v1).
``--jobs N`` runs N seeds at once in spawned processes (each seed is independent; same results).

mIoU values are in percent; per-class IoU and the val numbers are kept in the results file (``per_class``,
``val``). Heavy: run it under ``flock`` on a shared machine.
"""
from __future__ import annotations

import argparse
import copy
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmxmodal_bench import transfer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN_CFG = 'configs/seg/simipu_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py'
LP_CFG = 'configs/finetune/minkunet18-w16_spconv_lp-20e_synthetic-semantickitti_simipu-seg.py'
FT_CFG = 'configs/finetune/minkunet18-w16_spconv_1xb2-20e_synthetic-semantickitti-10pct_simipu-seg.py'
ARMS = ('lp_pretrained', 'lp_random', 'ft_pretrained', 'ft_scratch')
BASELINES = {'lp_pretrained': 'lp_random', 'ft_pretrained': 'ft_scratch'}
IGNORE_INDEX = 19


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data-root', default='data/synthetic-semantickitti',
                   help='SemanticKITTI root with semantickitti_infos_{train,val,test}.pkl (with CAM2)')
    p.add_argument('--generate', action='store_true',
                   help='write the embedded root with tools/create_synthetic_data.py semantickitti if it is missing')
    p.add_argument('--generate-args', default='', help='extra arguments of the generator (e.g. smaller roots)')
    p.add_argument('--pretrain-config', default=PRETRAIN_CFG)
    p.add_argument('--lp-config', default=LP_CFG)
    p.add_argument('--ft-config', default=FT_CFG)
    p.add_argument('--pretrain-epochs', type=int, default=None, help='override the config (default: config)')
    p.add_argument('--pretrain-select-epochs', type=int, nargs='+', default=None,
                   help='protocol v2: keep the pretraining checkpoints of these epochs and choose, per seed, the one '
                        'with the best linear-probe val mIoU (jointly with the probe lr); the fine-tuning arm uses '
                        'the same checkpoint. Default: the last checkpoint only (protocol v1)')
    p.add_argument('--pretrain-options', nargs='*', default=[], help='extra --cfg-options of the pretraining')
    p.add_argument('--lp-lrs', type=float, nargs='+', default=[0.003, 0.03], help='chosen on val')
    p.add_argument('--lp-steps', type=int, default=300, help='AdamW steps of the linear probe')
    p.add_argument('--lp-points', type=int, default=200000, help='train points sampled per probe step (max)')
    p.add_argument('--ft-epochs', type=int, default=None, help='override the fine-tuning schedule (default: config)')
    p.add_argument('--ft-options', nargs='*', default=[], help='extra --cfg-options of the fine-tuning')
    p.add_argument('--skip-ft', action='store_true', help='linear probe only (ft arms reported as null)')
    p.add_argument('--jobs', type=int, default=1,
                   help='seeds run at once, each in its own process (OMP_NUM_THREADS=1 each); the results are '
                        'the same as one at a time (every seed is independent)')


# ------------------------------------------------------------------------------------------------ helpers
def _env() -> dict:
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    env['PYTHONPATH'] = ROOT + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    return env


def _run(cmd: List[str], log: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(log)), exist_ok=True)
    with open(log, 'w') as f:
        r = subprocess.run(cmd, cwd=ROOT, env=_env(), stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError(f'failed ({r.returncode}), see {log}: {" ".join(cmd)}')


def ensure_data(args) -> None:
    root = osp.join(ROOT, args.data_root) if not osp.isabs(args.data_root) else args.data_root
    need = [osp.join(root, f'semantickitti_infos_{s}.pkl') for s in ('train', 'val', 'test')]
    if all(osp.isfile(p) for p in need):
        return
    if not args.generate:
        raise FileNotFoundError(f'{need[0]} (and val / test) missing: generate the root with '
                                f'`python tools/create_synthetic_data.py semantickitti --out-dir {args.data_root}` '
                                'or pass --generate')
    cmd = [sys.executable, 'tools/create_synthetic_data.py', 'semantickitti', '--out-dir', root]
    cmd += args.generate_args.split()
    _run(cmd, osp.join(args.work_dir, 'create_data.log'))


def weights_only_checkpoint(src: str, dst: str) -> str:
    """Reduce a checkpoint this run wrote (trusted) to ``{'state_dict': ...}`` (loads with weights_only)."""
    import torch
    ckpt = torch.load(src, map_location='cpu', weights_only=False)
    torch.save(dict(state_dict=ckpt.get('state_dict', ckpt)), dst)
    return dst


def select_epochs(args) -> Optional[List[int]]:
    """The candidate pretraining epochs (sorted, within ``--pretrain-epochs``), or None for the last one only."""
    if not args.pretrain_select_epochs:
        return None
    eps = sorted(set(int(e) for e in args.pretrain_select_epochs))
    if eps[0] < 1 or (args.pretrain_epochs is not None and eps[-1] > args.pretrain_epochs):
        raise ValueError(f'--pretrain-select-epochs {eps} must lie in [1, --pretrain-epochs]')
    return eps


def pretrain(args, seed: int, work_dir: str) -> Dict[str, str]:
    """Pretrain once; returns candidate name (``epoch=E``, or ``last``) -> weights-only checkpoint."""
    cmd = [sys.executable, 'tools/train.py', args.pretrain_config, '--work-dir', work_dir, '--cfg-options',
           f'randomness.seed={seed}', f'train_dataloader.dataset.data_root={_root(args)}/']
    if args.pretrain_epochs is not None:
        cmd.append(f'train_cfg.max_epochs={args.pretrain_epochs}')
    eps = select_epochs(args)
    if eps is not None:  # keep the candidates' checkpoints (every gcd epochs); reduced below, the rest removed
        import math
        interval = 0
        for e in eps:
            interval = math.gcd(interval, e)
        cmd += [f'default_hooks.checkpoint.interval={interval}', 'default_hooks.checkpoint.max_keep_ckpts=-1']
    cmd += list(args.pretrain_options)
    t0 = time.time()
    _run(cmd, osp.join(work_dir, 'pretrain.log'))
    if eps is None:
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            last = f.read().strip()
        out = {'last': weights_only_checkpoint(last, osp.join(work_dir, 'pretrained_weights.pth'))}
    else:
        out = {}
        for e in eps:
            out[f'epoch={e}'] = weights_only_checkpoint(osp.join(work_dir, f'epoch_{e}.pth'),
                                                        osp.join(work_dir, f'pretrained_weights_epoch_{e}.pth'))
        for f in os.listdir(work_dir):  # full checkpoints (optimizer state): not needed any more
            if f.startswith('epoch_') and f.endswith('.pth'):
                os.remove(osp.join(work_dir, f))
    print(f'segmentation: seed {seed}: pretrained in {time.time() - t0:.0f} s -> {sorted(out)}', flush=True)
    return out


def _root(args) -> str:
    return (args.data_root if osp.isabs(args.data_root) else osp.join(ROOT, args.data_root)).rstrip('/')


def _native(model):
    """spconv's Native algorithm on every layer of ``model`` when it is on the CPU (same weights)."""
    try:
        from spconv.core import ConvAlgo
        from spconv.pytorch.conv import SparseConvolution
    except ImportError:  # pragma: no cover
        return model
    if next(model.parameters()).is_cuda:
        return model
    for m in model.modules():
        if isinstance(m, SparseConvolution):
            m.algo = ConvAlgo.Native
    return model


def _load_cfg(path: str, args, checkpoint: Optional[str]):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, path) if not osp.isabs(path) else path)
    root = _root(args) + '/'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = root
    if checkpoint is None:
        cfg.model.backbone.init_cfg = None
    else:
        cfg.model.backbone.init_cfg = dict(type='CheckedPretrained', checkpoint=checkpoint, prefix='backbone.')
    return cfg


def _pct(v) -> Optional[float]:
    v = float(v)
    return None if not np.isfinite(v) else v * 100  # nan: class absent from the split and never predicted


def _miou(metrics: Dict[str, float], classes: Sequence[str]) -> tuple:
    per_class = {c: _pct(metrics[c]) for c in classes if c in metrics}
    return float(metrics['miou']) * 100, per_class


# ------------------------------------------------------------------------------------------------ linear probe
def point_features(cfg, split_loader: str, seed: int):
    """Frozen-backbone per-point features and labels of every frame of one split (test pipeline).

    Returns: list of (N_i, C) float32 arrays and list of (N_i,) int64 learning labels.
    """
    import torch
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    _native(model).eval()
    ds_cfg = copy.deepcopy(cfg[split_loader].dataset)
    ds_cfg.pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    ds_cfg.test_mode = True
    dataset = DATASETS.build(ds_cfg)
    feats, labels = [], []
    with torch.no_grad():
        for i in range(len(dataset)):
            data = model.data_preprocessor(pseudo_collate([dataset[i]]), training=False)
            vox = model.backbone(data['inputs']['voxels']['voxels'], data['inputs']['voxels']['coors'])
            ds = data['data_samples'][0]
            feats.append(vox[ds.point2voxel_map].float().numpy())
            labels.append(ds.gt_pts_seg.pts_semantic_mask.long().numpy())
    return feats, labels, model.backbone.state_dict()


def train_linear_probe(train_x: np.ndarray, train_y: np.ndarray, num_classes: int, lr: float, steps: int,
                       max_points: int, seed: int):
    """Standardised features -> nn.Linear(C, num_classes), AdamW, cross-entropy (ignore index = num_classes)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(train_x)
    y = torch.from_numpy(train_y)
    keep = y != num_classes
    x, y = x[keep], y[keep]
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], num_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (min(max_points, x.shape[0]), ), generator=g)
        loss = torch.nn.functional.cross_entropy(head((x[idx] - mean) / std), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    def predict(feats: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return head((torch.from_numpy(feats) - mean) / std).argmax(1).numpy()

    return predict


def seg_miou(preds: List[np.ndarray], labels: List[np.ndarray], classes: Sequence[str]) -> tuple:
    """mIoU (%) and per-class IoU (%) by mmdet3d's ``seg_eval`` (what ``SegMetric`` computes)."""
    from mmdet3d.evaluation.functional import seg_eval
    label2cat = {i: c for i, c in enumerate(classes)}
    ret = seg_eval(labels, preds, label2cat, IGNORE_INDEX, logger='silent')
    return _miou(ret, classes)


def linear_probe(args, seed: int, checkpoints: Optional[Dict[str, Optional[str]]], classes: Sequence[str]) -> dict:
    """Probe every candidate checkpoint (``{name: path}``; ``None``: random init) with every lr of ``--lp-lrs`` on
    train, score each on val, choose (checkpoint, lr) by val mIoU, then measure test once with the chosen pair."""
    if checkpoints is None or not isinstance(checkpoints, dict):
        checkpoints = {'random' if checkpoints is None else 'last': checkpoints}
    scores, best = {}, {}
    for name, ckpt in checkpoints.items():
        cfg = _load_cfg(args.lp_config, args, ckpt)
        tr_f, tr_y, _ = point_features(cfg, 'train_dataloader', seed)
        va_f, va_y, _ = point_features(cfg, 'val_dataloader', seed)
        tx, ty = np.concatenate(tr_f), np.concatenate(tr_y)
        del tr_f, tr_y
        for lr in args.lp_lrs:
            pred = train_linear_probe(tx, ty, len(classes), lr, args.lp_steps, args.lp_points, seed)
            key = f'lr={lr:g}' if len(checkpoints) == 1 else f'{name},lr={lr:g}'
            scores[key] = seg_miou([pred(f) for f in va_f], va_y, classes)[0]
            best[key] = (name, pred)
    chosen = transfer.select_on_val(scores)
    name, pred = best[chosen]
    cfg = _load_cfg(args.lp_config, args, checkpoints[name])
    te_f, te_y, _ = point_features(cfg, 'test_dataloader', seed)  # test: once, with the val-chosen pair
    test_miou, per_class = seg_miou([pred(f) for f in te_f], te_y, classes)
    return dict(test=test_miou, val=scores[chosen], val_scores=scores, chosen=chosen, checkpoint=name,
                per_class=per_class)


# ------------------------------------------------------------------------------------------------ fine-tuning
def finetune(args, seed: int, checkpoint: Optional[str], work_dir: str, classes: Sequence[str]) -> dict:
    from mmengine.runner import Runner
    cfg = _load_cfg(args.ft_config, args, checkpoint)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed)
    cfg.experiment_name = f'ft_{osp.basename(work_dir)}_{seed}_{int(time.time() * 1000)}'
    if args.ft_epochs is not None:
        cfg.train_cfg.max_epochs = args.ft_epochs
        for s in cfg.param_scheduler:
            if s.get('type') == 'CosineAnnealingLR':
                s.T_max = s.end = args.ft_epochs
    cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs + 1  # val is run below, once
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**6)  # nothing written
    if args.ft_options:
        from mmengine.config import DictAction
        opts = argparse.ArgumentParser()
        opts.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(opts.parse_args(['--o'] + list(args.ft_options)).o)
    runner = Runner.from_cfg(cfg)
    _native(runner.model)
    runner.train()
    val = runner.val_loop.run()
    test = runner.test_loop.run() if runner._test_loop is not None else runner.test()
    val_miou, _ = _miou(val, classes)
    test_miou, per_class = _miou(test, classes)
    return dict(test=test_miou, val=val_miou, per_class=per_class)


# ------------------------------------------------------------------------------------------------ one seed
def run_one_seed(args, seed: int, classes: Sequence[str]) -> dict:
    """Pretrain once, then probe and fine-tune from the pretrained and from random weights (one seed).

    Returns ``{'test': {arm: mIoU}, 'val': {arm: mIoU}, 'chosen': {arm: [choice]}, 'val_scores': {arm: {...}},
    'per_class': {arm: {class: IoU}}, 'pretrain_chosen': name}``; module level so that ``--jobs`` can run it in a
    spawned process.
    """
    wd = osp.join(args.work_dir, f'seed{seed}')
    ckpts = pretrain(args, seed, osp.join(wd, 'pretrain'))
    res = dict(test={}, val={}, chosen={}, val_scores={}, per_class={}, pretrain_chosen=None)
    ckpt = None
    for arm, c in (('lp_pretrained', ckpts), ('lp_random', None)):
        t0 = time.time()
        r = linear_probe(args, seed, c, classes)
        if arm == 'lp_pretrained':  # the fine-tuning starts from the checkpoint the probe chose on val
            ckpt = ckpts[r['checkpoint']]
            res['pretrain_chosen'] = r['checkpoint']
        res['test'][arm], res['val'][arm] = r['test'], r['val']
        res['chosen'][arm] = [r['chosen']]
        res['val_scores'][arm] = r['val_scores']
        res['per_class'][arm] = r['per_class']
        print(f'segmentation: seed {seed}: {arm} val {r["val_scores"]} -> {r["chosen"]}, test mIoU '
              f'{r["test"]:.1f} ({time.time() - t0:.0f} s)', flush=True)
    for arm, c in (('ft_pretrained', ckpt), ('ft_scratch', None)):
        if args.skip_ft:
            res['test'][arm] = res['val'][arm] = None
            continue
        t0 = time.time()
        r = finetune(args, seed, c, osp.join(wd, arm), classes)
        res['test'][arm], res['val'][arm] = r['test'], r['val']
        res['per_class'][arm] = r['per_class']
        print(f'segmentation: seed {seed}: {arm} val mIoU {r["val"]:.1f}, test mIoU {r["test"]:.1f} '
              f'({time.time() - t0:.0f} s)', flush=True)
    return res


# ------------------------------------------------------------------------------------------------ protocol
def run(args) -> dict:
    from mmengine.config import Config
    ensure_data(args)
    ft_cfg = Config.fromfile(osp.join(ROOT, args.ft_config))
    classes = list(ft_cfg.train_dataloader.dataset.metainfo['classes'])
    label_fraction = ft_cfg.get('label_fraction', None)
    per_class: Dict[str, Dict[str, list]] = {a: {} for a in ARMS}
    val: Dict[str, list] = {a: [] for a in ARMS}
    chosen: Dict[str, list] = {a: [] for a in ARMS}
    val_scores: Dict[str, list] = {a: [] for a in ('lp_pretrained', 'lp_random')}
    pretrain_chosen: List[Optional[str]] = []

    seeds = [int(s) for s in args.seeds]
    jobs = max(1, min(int(getattr(args, 'jobs', 1) or 1), len(seeds)))
    if jobs == 1:
        per_seed = [run_one_seed(args, seed, classes) for seed in seeds]
    else:  # independent seeds in spawned processes (no state shared with this one); collected in seed order
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('spawn')) as pool:
            per_seed = list(pool.map(run_one_seed, [args] * len(seeds), seeds, [classes] * len(seeds)))
    for r in per_seed:
        pretrain_chosen.append(r['pretrain_chosen'])
        for arm in ARMS:
            val[arm].append(r['val'][arm])
            chosen[arm].extend(r['chosen'].get(arm, []))
            for k, v in r['per_class'].get(arm, {}).items():
                per_class[arm].setdefault(k, []).append(v)
        for arm in val_scores:
            val_scores[arm].append(r['val_scores'][arm])
    it = iter(per_seed)
    arms = transfer.run_seeds(seeds, lambda seed: next(it)['test'])
    return transfer.make_results(
        'mIoU', args.seeds, {a: arms[a] for a in ARMS}, split=transfer.REPORT_SPLIT,
        label_fraction=label_fraction, baselines=BASELINES, unit='%', scale=1.0,
        val=val, lp_chosen=chosen, lp_val_scores=val_scores, pretrain_checkpoint_chosen=pretrain_chosen,
        per_class=per_class,
        protocol=dict(version=2 if select_epochs(args) else 1,
                      pretrain_config=args.pretrain_config, lp_config=args.lp_config, ft_config=args.ft_config,
                      pretrain_epochs=args.pretrain_epochs, pretrain_select_epochs=select_epochs(args),
                      checkpoint_choice=('per seed, the (pretraining epoch, probe lr) pair with the best linear-probe '
                                         'val mIoU; the fine-tuning arm starts from the same checkpoint'
                                         if select_epochs(args) else 'last checkpoint'),
                      lp_lrs=args.lp_lrs, lp_steps=args.lp_steps,
                      lp_points=args.lp_points, ft_epochs=args.ft_epochs, data_root=args.data_root,
                      selection_split=transfer.SELECTION_SPLIT))
