"""Why does the Cross-MoST image branch not learn? Val-only diagnostics (issue 15), tuning seed 100.

Every step runs on the target TRAIN split (self-training, labels only where a step says "oracle") and is scored
on the target VAL split; the test split is never read. Each step appends one record (command, what it measured,
numbers) to ``benchmarks/results/crossmost_image_val_diagnosis.json``.

    python benchmarks/crossmost_image_val_diagnosis.py prep
    python benchmarks/crossmost_image_val_diagnosis.py static          # code-path checks, frozen-feature probes
    python benchmarks/crossmost_image_val_diagnosis.py train NAME [--oracle] [--cfg-options k=v ...]

``train`` self-trains from the zero-shot start with the protocol's chosen v2 setting (threshold 0.5, point weight
1, 15 epochs, 'varied' source renders) plus the given overrides and reports the val accuracy of the EMA teacher
(what the protocol reports) and of the student. ``--oracle`` replaces both teachers' probabilities by one-hot TRUE
target-train labels (an upper bound of the pseudo-label loss, a diagnostic only: never part of the method).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
OUT = osp.join(ROOT, 'benchmarks/results/crossmost_image_val_diagnosis.json')
WORK = osp.join(ROOT, 'work_dirs/xm3diag')
SEED = 100
DATA_KWARGS = dict(source_per_class=20, source_views=2, train_per_class=20, val_per_class=10, test_per_class=20,
                   source_style='varied')
START_KWARGS = dict(clip_epochs=30, ulip_epochs=30)
RULE = dict(threshold=0.5, point_weight=1.0)
EPOCHS = 15


def record(name: str, command: str, measured: str, numbers: dict, **extra) -> None:
    data = dict(split='val', seed=SEED, test_split_read=False, note=(
        'Cross-MoST image branch, val-only diagnosis (issue 15). Tuning seed 100, target val split (10 objects per '
        'class, 120); the test split was not read. Setting of protocol v2 (threshold 0.5, point weight 1, 15 '
        'epochs, varied source renders, data / start sizes of the v2 run). "oracle" runs use the TRUE target-train '
        'labels as a diagnostic upper bound only.'), data_kwargs=DATA_KWARGS, start_kwargs=START_KWARGS,
        runs=[])
    if osp.isfile(OUT):
        with open(OUT) as f:
            data = json.load(f)
    data['runs'] = [r for r in data['runs'] if r['name'] != name]
    data['runs'].append(dict(name=name, command=command, measured=measured, numbers=numbers, **extra))
    os.makedirs(osp.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(data, f, indent=1)
    print(json.dumps(dict(name=name, numbers=numbers), indent=1), flush=True)


def data_dir() -> str:
    return osp.join(WORK, f'seed{SEED}', 'data_varied')


def prep() -> dict:
    from mmengine.config import Config

    from mmxmodal_bench.protocols.crossmost import CONFIG, prepare_seed
    classes = list(Config.fromfile(CONFIG).class_names)
    return prepare_seed(WORK, SEED, classes, DATA_KWARGS, START_KWARGS)


def base_cfg(options=None, epochs: int = EPOCHS):
    from mmengine.config import DictAction  # noqa: F401

    from mmxmodal_bench.protocols.crossmost import CONFIG, seed_config
    cfg = seed_config(CONFIG, data_dir(), SEED, epochs, dict(RULE))
    if options:
        cfg.merge_from_dict(options)
    return cfg


# ---------------------------------------------------------------------------------------------- oracle model
def register_oracle() -> None:
    import torch
    import torch.nn.functional as F
    from mmdet3d.registry import MODELS

    from mmxmodal.models.algorithms.crossmost import CrossMoST

    if 'CrossMoSTOracleDiag' in MODELS.module_dict:
        return

    @MODELS.register_module()
    class CrossMoSTOracleDiag(CrossMoST):
        """DIAGNOSTIC ONLY: both teachers' probabilities replaced by one-hot TRUE labels."""

        def loss(self, inputs, data_samples=None):
            self._diag_gt = self._gt_labels(data_samples, inputs['img'].device)
            return super().loss(inputs, data_samples)

        @torch.no_grad()
        def _teacher_probs(self, img, pts):
            p = F.one_hot(self._diag_gt, self.classifier.num_classes).float()
            return p, p.clone()


