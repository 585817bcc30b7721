"""SimIPU-Seg (MinkUNet branch) pretraining on the CPU: throughput, peak memory, the cost of the contrastive
machinery, and the data pipeline time per frame.

    python benchmarks/seg_pretrain_benchmark.py [--config ...] [--repeats 3] [--steps 5]

Measured on the embedded SemanticKITTI root (``tools/create_synthetic_data.py semantickitti``, 1 camera) or, with
``--config configs/seg/simipu_r18-minkunet18-w16_1xb2-2e_synthetic-nuscenes.py --data-root ...``, an embedded
nuScenes root (six cameras; ``tools/create_synthetic_data.py nuscenes --num-azimuths 1140`` gives ~35k-point
scans), batch 2:

- ``samples_per_s``: a full pretraining step (data preprocessor with voxelisation of both views, both LiDAR views
  through the MinkUNet, the image backbone, pair sampling, point-pixel correspondences, both InfoNCE losses,
  backward, optimiser step), batches already loaded;
- ``step_over_bare``: that step's model time divided by the bare forward + backward + step of the same two
  backbones (MinkUNet on both views, ResNet on the images) on the same preprocessed batch with a trivial loss --
  what correspondence, sampling and losses add (aim <= 1.3);
- ``pipeline_ms_per_frame``: ``dataset[i]`` (loading scan and image, augmentation, projection to the camera, the
  two views, packing) per frame, one process, wall time; ``pipeline_cpu_ms_per_frame`` the same in CPU time of
  the process (what one core spends, independent of other jobs on a shared machine), and
  ``pipeline_breakdown_cpu_ms`` in the results file splits it by transform (one value per repeat);
- ``peak_rss_mib``: the process's peak resident memory after the timed steps (``ru_maxrss``).

Each is measured ``--repeats`` times (one value per repeat in the results file); results in
``benchmarks/results/seg_pretrain_benchmark.json``.
"""
import argparse
import os
import os.path as osp
import resource
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CONFIG = 'configs/seg/simipu_r18-minkunet18-w16_1xb2-10e_synthetic-semantickitti.py'


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--data-root', default='data/synthetic-semantickitti')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--steps', type=int, default=5, help='timed steps per repeat')
    p.add_argument('--out', default='benchmarks/results/seg_pretrain_benchmark.json')
    args = p.parse_args(argv)

    import numpy as np
    import torch
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.logging import print_log
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import mmxmodal  # noqa: F401
    from mmxmodal.models.algorithms.simipu_seg import spconv_native_algo
    from mmxmodal_bench import transfer

    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    np.random.seed(0)
    cfg = Config.fromfile(osp.join(ROOT, args.config))
    cfg.train_dataloader.dataset.data_root = osp.join(ROOT, args.data_root) + '/'
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    model = MODELS.build(cfg.model)
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    bs = int(cfg.train_dataloader.batch_size)
    n_frames = len(dataset)

    # time spent in each pipeline transform (its ``transform``), accumulated while ``pipeline_ms`` runs
    spent: dict = {}
    timing = [False]
    for t in dataset.pipeline.transforms:
        inner = t.transform

        def timed(results, _inner=inner, _name=type(t).__name__):
            t0 = time.process_time()
            out = _inner(results)
            if timing[0]:
                spent[_name] = spent.get(_name, 0.0) + time.process_time() - t0
            return out

        t.transform = timed
    breakdown: dict = {}

    def pipeline_ms():
        """Wall and CPU (process) milliseconds per frame; the CPU time is what one core spends, whatever else
        runs on the machine."""
        spent.clear()
        timing[0] = True
        t0, c0 = time.perf_counter(), time.process_time()
        k = min(n_frames, 8)
        for i in range(k):
            dataset[i]
        wall, cpu = (time.perf_counter() - t0) / k * 1000, (time.process_time() - c0) / k * 1000
        timing[0] = False
        for name, sec in spent.items():
            breakdown.setdefault(name, []).append(sec / k * 1000)
        return wall, cpu

    batches = [pseudo_collate([dataset[(i * bs + j) % n_frames] for j in range(bs)]) for i in range(args.steps)]

    def full_step(batch) -> float:
        t0 = time.perf_counter()
        data = model.data_preprocessor(batch, training=True)
        losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if k.startswith('loss'))
        optim.update_params(loss)
        return time.perf_counter() - t0

    def model_steps(bare: bool) -> float:
        """Seconds of model work (after preprocessing) over all batches: SimIPU-Seg's loss or the bare backbones."""
        total = 0.0
        for batch in batches:
            data = model.data_preprocessor(batch, training=True)
            inputs = data['inputs']
            t0 = time.perf_counter()
            if bare:
                with spconv_native_algo(model):
                    f1 = model.backbone(inputs['voxels']['voxels'], inputs['voxels']['coors'])
                    f2 = model.backbone(inputs['voxels_view2']['voxels'], inputs['voxels_view2']['coors'])
                imgs = inputs['imgs']
                img = model.img_backbone(imgs.flatten(0, 1) if imgs.dim() == 5 else imgs)
                loss = f1.mean() + f2.mean() + sum(f.mean() for f in img)
            else:
                losses = model(**data, mode='loss')
                loss = sum(v for k, v in losses.items() if k.startswith('loss'))
            optim.update_params(loss)
            total += time.perf_counter() - t0
        return total

    full_step(batches[0])  # warm-up (allocations, spconv tables)
    model_steps(True)
    rows = dict(samples_per_s=[], step_over_bare=[], pipeline_ms_per_frame=[], pipeline_cpu_ms_per_frame=[],
                peak_rss_mib=[])
    for r in range(args.repeats):
        t = sum(full_step(b) for b in batches)
        rows['samples_per_s'].append(len(batches) * bs / t)
        bare = model_steps(True)
        ours = model_steps(False)
        rows['step_over_bare'].append(ours / bare)
        wall, cpu = pipeline_ms()
        rows['pipeline_ms_per_frame'].append(wall)
        rows['pipeline_cpu_ms_per_frame'].append(cpu)
        rows['peak_rss_mib'].append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print_log(f'repeat {r}: ' + ', '.join(f'{k} {v[-1]:.3f}' for k, v in rows.items()), 'current')
    pts = [len(dataset[i]['inputs']['points']) for i in range(min(n_frames, 4))]
    raw_pts = []  # points of the scan file (before range filtering)
    for i in range(min(n_frames, 4)):
        info = dataset.get_data_info(i)
        path = info['lidar_points']['lidar_path']
        raw_pts.append(int(np.fromfile(path, dtype=np.float32).size // info['lidar_points'].get('num_pts_feats', 5)))
    res = transfer.make_results(
        'throughput', list(range(args.repeats)), rows, split='train',
        units=dict(samples_per_s='samples/s', step_over_bare='x', pipeline_ms_per_frame='ms',
                   pipeline_cpu_ms_per_frame='ms', peak_rss_mib='MiB'),
        repeats_are='timing repeats (the "seeds" field lists repeat indices)', batch_size=bs,
        steps_per_repeat=args.steps, points_per_scan=int(np.mean(pts)), points_per_scan_file=int(np.mean(raw_pts)),
        pipeline_breakdown_cpu_ms=breakdown, threads=torch.get_num_threads(),
        cameras=int(len(dataset[0]['data_samples'].metainfo.get('cam_names', ['CAM2']))),
        config=args.config, machine=f'{os.cpu_count()} cores, CPU, OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS")}')
    transfer.write_results(osp.join(ROOT, args.out), res)
    for k, v in rows.items():
        s = transfer.summarize(v)
        print(f'{k}: {s["mean"]:.3f} +- {s["std"]:.3f} (min {s["min"]:.3f}, max {s["max"]:.3f})')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
