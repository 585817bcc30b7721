"""Acceptance: CrossPoint pretraining on the embedded objects beats the same encoder with random weights on the
linear-SVM probe of the held-out split by >= 15 points, within a few minutes of CPU training through the runner.

Recipe: configs/crosspoint/crosspoint_dgcnn_1xb16-3e_synthetic-objects.py (60 iterations). Probe: the config's val
loop (SplitConcatDataset of the labelled train/test objects under a fixed random draw of CrossPoint's augmentation).
Asserted: CrossPoint's protocol, SVC(C=0.1) on raw features (``svm/accuracy``), >= 15 points above random weights.
Raw-feature SVMs also reward a better feature *scale* (random DGCNN features are tiny: scaled by 100 they probe
much better), so the same SVM on standardised features (``svm_std/accuracy``) must improve too (>= 3 points), which
only better separability gives. All numbers are printed and written to ``<tmp>/crosspoint_acceptance.json``.

The margins hold across seeds and thread counts, not one run's numbers (``MMXMODAL_TEST_SEED`` = data and training
seed, see ``tests/seeds.py``). Measured 2026-11-23 (seeds 0/1/2, 1 and 2 threads; raw gain, standardised gain):
1 thread +49.2/+15.0, +45.0/+7.9, +48.3/+10.8; 2 threads +47.9/+13.3, +45.0/+8.3, +48.3/+10.8. The
bounds (15 and 3 points) sit well below the smallest gain seen (45.0 and 7.9).
"""
import json
import os.path as osp
import time
import warnings

import pytest

from tests.seeds import acceptance_seed

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/crosspoint/crosspoint_dgcnn_1xb16-3e_synthetic-objects.py')
SEED = acceptance_seed()
DATA_KW = dict(num_objects=320, seed=SEED, num_views=4, image_size=64, num_points=1024, cls_train_per_class=20,
               cls_test_per_class=20, scanobjectnn=False)


def _cfg(data_root: str, work_dir: str):
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.data_root = data_root
    for d in cfg.val_dataloader.dataset.datasets:
        d.data_root = osp.join(data_root, 'modelnet40_ply_hdf5_2048')
    cfg.test_dataloader = cfg.val_dataloader
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=SEED)
    cfg.log_level = 'WARNING'
    return cfg


@pytest.mark.slow
def test_crosspoint_pretraining_beats_random_weights_on_linear_svm(tmp_path):
    import torch
    from mmengine.runner import Runner

    from mmxmodal_bench.synthetic.objects import generate_objects
    data_root = str(tmp_path / 'objects')
    generate_objects(data_root, workers=2, **DATA_KW)

    # the same encoder with random weights (the runner seeds before building: same initial weights as training)
    random_runner = Runner.from_cfg(_cfg(data_root, str(tmp_path / 'random')))
    init_sd = {k: v.clone() for k, v in random_runner.model.point_encoder.state_dict().items()}
    random_metrics = random_runner.val()

    runner = Runner.from_cfg(_cfg(data_root, str(tmp_path / 'train')))
    for k, v in runner.model.point_encoder.state_dict().items():
        assert torch.equal(v, init_sd[k]), k
    t0, c0 = time.time(), time.process_time()
    runner.train()
    train_wall, train_cpu = time.time() - t0, time.process_time() - c0
    hub = runner.message_hub
    trained = {k: hub.get_scalar(f'val/{k}').current() for k in ('svm/accuracy', 'svm_std/accuracy')}
    assert runner.iter == 60

    record = dict(seed=SEED, threads=torch.get_num_threads(), config=osp.relpath(CONFIG, ROOT), data=DATA_KW,
                  iterations=runner.iter,
                  train_wall_s=round(train_wall, 1), train_process_cpu_s=round(train_cpu, 1),
                  random=dict(svm=random_metrics['svm/accuracy'], svm_std=random_metrics['svm_std/accuracy']),
                  pretrained=dict(svm=trained['svm/accuracy'], svm_std=trained['svm_std/accuracy']))
    with open(tmp_path / 'crosspoint_acceptance.json', 'w') as f:
        json.dump(record, f, indent=2)
    print('\nCrossPoint acceptance:', json.dumps(record))
    if train_wall > 600:
        warnings.warn(f'CrossPoint pretraining took {train_wall:.0f} s wall (> 600 s): machine loaded?')
    assert trained['svm/accuracy'] >= random_metrics['svm/accuracy'] + 15.0, record
    assert trained['svm_std/accuracy'] >= random_metrics['svm_std/accuracy'] + 3.0, record