# ---------------------------------------------------------------------------------------------- steps
def student_checkpoint(ckpt: str, out: str) -> str:
    """The student's weights of a self-training checkpoint (``ema_state_dict`` holds it after EMAHook's swap)."""
    import torch
    c = torch.load(ckpt, map_location='cpu', weights_only=False)
    sd = {k[len('module.'):]: v for k, v in c['ema_state_dict'].items() if k.startswith('module.')}
    torch.save(dict(state_dict=sd, meta={}), out)
    return out


def train(name: str, oracle: bool, options: dict, epochs: int, command: str) -> None:
    from mmxmodal_bench.protocols.crossmost import evaluate, pseudo_label_summary, selftrain, start_checkpoint
    options = dict(options)
    img_strong = options.pop('diag.img_strong', None)
    cfg = base_cfg(options, epochs)
    if img_strong is not None:  # the image part of the strong view: 'weak' (= the weak view's crop / flip only)
        ws = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'WeakStrongViews'][0]
        img_t = ('RandomResizedCropFlip', 'ObjectRandAugment')
        assert img_strong == 'weak', img_strong
        ws.strong = [t for t in ws.weak if t.type in img_t] + [t for t in ws.strong if t.type not in img_t]
    if oracle:
        register_oracle()
        cfg.model.type = 'CrossMoSTOracleDiag'
    wd = osp.join(WORK, 'runs', name)
    t0 = time.time()
    start = start_checkpoint(base_cfg(None, epochs), osp.join(wd, 'start.pth'))
    last, records = selftrain(cfg, start, osp.join(wd, 'selftrain'))
    ev_cfg = copy.deepcopy(cfg)
    ev_cfg.model.type = 'CrossMoST'
    zero = evaluate(ev_cfg, start, osp.join(wd, 'eval_val_start'), 'val')
    teacher = evaluate(ev_cfg, last, osp.join(wd, 'eval_val_teacher'), 'val')
    student = evaluate(ev_cfg, student_checkpoint(last, osp.join(wd, 'student.pth')),
                       osp.join(wd, 'eval_val_student'), 'val')
    tr_cfg = copy.deepcopy(ev_cfg)  # the train split through the test pipeline: does the student fit it?
    tr_cfg.val_dataloader.dataset.data_root = cfg.train_dataloader.dataset.data_root
    tr_cfg.val_dataloader.dataset.views_dir = cfg.train_dataloader.dataset.views_dir
    tr_cfg.val_dataloader.dataset.split = 'train'
    student_train = evaluate(tr_cfg, osp.join(wd, 'student.pth'), osp.join(wd, 'eval_train_student'), 'val')
    per_epoch = [dict(epoch=r['epoch'], **{k: round(100 * r[k], 1) for k in
                                           ('teacher_acc_img', 'teacher_acc_pts', 'pl_share_img', 'pl_acc_img')
                                           if isinstance(r.get(k), (int, float))}) for r in records]
    numbers = dict(val_zero_shot_img=zero['img_acc'], val_zero_shot_pts=zero['pts_acc'], val_teacher_img=teacher['img_acc'], val_teacher_pts=teacher['pts_acc'],
                   val_student_img=student['img_acc'], val_student_pts=student['pts_acc'],
                   train_split_student_img=student_train['img_acc'],
                   **{k: v for k, v in pseudo_label_summary(records).items()})
    record(name, command, ('self-training from the zero-shot start, val top-1 % of the EMA teacher and the student'
                           + ('; ORACLE: teachers replaced by the true train labels' if oracle else '')),
           numbers, oracle=oracle, options=options, epochs=epochs, start_kwargs=START_KWARGS, per_epoch_train=per_epoch,
           seconds=round(time.time() - t0, 1))

