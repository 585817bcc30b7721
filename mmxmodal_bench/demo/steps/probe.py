"""Step ``probe``: linear-SVM probe of the CrossPoint point encoder vs. its random init; t-SNE of the held-out features."""
from __future__ import annotations

import json
import os
import os.path as osp
import time
import warnings
from typing import TYPE_CHECKING

from mmxmodal_bench.report import plot_tsne

from ..runner import ROOT, StepFailed, load_json, rel, say
from ..settings import CONFIGS

if TYPE_CHECKING:
    from ..demo import Demo


def run(demo: Demo) -> bool:
    """Features of the labelled splits from the pretrained and the randomly initialised encoder -> linear SVM
    (as ``LinearSVMMetric``: train split -> test split) and t-SNE of the held-out test split."""
    import numpy as np
    out_json = osp.join(demo.work, 'probe', 'probe.json')
    feats_npz = osp.join(demo.work, 'probe', 'features.npz')
    cp = demo.results['crosspoint']
    reused = demo.reuse_ok('probe') and osp.isfile(out_json) and osp.isfile(feats_npz)
    if reused:
        res, feats = load_json(out_json), dict(np.load(feats_npz))
    else:
        demo.may_run('probe', rel(out_json))
        with warnings.catch_warnings():  # import-time deprecation warnings of the libraries
            warnings.simplefilter('ignore')
            res, feats = probe_features(demo, cp['ckpt'], cp['opts'])
        os.makedirs(osp.dirname(out_json), exist_ok=True)
        with open(out_json, 'w') as f:
            json.dump(res, f, indent=2)
        np.savez_compressed(feats_npz, **feats)
    test_opts = ' '.join(f'{k.replace("val_", "test_", 1)}={v}' for k, v in cp['opts'].items()
                         if k.startswith(('val_', 'model.')))
    cmd = f'python tools/test.py {CONFIGS["crosspoint"]} {{}} --cfg-options {test_opts}'
    note = f'fit on {res["num_train"]} train, scored on {res["num_test"]} held-out objects'
    for i, (name, kw) in enumerate(res['metrics'].items()):
        what = f'linear-SVM accuracy ({name}: C={kw.get("C")}' + (', standardised features)' if
                                                                 kw.get('standardize') else ')')
        demo.add('probe', 'CrossPoint linear probe', f'{what}, CrossPoint-pretrained point encoder',
                 res['pretrained'][name], '%', command=cmd.format(rel(cp['ckpt'])), note=note)
        demo.add('probe', 'CrossPoint linear probe', f'{what}, same encoder randomly initialised',
                 res['random'][name], '%', command=cmd.format(rel(res['random_ckpt'])),
                 note='random_init.pth: init_weights() with the config seed, written by the demo')
        demo.add('probe', 'CrossPoint linear probe', f'{what}, gain (pretrained - random init)',
                 res['pretrained'][name] - res['random'][name], 'points')
    head = next(iter(res['metrics']))  # CrossPoint's own probe
    # the same SVM on the same objects: the val loop of the training run must agree with the saved checkpoint
    logged = demo.results['crosspoint'].get('val_acc', {})
    for name in res['metrics']:
        if name in logged and abs(logged[name] - res['pretrained'][name]) > 1.0:
            demo.warnings.append(
                f'CrossPoint {name}: the val loop of the training run logged {logged[name]:.2f} % at the last '
                f'epoch, but the saved checkpoint {rel(cp["ckpt"])} scores {res["pretrained"][name]:.2f} % on '
                'the same objects in a fresh process (as tools/test.py does): the evaluation during training and '
                'the evaluation of the saved weights disagree')
    out = demo.fig('crosspoint_tsne.png')
    from threadpoolctl import threadpool_limits
    with threadpool_limits(demo.threads):  # sklearn's OpenMP threads crawl on a busy machine
        plot_tsne([dict(title=f'CrossPoint-pretrained DGCNN (SVM {res["pretrained"][head]:.1f} %)',
                        feats=feats['pretrained_test'], labels=feats['labels_test']),
                   dict(title=f'random init (SVM {res["random"][head]:.1f} %)', feats=feats['random_test'],
                        labels=feats['labels_test'])], out, class_names=res.get('class_names'),
                  title='t-SNE of DGCNN features of the held-out test objects, coloured by class (labels unseen '
                  'in pretraining)')
    demo.add_figure('probe', 't-SNE of the point features of the held-out objects: CrossPoint-pretrained vs '
                    'randomly initialised encoder', out)
    return reused


