"""Val-only diagnosis of the segmentation linear probe (protocol v2 was fixed from it): val mIoU (sequence 08) of
the frozen-feature linear probe per pretraining checkpoint, learning rate and number of steps, with a tuning seed
(100, not one of the reported seeds 0-2). Only the train and val splits are read; never the test split.

    python tools/train.py configs/seg/simipu_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py \
        --work-dir work_dirs/tune/pre100 --cfg-options randomness.seed=100 \
        train_dataloader.dataset.data_root=$PWD/data/synthetic-semantickitti/ train_cfg.max_epochs=30 \
        default_hooks.checkpoint.interval=3 default_hooks.checkpoint.max_keep_ckpts=-1   # stopped after epoch 21
    python benchmarks/seg_probe_val_diagnosis.py --points 50000 --steps 300 --lrs 0.01 0.03 0.1 0.3 \
        --ckpts work_dirs/tune/pre100/epoch_21.pth random work_dirs/tune/pre100/epoch_6.pth \
        work_dirs/tune/pre100/epoch_12.pth
"""
import argparse
import json
import os.path as osp
import sys
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmxmodal_bench.protocols import segmentation as S  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument('--ckpts', nargs='+')  # 'random' or path
p.add_argument('--lrs', type=float, nargs='+', default=[0.003, 0.01, 0.03, 0.1, 0.3])
p.add_argument('--steps', type=int, nargs='+', default=[300, 1000])
p.add_argument('--seed', type=int, default=100)
p.add_argument('--points', type=int, default=200000)
p.add_argument('--out', default='work_dirs/tune/diag.jsonl')
a = p.parse_args()
args = argparse.Namespace(data_root='data/synthetic-semantickitti')
from mmengine.config import Config
classes = list(Config.fromfile(osp.join(S.ROOT, S.FT_CFG)).train_dataloader.dataset.metainfo['classes'])
for c in a.ckpts:
    t0 = time.time()
    ck = None
    if c != 'random':
        ck = S.weights_only_checkpoint(c, c.replace('.pth', '_w.pth'))
    cfg = S._load_cfg(S.LP_CFG, args, ck)
    tr = S.point_features(cfg, 'train_dataloader', a.seed)
    va = S.point_features(cfg, 'val_dataloader', a.seed)
    tfeat = time.time() - t0
    tx, ty = np.concatenate(tr[0]), np.concatenate(tr[1])
    res = {}
    for st in a.steps:
        for lr in a.lrs:
            t1 = time.time()
            pred = S.train_linear_probe(tx, ty, len(classes), lr, st, a.points, a.seed)
            m, _ = S.seg_miou([pred(f) for f in va[0]], va[1], classes)
            res[f'steps={st},lr={lr:g}'] = round(m, 2)
            print(c, st, lr, round(m, 2), f'{time.time()-t1:.0f}s', flush=True)
    line = dict(ckpt=c, points=a.points, feat_s=round(tfeat, 1), total_s=round(time.time() - t0, 1), val=res)
    print(json.dumps(line), flush=True)
    with open(a.out, 'a') as f:
        f.write(json.dumps(line) + '\n')