def _features(model, cfg, split: str):
    """(img emb, pts emb, labels) of the target ``split`` ('train' through the test pipeline, or 'val')."""
    import torch
    from mmdet3d.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    dl = cfg.val_dataloader if split == 'val' else cfg.test_dataloader
    ds_cfg = copy.deepcopy(dl.dataset)
    if split == 'train':
        ds_cfg.data_root = cfg.train_dataloader.dataset.data_root
        ds_cfg.views_dir = cfg.train_dataloader.dataset.views_dir
        ds_cfg.split = 'train'
    ds = DATASETS.build(ds_cfg)
    model.eval()
    fi, fp, ys = [], [], []
    with torch.no_grad():
        for s in range(0, len(ds), 64):
            batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(s, min(s + 64, len(ds)))]), False)
            emb = model.extract_feat(batch['inputs'])
            fi.append(emb['img']), fp.append(emb['pts'])
            ys.append(torch.stack([torch.as_tensor(d.gt_label).view(()) for d in batch['data_samples']]))
    return torch.cat(fi), torch.cat(fp), torch.cat(ys).long(), ds


def _probe(x, y, xv, yv, steps: int = 500, lr: float = 0.01, wd: float = 1e-3) -> float:
    """Linear softmax probe on standardised frozen features (full batch AdamW), val top-1 %."""
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x, xv = (x - mu) / sd, (xv - mu) / sd
    lin = torch.nn.Linear(x.shape[1], int(max(y.max(), yv.max())) + 1)
    opt = torch.optim.AdamW(lin.parameters(), lr=lr, weight_decay=wd)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(lin(x), y).backward()
        opt.step()
    return float(100.0 * (lin(xv).argmax(1) == yv).float().mean())


