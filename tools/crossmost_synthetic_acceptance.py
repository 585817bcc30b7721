"""Cross-MoST acceptance protocol on the embedded synthetic objects (CPU, a few minutes).

    python tools/crossmost_synthetic_acceptance.py [--work-dir work_dirs/crossmost_acceptance] [--check]

Steps (no label is used in any training step; labels of the train split are read only by the pseudo-label monitor
hook and, for ``--shots`` samples per class, to build the start classifier):

1. data: ``tools/create_synthetic_data.py objects`` (12 classes, 40 train / 20 test objects per class, 4 renders
   each) unless ``--data-dir`` already holds it; a tiny random CLIP (``tools/make_tiny_clip.py``).
2. warm-up (label-free): ``--warmup-epochs`` of image-point alignment only (the symmetric batch cross-entropy of
   the config; every other Cross-MoST term off, no teacher) - a stand-in for the CLIP/ULIP alignment that the
   published method starts from; deliberately short, so the start is weak.
3. start classifier: ``--shots`` labelled train samples per class -> class-mean prototypes of their image and point
   embeddings (``tools/crossmost_init_classifier.py``); its held-out accuracy is a0 (point, image, combined).
4. Cross-MoST self-training from that start for ``--epochs`` on the unlabelled train split (EMA teacher, joint
   pseudo-labels, fairness, masked image / point modelling, alignment); evaluation of the EMA teacher on the test
   split.

Writes ``<work-dir>/acceptance.json``; with ``--check`` exits 1 unless the point and the image branch each gain
>= ``--min-gain`` points and the combined classifier is >= the better branch.
"""
import argparse
import copy
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from collections import defaultdict
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmxmodal.utils.checkpoint import add_plain_checkpoint_hook  # noqa: E402

DEFAULT_CONFIG = osp.join(ROOT, 'configs/crossmost/crossmost_tinyvit-dgcnn_1xb16-20e_synthetic-objects.py')
DATA_ARGS = ['--num-objects', '12', '--num-views', '2', '--cls-train-per-class', '40', '--cls-test-per-class',
             '20', '--cls-views', '4', '--image-size', '64', '--num-points', '1024', '--no-scanobjectnn']


def ensure_data(data_dir: str, seed: int) -> None:
    if osp.isfile(osp.join(data_dir, 'modelnet40_ply_hdf5_2048', 'shape_names.txt')):
        return
    cmd = [sys.executable, osp.join(ROOT, 'tools/create_synthetic_data.py'), 'objects', '--out-dir', data_dir,
           '--seed', str(seed)] + DATA_ARGS
    subprocess.run(cmd, check=True)


def point_paths(cfg: Config, data_dir: str, clip_dir: str) -> Config:
    """Point every dataset / the CLIP encoder of ``cfg`` at the generated files."""
    cfg = copy.deepcopy(cfg)
    root = osp.join(data_dir, 'modelnet40_ply_hdf5_2048')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = root
        cfg[key].dataset.views_dir = osp.join(data_dir, 'modelnet40_views')
    if cfg.model.img_encoder.type == 'CLIPViTEncoder':
        cfg.model.img_encoder.local_dir = clip_dir
    return cfg


def run_test(cfg: Config, ckpt: str, work_dir: str) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg.work_dir, cfg.load_from = work_dir, ckpt
    cfg.custom_hooks = []
    runner = Runner.from_cfg(cfg)
    return {k.split('/')[-1]: float(v) for k, v in runner.test().items()}


def student_checkpoint(ckpt: str) -> str:
    """Write ``<ckpt>.student.pth`` whose state_dict is the student (``EMATeacherHook`` saves the teacher as
    ``state_dict`` and the student under ``ema_state_dict['module.*']``)."""
    import torch
    c = torch.load(ckpt, map_location='cpu', weights_only=False)
    sd = {k[7:]: v for k, v in c['ema_state_dict'].items() if k.startswith('module.')}
    out = ckpt.replace('.pth', '.student.pth')
    torch.save(dict(state_dict=sd, meta=c.get('meta', {})), out)
    return out