def probe_features(demo: Demo, ckpt: str, opts: dict):
    import logging

    import numpy as np
    import torch
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, load_checkpoint, set_random_seed

    from mmdet3d.registry import MODELS
    from mmxmodal.evaluation.few_shot import extract_features
    from mmxmodal.evaluation.linear_svm import linear_svm_accuracy
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(demo.threads)
    threadpool_limits(demo.threads)  # BLAS / OpenMP pools of this process (sklearn's SVM and t-SNE)
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no per-parameter init_weights report
    # the config exactly as the training run used it (mmengine dumps it into the work dir), so that the probe
    # matches the run's own val loop even if the config file changed since
    dumped = osp.join(osp.dirname(ckpt), osp.basename(CONFIGS['crosspoint']))
    if osp.isfile(dumped):
        cfg = Config.fromfile(dumped)
    else:
        cfg = Config.fromfile(osp.join(ROOT, CONFIGS['crosspoint']))
        cfg.merge_from_dict(opts)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    loader_cfg = cfg.val_dataloader.copy()
    for ds in loader_cfg.dataset.datasets:
        ds.data_root = osp.join(ROOT, ds.data_root)
    # the val loop's linear-SVM metrics (CrossPoint's probe first; e.g. also one on standardised features)
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, (list, tuple)) else [cfg.val_evaluator]
    metrics = {(e.get('prefix') or 'svm'): {k: v for k, v in e.items() if k in ('C', 'classifier', 'standardize',
                                                                                'max_iter')}
               for e in evaluators if e.get('type') == 'LinearSVMMetric'}
    if not metrics:
        raise StepFailed(f'{CONFIGS["crosspoint"]} has no LinearSVMMetric in val_evaluator')
    res, feats = dict(metrics=metrics), {}
    random_ckpt = osp.join(demo.work, 'probe', 'random_init.pth')
    os.makedirs(osp.dirname(random_ckpt), exist_ok=True)
    for tag in ('pretrained', 'random'):
        set_random_seed(cfg.get('randomness', {}).get('seed', 0))
        model = MODELS.build(cfg.model)
        if tag == 'pretrained':
            load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
        else:
            model.init_weights()
            torch.save(dict(state_dict=model.state_dict(), meta=dict(note='init_weights() with the config seed')),
                       random_ckpt)
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        t = time.time()
        data = extract_features(model, loader)
        train, test = data['splits'] == 'train', data['splits'] == 'test'
        res[tag] = {name: 100.0 * linear_svm_accuracy(data['feats'][train], data['labels'][train],
                                                      data['feats'][test], data['labels'][test], **kw)
                    for name, kw in metrics.items()}
        say('probe', f'{tag}: {int(train.sum())} train / {int(test.sum())} test features '
            f'({data["feats"].shape[1]}-d, {time.time() - t:.1f} s) -> linear-SVM accuracy '
            + ', '.join(f'{n} {a:.2f} %' for n, a in res[tag].items()))
        for split, m in (('train', train), ('test', test)):
            feats[f'{tag}_{split}'] = data['feats'][m]
            feats[f'labels_{split}'] = data['labels'][m]
        res.update(num_train=int(train.sum()), num_test=int(test.sum()),
                   num_classes=int(len(np.unique(data['labels']))))
    res['random_ckpt'] = random_ckpt
    names_file = osp.join(loader_cfg.dataset.datasets[0].data_root, 'shape_names.txt')
    if osp.isfile(names_file):
        with open(names_file) as f:
            res['class_names'] = [ln.strip() for ln in f if ln.strip()]
    return res, feats