def static() -> None:
    """Code-path checks and frozen-feature probes on the zero-shot start (no training of the method)."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from mmdet3d.registry import MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import mmxmodal  # noqa: F401
    from mmxmodal.models.clip_utils import load_local_clip
    init_default_scope('mmdet3d')
    cfg = base_cfg()
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    numbers, notes = {}, {}

    # 1. the encoder reimplementation equals open_clip's encode_image
    clip, _, _ = load_local_clip(local_dir=cfg.model.img_encoder.local_dir)
    clip.eval(), model.eval()
    fi_val, fp_val, y_val, ds_val = _features(model, cfg, 'val')
    x = model.data_preprocessor(pseudo_collate([ds_val[i] for i in range(16)]), False)['inputs']['img']
    x = model._views(x, 4)[0]
    with torch.no_grad():
        ref = clip.encode_image((x - model.img_encoder.mean) / model.img_encoder.std)
        ours = model.img_encoder(x)['feat']
    numbers['encoder_vs_open_clip_max_abs_diff'] = float((ref - ours).abs().max())
    numbers['val_input_img_range'] = [float(x.min()), float(x.max())]

    # 2. zero-shot accuracy of the start (labels for measurement only)
    fi_tr, fp_tr, y_tr, _ = _features(model, cfg, 'train')
    with torch.no_grad():
        for nm, f, y in (('train', fi_tr, y_tr), ('val', fi_val, y_val)):
            numbers[f'zero_shot_img_{nm}'] = float(100 * (model.classifier(f).argmax(1) == y).float().mean())
        for nm, f, y in (('train', fp_tr, y_tr), ('val', fp_val, y_val)):
            numbers[f'zero_shot_pts_{nm}'] = float(100 * (model.classifier(f).argmax(1) == y).float().mean())
        pl_pts = model.classifier(fp_tr).argmax(1)
        # how spread the image embeddings are in the text-classifier space
        li = model.classifier(fi_tr)
        numbers['img_logit_std_over_classes'] = float(li.std(1).mean())
        numbers['img_pred_class_histogram_train'] = np.bincount(li.argmax(1).numpy(), minlength=12).tolist()
        w = F.normalize(model.classifier.weight, dim=1)
        numbers['img_emb_mean_pairwise_cos'] = float((F.normalize(fi_tr, dim=1) @ F.normalize(fi_tr, dim=1).t()).mean())
        numbers['pts_emb_mean_pairwise_cos'] = float((F.normalize(fp_tr, dim=1) @ F.normalize(fp_tr, dim=1).t()).mean())
        numbers['text_proto_mean_pairwise_cos'] = float((w @ w.t()).mean())
        numbers['img_to_text_mean_cos'] = float((F.normalize(fi_tr, dim=1) @ w.t()).mean())
        numbers['pts_to_text_mean_cos'] = float((F.normalize(fp_tr, dim=1) @ w.t()).mean())

    # 3. frozen start features, linear probe train -> val: TRUE labels (upper bound of a classifier on frozen
    #    features) and the zero-shot point teacher's argmax (what self-training could give a frozen image tower)
    numbers['probe_img_true_labels_val'] = _probe(fi_tr, y_tr, fi_val, y_val)
    numbers['probe_pts_true_labels_val'] = _probe(fp_tr, y_tr, fp_val, y_val)
    numbers['probe_img_point_zero_shot_labels_val'] = _probe(fi_tr, pl_pts, fi_val, y_val)
    notes['probe'] = 'standardised frozen shared-space embeddings, linear softmax, AdamW lr 0.01 wd 1e-3, 500 steps'

    # 4. gradients of the image pseudo-label loss reach the image tower; every image parameter is optimised
    from mmdet3d.registry import DATASETS
    model.train()
    ds_tr = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    batch = model.data_preprocessor(pseudo_collate([ds_tr[i] for i in range(16)]), True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    model.zero_grad()
    losses['loss_pl_img'].backward()
    g = {n: p.grad for n, p in model.named_parameters() if n.startswith('img_encoder.')}
    numbers['img_params'] = len(g)
    numbers['img_params_requires_grad'] = sum(p.requires_grad for n, p in model.named_parameters()
                                              if n.startswith('img_encoder.'))
    numbers['img_params_with_nonzero_grad_from_loss_pl_img'] = sum(int(v is not None and float(v.abs().sum()) > 0)
                                                                  for v in g.values())
    numbers['grad_norm_img_encoder_from_loss_pl_img'] = float(torch.sqrt(sum((v ** 2).sum() for v in g.values()
                                                                            if v is not None)))
    numbers['grad_norm_classifier_from_loss_pl_img'] = float(model.classifier.weight.grad.norm())
    numbers['loss_values_first_batch'] = {k: float(v) for k, v in losses.items()}
    ow = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    in_opt = {id(p) for grp in ow.optimizer.param_groups for p in grp['params']}
    numbers['img_params_in_optimizer'] = sum(id(p) in in_opt for n, p in model.named_parameters()
                                             if n.startswith('img_encoder.'))
    numbers['optimizer_lrs'] = sorted({float(grp['lr']) for grp in ow.optimizer.param_groups})
    numbers['classifier_logit_scale'] = float(model.classifier.scale)
    numbers['classifier_weight_requires_grad'] = bool(model.classifier.weight.requires_grad)
    record('static', 'python benchmarks/crossmost_image_val_diagnosis.py static',
           'code-path checks and frozen-feature probes on the zero-shot start (val top-1 %; train labels only in '
           'the probes marked true_labels, a diagnostic upper bound)', numbers, notes=notes)


def finetune(name: str, steps: int, lr: float, view: str, clip_grad: float, head: str, command: str) -> None:
    """ORACLE, image branch alone: the zero-shot start's image tower + classifier trained with plain CE on the TRUE
    target-train labels (no teacher, no other loss), to see what limits the image model itself."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    import mmxmodal  # noqa: F401
    init_default_scope('mmdet3d')
    torch.manual_seed(SEED)
    cfg = base_cfg()
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    ds = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    if head == 'linear':  # a fresh linear head on the image embedding instead of the shared cosine classifier
        lin = torch.nn.Linear(model.embed_dim, model.classifier.num_classes)
        classify = lin
        params = list(model.img_encoder.parameters()) + list(lin.parameters())
    else:
        classify = model.classifier
        params = list(model.img_encoder.parameters()) + list(model.classifier.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr / 50)
    rng = np.random.default_rng(SEED)
    t0, hist = time.time(), []
    for it in range(steps):
        model.train()
        idx = rng.choice(len(ds), 16, replace=False)
        b = model.data_preprocessor(pseudo_collate([ds[int(i)] for i in idx]), True)
        x = b['inputs']['img'][:, 0 if view == 'weak' else -1]
        y = torch.stack([torch.as_tensor(d.gt_label).view(()) for d in b['data_samples']]).long()
        loss = F.cross_entropy(classify(model.encode_img(x)['emb']), y)
        opt.zero_grad()
        loss.backward()
        if clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(params, clip_grad)
        opt.step()
        sched.step()
        if (it + 1) % 25 == 0:
            hist.append(round(float(loss), 3))
    model.eval()
    out = {}
    with torch.no_grad():
        for split in ('train', 'val'):
            fi, _, y, _ = _features(model, cfg, split)
            out[f'{split}_img_acc'] = float(100 * (classify(fi).argmax(1) == y).float().mean())
    record(name, command, 'ORACLE image branch alone: CE on the TRUE target-train labels, no teacher / other '
           'losses; top-1 % on the train split (test pipeline) and on val', out, steps=steps, lr=lr, view=view,
           clip_grad=clip_grad, head=head, loss_every_25_steps=hist, seconds=round(time.time() - t0, 1))


