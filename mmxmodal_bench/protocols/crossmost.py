"""Cross-MoST: label-free self-training from a zero-shot start on a shifted target, every arm over seeds.

    python tools/eval_transfer.py crossmost --seeds 0 1 2 3 4 --tune-seeds 100 101 \
        --out benchmarks/results/crossmost_transfer.json

Fixed before running (docs/crossmost.md):

* Per seed: the source and target sets (:mod:`mmxmodal_bench.crossmost_data`), the small source CLIP and the
  ULIP-style point alignment (:mod:`mmxmodal_bench.crossmost_start`), the self-training randomness.
* The zero-shot start (CLIP text embeddings of the target class names) is evaluated on the target test split:
  ``zero_shot_point``, ``zero_shot_image``.
* Choice of the joint rule's ``threshold`` x ``point_weight`` (``--thresholds``, ``--point-weights``), and
  optionally of the self-training epochs and of the source set's render style (``--grid``, a JSON of candidate
  lists over ``threshold``, ``point_weight``, ``epochs``, ``source_style``): each candidate self-trains on the tuning
  seeds (disjoint from the reported seeds; refused otherwise) and is scored by the mean of the point and image
  accuracy of the EMA teacher on the target VAL split; the best is used for every reported seed.
  ``--setting T,W`` skips the search (a choice made earlier on val: say so in the report).
* Reported seeds: the configured method (``final_point``, ``final_image``, ``final_combined`` = the config's
  ``test_fusion``, plus ``final_fused_prob`` / ``final_fused_joint``), ``pl_share_image`` (share of the accepted
  pseudo-labels given by the 2D teacher over the run, %), ``pl_acc_image`` / ``pl_acc_point`` (their accuracy
  against the held-back train labels, %), and the ablations ``no2d_final_point`` (3D self-training alone: the point
  teacher labels the point student, the image tower frozen, no alignment, no masked image modelling) and
  ``nomask_final_point`` / ``nomask_final_image`` (no masked image or point modelling).
"""
from __future__ import annotations

import copy
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

from .. import transfer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/crossmost/crossmost_tinyclip-dgcnn_1xb16-10e_synthetic-shift.py')


def add_arguments(p) -> None:
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--tune-seeds', type=int, nargs='+', default=[100], help='seeds of the val search only')
    p.add_argument('--thresholds', type=float, nargs='+', default=[0.5, 0.8])
    p.add_argument('--point-weights', type=float, nargs='+', default=[1.0])
    p.add_argument('--grid', default=None,
                   help='json of candidate lists chosen on val, keys threshold, point_weight, epochs, source_style '
                        '(replaces --thresholds / --point-weights; missing keys keep the single default)')
    p.add_argument('--tie-break', default='first', choices=('first', 'pl_share_image'),
                   help='between candidates with the same val score: the first in grid order, or the one whose '
                        'joint rule took the larger share of its pseudo-labels from the 2D teacher (val runs)')
    p.add_argument('--setting', default=None, help='THRESHOLD,POINT_WEIGHT: skip the val search')
    p.add_argument('--epochs', type=int, default=None, help='self-training epochs (default: the config)')
    p.add_argument('--no-ablations', action='store_true')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--jobs', type=int, default=1,
                   help='val-search candidates, then reported seeds, run at once, each in its own spawned process '
                        '(each run is independent: same results as one at a time)')
    p.add_argument('--data-kwargs', default='{}', help='json kwargs of crossmost_data.generate (smaller sets)')
    p.add_argument('--start-kwargs', default='{"clip_epochs": 15, "ulip_epochs": 15}',
                   help='json kwargs of crossmost_start.make_start')