def _latest_log_dir(work_dir: str) -> Optional[str]:
    """The newest ``<work_dir>/<timestamp>/`` folder mmengine wrote (None if there is none)."""
    runs = sorted(d for d in glob.glob(osp.join(work_dir, '*')) if osp.isdir(osp.join(d, 'vis_data')))
    return runs[-1] if runs else None


def epoch_losses(work_dir: str) -> Dict[str, List[float]]:
    """Per-epoch mean of every logged ``loss*`` scalar of a run (``vis_data/scalars.json``), in epoch order."""
    log_dir = _latest_log_dir(work_dir)
    sums: Dict[str, Dict[int, List[float]]] = defaultdict(lambda: defaultdict(list))
    if log_dir is None:
        return {}
    with open(osp.join(log_dir, 'vis_data', 'scalars.json')) as f:
        for line in f:
            rec = json.loads(line)
            if 'epoch' not in rec or 'lr' not in rec:  # training records only
                continue
            for k, v in rec.items():
                if k.startswith('loss'):
                    sums[k][int(rec['epoch'])].append(float(v))
    return {k: [sum(v[e]) / len(v[e]) for e in sorted(v)] for k, v in sums.items()}


def pseudo_label_epochs(work_dir: str) -> List[dict]:
    """The per-epoch records of ``PseudoLabelMonitorHook`` (``pseudo_labels.jsonl``) of a run."""
    log_dir = _latest_log_dir(work_dir)
    path = osp.join(log_dir, 'pseudo_labels.jsonl') if log_dir else ''
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def param_drift(ckpt_a: str, ckpt_b: str, prefix: str) -> float:
    """Relative change ``||w_b - w_a|| / ||w_a||`` of the float parameters under ``prefix`` of two checkpoints."""
    import torch
    a = torch.load(ckpt_a, map_location='cpu', weights_only=False)['state_dict']
    b = torch.load(ckpt_b, map_location='cpu', weights_only=False)['state_dict']
    keys = [k for k in a if k.startswith(prefix) and k in b and a[k].is_floating_point()]
    if not keys:
        raise KeyError(f'no parameter under {prefix!r} in {ckpt_a}')
    num = sum(float((b[k].float() - a[k].float()).pow(2).sum()) for k in keys)
    den = sum(float(a[k].float().pow(2).sum()) for k in keys)
    return (num / max(den, 1e-12)) ** 0.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--work-dir', default='work_dirs/crossmost_acceptance')
    p.add_argument('--data-dir', default=None, help='default: <work-dir>/synthetic_objects')
    p.add_argument('--warmup-epochs', type=int, default=2)
    p.add_argument('--epochs', type=int, default=None, help='self-training epochs (default: the config)')
    p.add_argument('--shots', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--min-gain', type=float, default=10.0)
    p.add_argument('--check', action='store_true')
    p.add_argument('--start-checkpoint', default=None,
                   help='reuse a start classifier written by an earlier run (skips steps 2-3)')
    p.add_argument('--threads', type=int, default=int(os.environ.get('OMP_NUM_THREADS') or 1),
                   help='torch CPU threads (default: OMP_NUM_THREADS, else 1)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args()
    import torch
    torch.set_num_threads(args.threads)

    t0 = time.time()
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    data_dir = osp.abspath(args.data_dir or osp.join(work, 'synthetic_objects'))
    ensure_data(data_dir, args.seed)
    from mmxmodal.models.clip_utils import make_tiny_clip
    clip_dir = osp.join(work, 'tiny_clip')
    if not osp.isfile(osp.join(clip_dir, 'open_clip_pytorch_model.bin')):
        make_tiny_clip(clip_dir, seed=args.seed)

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg = point_paths(cfg, data_dir, clip_dir)
    cfg.randomness = dict(seed=args.seed)
    if args.epochs is not None:
        cfg.train_cfg.max_epochs = args.epochs
        cfg.train_cfg.val_interval = args.epochs
        for s in cfg.param_scheduler:
            s.T_max = s.end = args.epochs
        cfg.default_hooks.checkpoint.interval = args.epochs

    # 2. label-free alignment warm-up
    warm = copy.deepcopy(cfg)
    warm.work_dir = osp.join(work, 'warmup')
    for k in ('loss_pl', 'loss_fair', 'loss_mim', 'loss_mpm'):
        warm.model[k] = None
    warm.custom_hooks = []
    add_plain_checkpoint_hook(warm)  # checkpoints that load weights-only (as tools/train.py writes them)
    warm.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=args.warmup_epochs)
    warm.param_scheduler = []
    warm.val_dataloader = warm.val_cfg = warm.val_evaluator = None
    warm.default_hooks.checkpoint = dict(type='CheckpointHook', interval=args.warmup_epochs, max_keep_ckpts=1)
    warm_ckpt = osp.join(warm.work_dir, f'epoch_{args.warmup_epochs}.pth')
    t = time.time()
    start_ckpt = osp.join(work, 'start_classifier.pth')
    if args.start_checkpoint:
        import torch
        start_ckpt = args.start_checkpoint
        start_meta = torch.load(start_ckpt, map_location='cpu', weights_only=False)['meta']['crossmost_start']
    else:
        if args.warmup_epochs > 0:
            Runner.from_cfg(warm).train()
        else:
            warm_ckpt = None
        # 3. start classifier from labelled shots
        from crossmost_init_classifier import make_start_checkpoint
        start_meta = make_start_checkpoint(cfg, warm_ckpt, start_ckpt, shots=args.shots, shot_seed=args.seed)
    t_warm = time.time() - t
    a0 = run_test(cfg, start_ckpt, osp.join(work, 'eval_start'))

    # 4. self-training
    st = copy.deepcopy(cfg)
    st.work_dir, st.load_from = osp.join(work, 'selftrain'), start_ckpt
    add_plain_checkpoint_hook(st)
    t = time.time()
    Runner.from_cfg(st).train()
    t_self = time.time() - t
    # the saved state_dict holds the EMA teacher (EMATeacherHook); evaluate it with a fresh runner
    last = osp.join(st.work_dir, f'epoch_{st.train_cfg.max_epochs}.pth')
    final = run_test(cfg, last, osp.join(work, 'eval_final'))
    final_student = run_test(cfg, student_checkpoint(last), osp.join(work, 'eval_final_student'))

    gain = {k: final[k] - a0[k] for k in final}
    ok = (gain['pts_acc'] >= args.min_gain and gain['img_acc'] >= args.min_gain
          and final['combined_acc'] >= max(final['pts_acc'], final['img_acc']))
    report = dict(config=osp.relpath(args.config, ROOT), start=start_meta['method'],
                  shot_labels=start_meta['labels'], warmup_epochs=args.warmup_epochs,
                  selftrain_epochs=st.train_cfg.max_epochs, a0=a0, final=final, gain=gain, passed=ok,
                  final_student=final_student,
                  selftrain_losses=epoch_losses(st.work_dir),
                  pseudo_labels=pseudo_label_epochs(st.work_dir),
                  img_encoder_drift=param_drift(start_ckpt, last, 'img_encoder.'),
                  point_encoder_drift=param_drift(start_ckpt, last, 'point_encoder.'),
                  seconds=dict(warmup=round(t_warm, 1), selftrain=round(t_self, 1),
                               total=round(time.time() - t0, 1)))
    with open(osp.join(work, 'acceptance.json'), 'w') as f:
        json.dump(report, f, indent=2)
    print('[crossmost acceptance] ' + json.dumps(report))
    if args.check and not ok:
        sys.exit(1)


if __name__ == '__main__':
    main()