def main(argv=None) -> None:
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import torch
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='step', required=True)
    sub.add_parser('prep')
    sub.add_parser('static')
    t = sub.add_parser('train')
    t.add_argument('name')
    t.add_argument('--oracle', action='store_true')
    t.add_argument('--epochs', type=int, default=EPOCHS)
    t.add_argument('--options', default='{}', help='json dict merged into the config (Config.merge_from_dict)')
    f = sub.add_parser('finetune')
    f.add_argument('name')
    f.add_argument('--steps', type=int, default=225)
    f.add_argument('--lr', type=float, default=5e-4)
    f.add_argument('--view', default='weak', choices=['weak', 'strong'])
    f.add_argument('--clip-grad', type=float, default=0.0)
    f.add_argument('--head', default='shared', choices=['shared', 'linear'])
    p.add_argument('--clip-epochs', type=int, default=None,
                   help='another zero-shot start: the source CLIP trained this many epochs (own work dir)')
    a = p.parse_args(argv)
    global WORK, START_KWARGS
    if a.clip_epochs is not None and a.clip_epochs != START_KWARGS['clip_epochs']:
        START_KWARGS = dict(START_KWARGS, clip_epochs=a.clip_epochs)
        WORK = WORK + f'_clip{a.clip_epochs}'
    command = 'python benchmarks/crossmost_image_val_diagnosis.py ' + ' '.join(
        x if ' ' not in x and '{' not in x else f"'{x}'" for x in (argv if argv is not None else sys.argv[1:]))
    if a.step == 'prep':
        info = prep()
        record('prep' + ('' if WORK.endswith('xm3diag') else '_' + osp.basename(WORK)), command,
               'data generation and the zero-shot start of seed 100; source_zero_shot_acc = accuracy on the SOURCE '
               '(training) renders', dict(source_clip_zero_shot_acc_on_source=info['start_info']['clip'][
                   'source_zero_shot_acc'], ulip_point_zero_shot_acc_on_source=info['start_info']['ulip'][
                   'source_zero_shot_acc'], clip_final_loss=info['start_info']['clip']['final_loss'],
                   seconds=info['seconds']), start_kwargs=START_KWARGS)
    elif a.step == 'static':
        static()
    elif a.step == 'finetune':
        finetune(a.name, a.steps, a.lr, a.view, a.clip_grad, a.head, command)
    else:
        train(a.name, a.oracle, json.loads(a.options), a.epochs, command)


if __name__ == '__main__':
    main()