# ------------------------------------------------------------------------------------------------- building blocks
def seed_config(config: str, data_dir: str, seed: int, epochs: Optional[int] = None, pseudo_label=None,
                ablation: Optional[str] = None):
    """The config pointed at the generated files of one seed, with the chosen rule and an optional ablation."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.data_dir = data_dir = osp.abspath(data_dir)
    for key, root in (('train_dataloader', 'target'), ('test_dataloader', 'target'), ('val_dataloader', 'target_val')):
        cfg[key].dataset.data_root = osp.join(data_dir, root, 'modelnet40_ply_hdf5_2048')
        cfg[key].dataset.views_dir = osp.join(data_dir, root, 'modelnet40_views')
    cfg.model.img_encoder.local_dir = osp.join(data_dir, 'source_clip')
    ulip = osp.join(data_dir, 'ulip_dgcnn.pth')
    for k in ('point_encoder', 'point_proj'):
        if cfg.model[k].get('init_cfg'):
            cfg.model[k].init_cfg.checkpoint = ulip
    cfg.randomness = dict(seed=seed)
    if epochs is not None:
        cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = epochs
        for s in cfg.param_scheduler:
            s.T_max = s.end = epochs
        cfg.default_hooks.checkpoint.interval = epochs
    if pseudo_label is not None:
        cfg.model.pseudo_label.update(pseudo_label)
    if ablation == 'no2d':  # 3D self-training alone
        rule = cfg.model.pseudo_label  # the point teacher alone, with the joint rule's point threshold
        cfg.model.pseudo_label = dict(mode='separate', pts_threshold=rule.threshold / rule.get('point_weight', 1.0),
                                      img_threshold=2.0)
        cfg.model.img_encoder.frozen = True
        cfg.model.loss_mim = cfg.model.loss_align = None
        cfg.model.branch_weights = dict(img=0.0, pts=1.0)
    elif ablation == 'nomask':
        cfg.model.loss_mim = cfg.model.loss_mpm = None
    elif ablation is not None:
        raise ValueError(f'unknown ablation {ablation!r}')
    return cfg


def start_checkpoint(cfg, out: str) -> str:
    """Build the model of ``cfg`` (CLIP, ULIP point encoder, text classifier), run its ``init_weights`` and save it:
    the zero-shot start."""
    import torch
    import mmxmodal  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    os.makedirs(osp.dirname(out), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict(), meta=dict(crossmost_start='zero-shot: CLIP text embeddings of '
                                                             'the target class names, ULIP-aligned point encoder')),
               out)
    return out


def evaluate(cfg, ckpt: str, work_dir: str, split: str = 'test') -> Dict[str, float]:
    """Top-1 (%) of every branch of the model in ``ckpt`` on the target ``split`` (``val`` or ``test``)."""
    from mmengine.runner import Runner
    cfg = copy.deepcopy(cfg)
    cfg.work_dir, cfg.load_from = work_dir, ckpt
    cfg.custom_hooks = []
    cfg.visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    if split == 'val':
        cfg.test_dataloader = cfg.val_dataloader
    elif split != 'test':
        raise ValueError(split)
    runner = Runner.from_cfg(cfg)
    return {k.split('/')[-1]: float(v) for k, v in runner.test().items()}


def selftrain(cfg, start: str, work_dir: str) -> Tuple[str, List[dict]]:
    """Self-train from ``start`` without labels -> (last checkpoint (EMA teacher), per-epoch pseudo-label log)."""
    from mmengine.runner import Runner

    from mmxmodal.utils.checkpoint import add_plain_checkpoint_hook
    cfg = copy.deepcopy(cfg)
    cfg.work_dir, cfg.load_from = work_dir, start
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # val is scored once, by the caller
    cfg.train_cfg.pop('val_interval', None)
    add_plain_checkpoint_hook(cfg)  # checkpoints that load weights-only, as tools/train.py writes them
    done = finished_selftrain(cfg, work_dir)
    if done is not None:
        print(f'[crossmost protocol] reusing the finished self-training in {work_dir}', flush=True)
        return done
    runner = Runner.from_cfg(cfg)
    runner.train()
    last = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    path = osp.join(runner.log_dir, 'pseudo_labels.jsonl')
    records = [json.loads(x) for x in open(path)] if osp.isfile(path) else []
    return last, records


def finished_selftrain(cfg, work_dir: str) -> Optional[Tuple[str, List[dict]]]:
    """``(last checkpoint, per-epoch pseudo-label log)`` of a self-training that already finished in ``work_dir``
    with exactly this config (the runner's config dump is compared as text: rule, data, seed, schedule, start), so
    a cut-off protocol run picks up where it stopped; ``None`` otherwise."""
    import glob
    epochs = cfg.train_cfg.max_epochs
    last = osp.join(work_dir, f'epoch_{epochs}.pth')
    dump = osp.join(work_dir, osp.basename(cfg.filename)) if cfg.filename else None
    if not (osp.isfile(last) and dump and osp.isfile(dump)):
        return None
    with open(dump) as f:
        if f.read() != cfg.dump():
            return None
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'pseudo_labels.jsonl')), reverse=True):
        records = [json.loads(x) for x in open(path)]
        if len(records) == epochs:
            return last, records
    return None


def pseudo_label_summary(records: Sequence[dict]) -> Dict[str, Optional[float]]:
    """Over the whole run: share (%) of accepted pseudo-labels from the 2D teacher and the accuracy (%) of the
    labels given by each teacher against the held-back train labels."""
    tot = {}
    for r in records:
        for k, v in r.get('counts', {}).items():
            tot[k] = tot.get(k, 0.0) + v
    acc = tot.get('accepted_from_img', 0.0) + tot.get('accepted_from_pts', 0.0)

    def ratio(a: str, b: str) -> Optional[float]:
        return 100.0 * tot[a] / tot[b] if tot.get(b, 0.0) > 0 else None
    return dict(pl_share_image=100.0 * tot.get('accepted_from_img', 0.0) / acc if acc > 0 else 0.0,
                pl_rate=100.0 * acc / tot['num'] if tot.get('num') else None,
                pl_acc_image=ratio('from_img_correct', 'from_img_labelled_accepted'),
                pl_acc_point=ratio('from_pts_correct', 'from_pts_labelled_accepted'))


def prepare_seed(work: str, seed: int, classes: Sequence[str], data_kwargs: dict, start_kwargs: dict) -> dict:
    from ..crossmost_data import generate
    from ..crossmost_start import make_start
    style = data_kwargs.get('source_style', 'studio')
    data_dir = osp.join(work, f'seed{seed}', 'data' if style == 'studio' else f'data_{style}')
    t = time.time()
    generate(data_dir, seed=seed, classes=classes, **data_kwargs)
    info = make_start(data_dir, seed=seed, **start_kwargs)
    return dict(data_dir=data_dir, start_info=info, seconds=round(time.time() - t, 1))


def run_arm(args, data_dir: str, seed: int, rule: dict, ablation: Optional[str], split: str,
            tag: str, epochs: Optional[int] = None) -> Tuple[Dict[str, float], List[dict]]:
    cfg = seed_config(args.config, data_dir, seed, epochs, rule, ablation)
    wd = osp.join(osp.dirname(data_dir), tag)
    start = start_checkpoint(cfg, osp.join(wd, 'start.pth'))
    last, records = selftrain(cfg, start, osp.join(wd, 'selftrain'))
    return evaluate(cfg, last, osp.join(wd, f'eval_{split}'), split), records


def relative_paths(info, base: str):
    """``info`` with every absolute path under ``base`` written relative to it, and any other under the repository
    relative to the repository (a start reused from another work dir), so that results files name no machine."""
    if isinstance(info, dict):
        return {k: relative_paths(v, base) for k, v in info.items()}
    if isinstance(info, list):
        return [relative_paths(v, base) for v in info]
    if isinstance(info, str) and osp.isabs(info):
        for root in (base, ROOT):
            if info.startswith(osp.join(root, '')):
                return osp.relpath(info, root)
    return info


def reported_seed(args, seed: int, work: str, data_kwargs: dict, start_kwargs: dict,
                  chosen: dict) -> Tuple[Dict[str, Optional[float]], dict]:
    """One reported seed on the test split with the val-chosen setting: the zero-shot start, the method and (unless
    ``--no-ablations``) the ablations. Returns ``(arms, per-seed record)``; module level so that ``--jobs`` can run
    it in a spawned process."""
    import torch
    torch.set_num_threads(args.threads)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    from mmengine.config import Config
    classes = list(Config.fromfile(args.config).class_names)
    rule, epochs = rule_of(chosen), chosen['epochs']
    prep = prepare_seed(work, seed, classes, data_kwargs, start_kwargs)
    cfg = seed_config(args.config, prep['data_dir'], seed, epochs, rule)
    wd = osp.dirname(prep['data_dir'])
    start = start_checkpoint(cfg, osp.join(wd, f'start_{osp.basename(prep["data_dir"])}.pth'))
    z = evaluate(cfg, start, osp.join(wd, f'eval_zero_shot_{osp.basename(prep["data_dir"])}'), 'test')
    tag = '' if chosen['source_style'] == 'studio' else f'_{chosen["source_style"]}'
    f, records = run_arm(args, prep['data_dir'], seed, rule, None, 'test', 'full' + tag, epochs)
    out = dict(zero_shot_point=z['pts_acc'], zero_shot_image=z['img_acc'],
               zero_shot_combined=z['combined_acc'], final_point=f['pts_acc'], final_image=f['img_acc'],
               final_combined=f['combined_acc'], final_fused_prob=f['fused_prob_acc'],
               final_fused_joint=f['fused_joint_acc'], **pseudo_label_summary(records))
    if not args.no_ablations:
        a, _ = run_arm(args, prep['data_dir'], seed, rule, 'no2d', 'test', 'no2d' + tag, epochs)
        out['no2d_final_point'] = a['pts_acc']
        a, _ = run_arm(args, prep['data_dir'], seed, rule, 'nomask', 'test', 'nomask' + tag, epochs)
        out['nomask_final_point'], out['nomask_final_image'] = a['pts_acc'], a['img_acc']
    return out, dict(start=relative_paths(prep['start_info'], work), pseudo_labels=records, arms=out)


def candidate_key(cand: dict) -> str:
    return ','.join(f'{k}={v}' for k, v in cand.items())


def tune_candidate(args, work: str, seed: int, data_kwargs: dict, start_kwargs: dict, cand: dict) -> dict:
    """One candidate of the val search on one tuning seed: self-train, score the EMA teacher on VAL by the mean of
    the point and image accuracy. Module level so that ``--jobs`` can run it in a spawned process."""
    import torch
    torch.set_num_threads(args.threads)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    from mmengine.config import Config
    classes = list(Config.fromfile(args.config).class_names)
    prep = prepare_seed(work, seed, classes, dict(data_kwargs, source_style=cand['source_style']), start_kwargs)
    m, records = run_arm(args, prep['data_dir'], seed, rule_of(cand), None, 'val', f'tune_{candidate_key(cand)}',
                         cand['epochs'])
    print(f'[crossmost protocol] tune seed {seed} {candidate_key(cand)}: val {m}', flush=True)
    return dict(seed=seed, score=(m['pts_acc'] + m['img_acc']) / 2, val=m, **pseudo_label_summary(records))


# ------------------------------------------------------------------------------------------------------- protocol
GRID_KEYS = ('threshold', 'point_weight', 'epochs', 'source_style')


def grid_candidates(args, data_kwargs: dict) -> List[dict]:
    """Every combination of the val search: ``--grid`` lists, else ``--thresholds`` x ``--point-weights`` (epochs:
    ``--epochs``; source style: ``--data-kwargs``)."""
    import itertools
    grid = dict(threshold=list(args.thresholds), point_weight=list(args.point_weights), epochs=[args.epochs],
                source_style=[data_kwargs.get('source_style', 'studio')])
    if args.grid:
        given = json.loads(args.grid)
        unknown = set(given) - set(GRID_KEYS)
        if unknown:
            raise ValueError(f'--grid keys {sorted(unknown)} are not among {GRID_KEYS}')
        grid.update({k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in given.items()})
    return [dict(zip(GRID_KEYS, combo)) for combo in itertools.product(*(grid[k] for k in GRID_KEYS))]


def choose_candidate(val_scores: Dict[str, float], val_details: Dict[str, List[dict]], tie_break: str = 'first',
                     split: str = transfer.SELECTION_SPLIT) -> str:
    """The candidate with the best val score; among equal scores the first in grid order (``'first'``) or the one
    whose val runs took the larger mean share of pseudo-labels from the 2D teacher (``'pl_share_image'``)."""
    best = transfer.select_on_val(val_scores, split=split)
    if tie_break == 'first':
        return best
    if tie_break != 'pl_share_image':
        raise ValueError(f'unknown tie-break {tie_break!r} (first | pl_share_image)')
    tied = [k for k, v in val_scores.items() if abs(v - val_scores[best]) < 1e-9]
    share = {k: sum(r['pl_share_image'] for r in val_details[k]) / len(val_details[k]) for k in tied}
    return transfer.select_on_val(share, split=split)


def rule_of(candidate: dict) -> dict:
    """The joint rule's part of a candidate."""
    return dict(threshold=candidate['threshold'], point_weight=candidate['point_weight'])


def run(args) -> dict:
    import torch
    from mmengine.config import Config
    torch.set_num_threads(args.threads)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    if set(args.tune_seeds) & set(args.seeds):
        raise transfer.ProtocolError(f'tuning seeds {args.tune_seeds} overlap the reported seeds {args.seeds}')
    classes = list(Config.fromfile(args.config).class_names)
    data_kwargs, start_kwargs = json.loads(args.data_kwargs), json.loads(args.start_kwargs)
    work = osp.abspath(args.work_dir)
    t0 = time.time()

    # 1. the joint rule's threshold x point weight (and, with --grid, epochs and source style), chosen on val with
    #    the tuning seeds
    candidates = grid_candidates(args, data_kwargs)
    val_scores: Dict[str, float] = {}
    val_details: Dict[str, List[dict]] = {}  # per tuning seed: val accuracies and pseudo-label shares
    if args.setting:
        t, w = (float(x) for x in args.setting.split(','))
        chosen = dict(candidates[0], threshold=t, point_weight=w)
    else:
        tune_jobs = max(1, min(int(getattr(args, 'jobs', 1) or 1), len(candidates) * len(args.tune_seeds)))
        tasks = [(ci, s) for ci in range(len(candidates)) for s in args.tune_seeds]
        for s in args.tune_seeds:  # the start of a tuning seed is made once, before the candidates share it
            for style in dict.fromkeys(c['source_style'] for c in candidates):
                prepare_seed(work, s, classes, dict(data_kwargs, source_style=style), start_kwargs)
        measured: Dict[Tuple[int, int], dict] = {}
        if tune_jobs > 1:  # independent candidate runs in spawned processes (same results as one at a time)
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            with ProcessPoolExecutor(tune_jobs, mp_context=multiprocessing.get_context('spawn')) as pool:
                futures = {t: pool.submit(tune_candidate, args, work, t[1], data_kwargs, start_kwargs,
                                          candidates[t[0]]) for t in tasks}
                measured = {t: f.result() for t, f in futures.items()}
        else:
            measured = {t: tune_candidate(args, work, t[1], data_kwargs, start_kwargs, candidates[t[0]])
                        for t in tasks}
        for ci, cand in enumerate(candidates):
            key = candidate_key(cand)
            rows = [measured[(ci, s)] for s in args.tune_seeds]
            val_scores[key] = sum(r['score'] for r in rows) / len(rows)
            val_details[key] = rows
        best = choose_candidate(val_scores, val_details, getattr(args, 'tie_break', 'first'), args.select_on)
        chosen = candidates[list(val_scores).index(best)]
    print(f'[crossmost protocol] chosen on val: {chosen} (val scores {val_scores})', flush=True)
    epochs = chosen['epochs']
    data_kwargs = dict(data_kwargs, source_style=chosen['source_style'])

    # 2. the reported seeds, test split, measured once with the chosen rule
    per_seed: Dict[int, dict] = {}
    done: Dict[int, Dict[str, Optional[float]]] = {}
    seeds = [int(s) for s in args.seeds]
    jobs = max(1, min(int(getattr(args, 'jobs', 1) or 1), len(seeds)))

    def results(seeds: Sequence[int], arms: Dict[str, list], **extra) -> dict:
        arms = dict(arms)
        for b in ('point', 'image'):
            arms[f'gain_{b}'] = [None if f is None or z is None else f - z
                                 for f, z in zip(arms[f'final_{b}'], arms[f'zero_shot_{b}'])]
        baselines = dict(final_point='zero_shot_point', final_image='zero_shot_image',
                         final_combined='zero_shot_combined', final_fused_prob='zero_shot_combined',
                         final_fused_joint='zero_shot_combined', no2d_final_point='zero_shot_point',
                         nomask_final_point='zero_shot_point', nomask_final_image='zero_shot_image')
        return transfer.make_results(
            'top-1 accuracy (%)', seeds, arms, split='test',
            baselines={k: v for k, v in baselines.items() if k in arms}, chance=100.0 / len(classes), scale=1.0,
            select_on=args.select_on, tune_seeds=args.tune_seeds, candidates=candidates, val_scores=val_scores,
            val_details=val_details, tie_break=getattr(args, 'tie_break', 'first'),
            chosen=chosen, config=osp.relpath(args.config, ROOT), epochs=epochs, data_kwargs=data_kwargs,
            start_kwargs=start_kwargs, per_seed={str(k): v for k, v in per_seed.items()},
            seconds=round(time.time() - t0, 1), **extra)

    def collect(seed: int, out: dict, entry: dict) -> Dict[str, Optional[float]]:
        per_seed[seed], done[seed] = entry, out
        print(f'[crossmost protocol] seed {seed}: {json.dumps(out)}', flush=True)
        with open(osp.join(work, 'partial.json'), 'w') as f:  # what is done so far, if the run is cut short
            json.dump(dict(chosen=chosen, val_scores=val_scores, per_seed=per_seed), f, indent=2)
        if 3 <= len(done) < len(seeds):  # an interim file in the same schema, if the run is cut short
            ds = [s for s in seeds if s in done]
            transfer.write_results(args.out, results(ds, transfer.run_seeds(ds, done.__getitem__), complete=False,
                                                     seeds_planned=seeds))
        return out

    if jobs > 1:  # independent seeds in spawned processes, collected as they finish, reported in seed order
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('spawn')) as pool:
            futures = {pool.submit(reported_seed, args, s, work, data_kwargs, start_kwargs, chosen): s for s in seeds}
            for fut in as_completed(futures):
                collect(futures[fut], *fut.result())
    else:
        for seed in seeds:
            collect(seed, *reported_seed(args, seed, work, data_kwargs, start_kwargs, chosen))
    arms = transfer.run_seeds(seeds, done.__getitem__)
    return results(args.seeds, arms, complete=True)
