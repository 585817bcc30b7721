"""What the demo runs: its steps, configs, data sets and schedules (full and ``--quick``)."""

BUDGET_S = 15 * 60
STEPS = ('data', 'figures', 'simipu', 'finetune', 'crosspoint', 'probe', 'crossmost', 'transfer_crosspoint',
         'transfer_segmentation')

CONFIGS = dict(
    simipu='configs/simipu/simipu_r18-sparse_1xb2-2e_synthetic-nuscenes.py',
    finetune='configs/finetune/centerpoint_voxel0512_second_secfpn_1xb2-40e_synthetic-nuscenes-3d_simipu.py',
    crosspoint='configs/crosspoint/crosspoint_dgcnn_1xb16-3e_synthetic-objects.py',  # the acceptance recipe

)

# ----------------------------------------------------------------------------------------- data and schedules
# Data: the arguments of the configs' header comments, so that the configs also run as they are on these roots.
DATA = dict(
    full=dict(
        nuscenes=dict(dir='synthetic_nuscenes',
                      args=dict(num_scenes=4, samples_per_scene=10, sweeps=3, seed=0, workers=2)),
        objects=dict(dir='synthetic_objects',
                     args=dict(num_objects=320, num_points=1024, image_size=64, num_views=4, cls_train_per_class=20,
                               cls_test_per_class=20, seed=0, scanobjectnn=False)),
        crossmost=dict(dir='synthetic_objects_crossmost',
                       args=dict(num_objects=12, num_views=2, cls_train_per_class=40, cls_test_per_class=20,
                                 cls_views=4, image_size=64, num_points=1024, seed=0, scanobjectnn=False)),
    ),
    quick=dict(
        nuscenes=dict(dir='synthetic_nuscenes',
                      args=dict(num_scenes=4, samples_per_scene=2, sweeps=1, seed=0, image_size='320x180',
                                workers=2)),
        objects=dict(dir='synthetic_objects',
                     args=dict(num_objects=32, num_points=256, image_size=32, num_views=2, cls_train_per_class=3,
                               cls_test_per_class=3, seed=0, scanobjectnn=False)),
        crossmost=dict(dir='synthetic_objects_crossmost',
                       args=dict(num_objects=12, num_views=2, cls_train_per_class=4, cls_test_per_class=2,
                                 cls_views=2, image_size=32, num_points=256, seed=0, scanobjectnn=False)),
    ),
)

# Demo schedules (the configs' own are longer), chosen so that the demo fits 15 min on 2 CPU cores.
SCHEDULES = dict(
    full=dict(
        simipu=dict(epochs=2, samples=None),  # None: every train sample
        finetune=dict(epochs=40, label_ratio=0.1),
        crosspoint=dict(epochs=None, val_interval=1),  # None: the config's schedule; the probe every epoch
        crossmost=dict(warmup_epochs=None, epochs=None),  # None: tools/crossmost_synthetic_acceptance.py defaults
    ),
    quick=dict(
        simipu=dict(epochs=1, samples=2),
        finetune=dict(epochs=1, label_ratio=0.5),
        crosspoint=dict(epochs=1, val_interval=1),
        crossmost=dict(warmup_epochs=1, epochs=1),
    ),
)

# The embedded run of the one evaluation tool, tools/eval_transfer.py (issues 13 and 14): its tiny setting (a few
# iterations; the numbers check the pipeline, they are not results), written into the demo's work dir: 2 seeds, 1 in
# quick mode. Arguments after the method name, without --seeds / --out / --work-dir / --data-root (set by the step).
_TRANSFER_ARGS = dict(
    crosspoint=dict(
        data_dir='transfer_objects',
        args=['--classes', 'chair', 'stool', 'bench', 'sofa', '--num-objects', '16', '--cls-train-per-class', '5',
              '--val-per-class', '1', '--cls-test-per-class', '3', '--epochs', '1', '--ckpt-interval', '1',
              '--batch-size', '8', '--svm-c', '0.1', '1', '--fewshot', '2x2', '--fewshot-queries', '2',
              '--fewshot-runs', '2']),
    segmentation=dict(
        data_dir='transfer_semantickitti',
        args=['--generate', '--generate-args=--frames-per-sequence 2 --num-azimuths 128', '--pretrain-epochs', '1',
              '--lp-lrs', '0.01', '0.1', '--lp-steps', '5', '--lp-points', '5000', '--ft-epochs', '1',
              '--ft-options', 'train_dataloader.dataset.indices=[0,1]']),
)
TRANSFER = dict(full={k: dict(v, seeds=(0, 1)) for k, v in _TRANSFER_ARGS.items()},
                quick={k: dict(v, seeds=(0, )) for k, v in _TRANSFER_ARGS.items()})
