"""Label-efficiency comparison of SimIPU on the embedded nuScenes root: CenterPoint trained on a labelled fraction
from scratch vs. with its SparseEncoder initialised from SimIPU pretraining, same schedule, same labelled samples.

    python tools/create_synthetic_data.py nuscenes --out-dir data/synthetic_nuscenes --num-scenes 4 \
        --samples-per-scene 10 --seed 0
    OMP_NUM_THREADS=1 python tools/label_efficiency.py --data-root data/synthetic_nuscenes --ratio 0.1 \
        --seeds 0 1 --out benchmarks/results/simipu_label_efficiency

Steps (each a ``tools/train.py`` subprocess): (1) SimIPU pretraining with
``configs/simipu/simipu_r18-sparse_1xb2-2e_synthetic-nuscenes.py`` (skipped with ``--checkpoint``); (2) for every
seed, the fine-tuning config ``configs/finetune/centerpoint_voxel0512_..._simipu.py`` with
``model.init_cfg=None`` (scratch) and with the pretraining checkpoint; the labelled subset is drawn by
``LabelFractionDataset(ratio, seed=0)`` (same for every run), ``--seeds`` change the training randomness.
Writes ``<out>.json`` and ``<out>.md`` with NuScenes mAP / NDS of the val split. Nothing is asserted.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRETRAIN_CFG = 'configs/simipu/simipu_r18-sparse_1xb2-2e_synthetic-nuscenes.py'
FINETUNE_CFG = 'configs/finetune/centerpoint_voxel0512_second_secfpn_1xb2-40e_synthetic-nuscenes-3d_simipu.py'
METRIC = 'NuScenes metric/pred_instances_3d_NuScenes/'


def _train(config: str, work_dir: str, options: list, log: str) -> float:
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work_dir]
    if options:
        cmd += ['--cfg-options'] + options
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    t0 = time.time()
    with open(log, 'w') as f:
        r = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError(f'training failed ({r.returncode}), see {log}: {" ".join(cmd)}')
    return time.time() - t0


def _last_scalars(work_dir: str) -> list:
    runs = sorted(d for d in os.listdir(work_dir) if osp.isfile(osp.join(work_dir, d, 'vis_data', 'scalars.json')))
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-root', default='data/synthetic_nuscenes')
    p.add_argument('--ratio', type=float, default=0.1)
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--checkpoint', help='SimIPU checkpoint (skip pretraining)')
    p.add_argument('--pretrain-epochs', type=int, default=2)
    p.add_argument('--finetune-epochs', type=int, default=40)
    p.add_argument('--work-dir', default='work_dirs/simipu_label_efficiency')
    p.add_argument('--out', default='benchmarks/results/simipu_label_efficiency')
    args = p.parse_args()

    root = osp.abspath(args.data_root).rstrip('/') + '/'
    if not osp.isfile(osp.join(root, 'nuscenes_infos_train.pkl')):
        sys.exit(f'{root}nuscenes_infos_train.pkl not found; create the root first (see --help)')
    os.makedirs(args.work_dir, exist_ok=True)
    result = dict(data_root=root, ratio=args.ratio, seeds=args.seeds, pretrain_config=PRETRAIN_CFG,
                  finetune_config=FINETUNE_CFG, finetune_epochs=args.finetune_epochs, runs=[])
    ckpt = args.checkpoint
    if ckpt is None:
        wd = osp.join(args.work_dir, 'pretrain')
        secs = _train(PRETRAIN_CFG, wd, [f'train_dataloader.dataset.data_root={root}',
                                         f'train_cfg.max_epochs={args.pretrain_epochs}'], wd + '.log')
        ckpt = osp.join(wd, f'epoch_{args.pretrain_epochs}.pth')
        rows = [r for r in _last_scalars(wd) if 'loss_intra' in r]
        result['pretrain'] = dict(checkpoint=ckpt, seconds=secs, epochs=args.pretrain_epochs,
                                  first={k: rows[0][k] for k in ('loss_intra', 'loss_inter', 'acc_intra',
                                                                  'acc_inter')},
                                  last={k: rows[-1][k] for k in ('loss_intra', 'loss_inter', 'acc_intra',
                                                                 'acc_inter')})
    result['checkpoint'] = ckpt
    data_opts = [f'train_dataloader.dataset.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
                 f'test_dataloader.dataset.data_root={root}', f'val_evaluator.data_root={root}',
                 f'val_evaluator.ann_file={root}nuscenes_infos_val.pkl', f'test_evaluator.data_root={root}',
                 f'test_evaluator.ann_file={root}nuscenes_infos_val.pkl',
                 f'train_dataloader.dataset.ratio={args.ratio}', f'train_cfg.max_epochs={args.finetune_epochs}',
                 f'train_cfg.val_interval={args.finetune_epochs}']
    for seed in args.seeds:
        for init in ('scratch', 'simipu'):
            wd = osp.join(args.work_dir, f'{init}_seed{seed}')
            opts = data_opts + [f'randomness.seed={seed}']
            opts += ['model.init_cfg=None'] if init == 'scratch' else [f'model.init_cfg.override.checkpoint={ckpt}']
            secs = _train(FINETUNE_CFG, wd, opts, wd + '.log')
            rows = _last_scalars(wd)
            metrics = [r for r in rows if METRIC + 'mAP' in r][-1]
            train_rows = [r for r in rows if 'loss' in r]
            run = dict(init=init, seed=seed, seconds=secs, mAP=metrics[METRIC + 'mAP'],
                       NDS=metrics[METRIC + 'NDS'], final_train_loss=train_rows[-1]['loss'],
                       car_AP={k.split('/')[-1]: v for k, v in metrics.items() if 'car_AP_dist' in k})
            result['runs'].append(run)
            print(json.dumps(run), flush=True)

    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    with open(args.out + '.json', 'w') as f:
        json.dump(result, f, indent=2)
    lines = [f'# SimIPU label efficiency on the embedded nuScenes root ({args.ratio:.0%} labels)', '',
             f'Pretraining: `{PRETRAIN_CFG}`' + (f" ({result['pretrain']['epochs']} epochs, "
                                                 f"{result['pretrain']['seconds']:.0f} s)" if 'pretrain' in result
                                                 else f' (checkpoint {ckpt})'),
             f'Fine-tuning: `{FINETUNE_CFG}`, {args.finetune_epochs} epochs, same labelled samples for every run.',
             '', '| init | seed | mAP | NDS | final train loss | time (s) |', '|---|---:|---:|---:|---:|---:|']
    for r in result['runs']:
        lines.append(f"| {r['init']} | {r['seed']} | {r['mAP']:.4f} | {r['NDS']:.4f} | {r['final_train_loss']:.3f} "
                     f"| {r['seconds']:.0f} |")
    for init in ('scratch', 'simipu'):
        runs = [r for r in result['runs'] if r['init'] == init]
        lines.append(f"| **{init} mean** | | {sum(r['mAP'] for r in runs) / len(runs):.4f} | "
                     f"{sum(r['NDS'] for r in runs) / len(runs):.4f} | | |")
    with open(args.out + '.md', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
