"""Issue 12, fast checks (seconds): camera validation, all point columns, the NaN guard's BatchNorm restore, atomic
checkpoints and the shard check in-process, and that every shipped config uses them. The same faults run through
the tools in ``test_tool_faults.py`` and ``test_checkpoint_faults.py``."""
import glob
import os.path as osp
import pickle
import re

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

import mmxmodal  # noqa: F401
from mmxmodal.datasets.robust import check_camera_calibration
from tests.test_reliability.data import K, LIDAR2CAM, make_scene_root, scene_dataset, scene_points
from tests.test_reliability.tools import ROOT

WHERE = 'sample t: camera CAM_FRONT (x.jpg)'


def _k4(k=K):
    out = np.eye(4)
    out[:3, :3] = k
    return out


# ------------------------------------------------------------------------------------------------------ calibration
def test_rigid_calibration_passes():
    check_camera_calibration(_k4(), np.array(LIDAR2CAM['CAM_FRONT']), WHERE)
    nus_like = np.array(LIDAR2CAM['CAM_BACK'])
    nus_like[:3, 3] = [0.01, -0.3, -1.5]
    check_camera_calibration(_k4(), nus_like, WHERE)


@pytest.mark.parametrize('case, pattern', [
    ('scaled', r'lidar2cam is not rigid: its rotation part is not orthonormal .*scale ~1\.5'),
    ('reflection', r'lidar2cam is not rigid: its rotation is a reflection'),
    ('millimetres', r'lidar2cam translates by 1868 .*expected at most 20.0 m .*millimetres'),
    ('last_row', r'lidar2cam has last row'),
    ('negative_focal', r'cam2img is not a well-formed intrinsic matrix'),
    ('skewed_rows', r'cam2img is not a well-formed intrinsic matrix'),
])
def test_bad_calibration_is_named(case, pattern):
    m, k = np.array(LIDAR2CAM['CAM_FRONT'], float), np.array(K, float)
    if case == 'scaled':
        m[:3, :3] *= 1.5
    elif case == 'reflection':
        m[0, :3] *= -1
    elif case == 'millimetres':
        m[:3, 3] = [0.0, 500.0, 1800.0]
    elif case == 'last_row':
        m[3] = [0.0, 0.0, 1.0, 1.0]
    elif case == 'negative_focal':
        k[1, 1] = -40.0
    else:
        k[2] = [0.1, 0.0, 1.0]
    with pytest.raises(ValueError, match=pattern) as e:
        check_camera_calibration(_k4(k), m, WHERE)
    assert WHERE in str(e.value)


def test_dataset_drops_non_rigid_info_naming_camera_and_file(tmp_path):
    scenes = make_scene_root(str(tmp_path / 's'), num_samples=3)
    infos = scenes['infos']
    m = np.array(infos['data_list'][1]['images']['CAM_BACK']['lidar2cam'], float)
    m[:3, 3] = [0, 500, 1800]
    infos['data_list'][1]['images']['CAM_BACK']['lidar2cam'] = m.tolist()
    with open(scenes['ann_file'], 'wb') as f:
        pickle.dump(infos, f)
    with pytest.raises(ValueError) as e:
        scene_dataset(scenes['root'], scenes['ann_file'])
    msg = str(e.value)
    assert 'token0001' in msg and 'camera CAM_BACK' in msg and osp.basename(scenes['images'][1]['CAM_BACK']) in msg
    ds = scene_dataset(scenes['root'], scenes['ann_file'], on_error='skip')
    assert len(ds) == 2 and ds.num_skipped_infos == 1


# ------------------------------------------------------------------------------------------------------ images
@pytest.fixture
def scenes(tmp_path):
    return make_scene_root(str(tmp_path / 'scenes'), num_samples=3)


def _validated_pipeline():
    from tests.test_reliability.data import scene_pipeline
    p = scene_pipeline()
    i = [k for k, t in enumerate(p) if t['type'] == 'LoadMultiViewImageFromFiles'][0]
    return p[:i] + [dict(type='ValidateImages')] + p[i:]


def test_truncated_jpeg_is_named(scenes):
    path = scenes['images'][0]['CAM_BACK']
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) * 2 // 3])
    ds = scene_dataset(scenes['root'], scenes['ann_file'], pipeline=_validated_pipeline())
    name = re.escape(osp.basename(path))
    with pytest.raises(ValueError, match=rf'camera CAM_BACK: image .*{name}: JPEG file is truncated'):
        ds[0]
    ds[1]  # the others load


def test_grayscale_image_names_its_own_file(scenes):
    import cv2
    path = scenes['images'][1]['CAM_BACK']
    cv2.imwrite(path, np.full((48, 64), 100, np.uint8))
    ds = scene_dataset(scenes['root'], scenes['ann_file'], pipeline=_validated_pipeline())
    with pytest.raises(ValueError) as e:
        ds[1]
    assert f'camera CAM_BACK: image {path}: 1 channel(s), expected 3' in str(e.value)
    # without ValidateImages the loader's error still names the right camera's file (file check)
    ds = scene_dataset(scenes['root'], scenes['ann_file'])
    with pytest.raises(Exception) as e:
        ds[1]
    assert f'image {path} (camera CAM_BACK) has 1 channel(s)' in str(e.value)


def test_image_size_must_match_the_calibration(scenes):
    import cv2
    path = scenes['images'][2]['CAM_FRONT']
    cv2.imwrite(path, np.full((24, 32, 3), 100, np.uint8))  # half size: the principal point falls off the image
    ds = scene_dataset(scenes['root'], scenes['ann_file'], pipeline=_validated_pipeline())
    name = re.escape(osp.basename(path))
    with pytest.raises(ValueError, match=rf'camera CAM_FRONT: image .*{name}: image size 32x24 \(WxH\) '
                       r'does not match the calibration'):
        ds[2]


def test_nan_in_a_feature_column_is_named(scenes):
    pts = scene_points(np.random.default_rng(2))
    pts[:, 3] = np.nan
    pts.tofile(scenes['lidar'][0])
    ds = scene_dataset(scenes['root'], scenes['ann_file'])
    name = re.escape(osp.basename(scenes['lidar'][0]))
    with pytest.raises(ValueError, match=rf'{name}.*400 of 400 points have NaN/Inf '
                       r'values in columns \[3\]'):
        ds[0]


def test_truncated_png_render_is_named(tmp_path):
    from mmxmodal.datasets.transforms.loading import load_rgb_image
    import cv2
    path = str(tmp_path / 'r.png')
    cv2.imwrite(path, np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:-20])
    with pytest.raises(ValueError, match='r.png: .*(PNG file is truncated|cannot decode)'):
        load_rgb_image(path)


# ------------------------------------------------------------------------------------------------------ runner
class _Data(Dataset):

    def __init__(self, n=8, bad=None):
        self.n, self.bad = n, bad

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = torch.full((4, ), float(i) + 1.0)
        if i == self.bad:
            x[1] = float('nan')
        return dict(inputs=x, data_samples=BaseDataElement(metainfo=dict(sample_idx=i)))


class _BNToy(BaseModel):

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.bn = torch.nn.BatchNorm1d(4)

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=self.bn(self.lin(torch.stack(inputs))).pow(2).mean())


def _runner(work_dir, dataset, hooks=(), checkpoint=None, batch_size=2, max_epochs=1, **kw):
    return Runner(
        model=_BNToy(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=dataset, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=batch_size, collate_fn=dict(type='pseudo_collate'), num_workers=0, **kw),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)), train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        # PlainCheckpointHook (added by tools/train.py) keeps the checkpoints loadable weights-only
        custom_hooks=[*hooks, dict(type='PlainCheckpointHook')], default_scope='mmdet3d', log_level='WARNING',
        default_hooks=dict(checkpoint=checkpoint, logger=dict(type='LoggerHook', interval=1)),
        experiment_name=f'issue12_{osp.basename(str(work_dir))}_{id(dataset)}')


def test_skipped_step_restores_batchnorm_statistics(tmp_path):
    runner = _runner(tmp_path / 'w', _Data(bad=5), hooks=[dict(type='NaNGuardHook', action='skip')],
                     checkpoint=dict(type='AtomicCheckpointHook', interval=1))
    runner.train()
    hook = [h for h in runner.hooks if type(h).__name__ == 'NaNGuardHook'][0]
    assert hook.skipped == 1
    bn = runner.model.bn
    assert torch.isfinite(bn.running_mean).all() and torch.isfinite(bn.running_var).all()
    assert int(bn.num_batches_tracked) == 3  # 4 steps, the skipped one left no trace
    from mmxmodal.engine.hooks import nonfinite_tensors
    from mmxmodal.utils.checkpoint import safe_load
    assert nonfinite_tensors(safe_load(str(tmp_path / 'w' / 'epoch_1.pth'))) == []


def test_nonfinite_checkpoint_is_refused_and_the_previous_one_kept(tmp_path):
    work = tmp_path / 'w'
    runner = _runner(work, _Data(bad=5), checkpoint=dict(type='AtomicCheckpointHook', interval=1, by_epoch=False,
                                                         max_keep_ckpts=1))
    with pytest.raises(FloatingPointError, match=r'non-finite tensors: state_dict\.(lin|bn)\.'):
        runner.train()
    # iteration 3 (samples 4, 5) poisoned the weights: iter_3.pth is refused, iter_2.pth stays the last checkpoint
    assert sorted(glob.glob(str(work / '*.pth'))) == [str(work / 'iter_2.pth')] and not glob.glob(str(work / '.*'))
    assert open(work / 'last_checkpoint').read().strip().endswith('iter_2.pth')


def test_atomic_checkpoints_keep_the_newest_and_name_it(tmp_path):
    work = tmp_path / 'w'
    runner = _runner(work, _Data(), checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1),
                     max_epochs=3)
    runner.train()
    assert sorted(glob.glob(str(work / '*.pth'))) == [str(work / 'epoch_3.pth')]
    assert not glob.glob(str(work / '.*'))
    assert open(work / 'last_checkpoint').read().strip() == str(work / 'epoch_3.pth')
    from mmxmodal.utils.checkpoint import safe_load
    assert safe_load(str(work / 'epoch_3.pth'))['message_hub']['runtime_info']['ckpt_pending_removal'] == \
        [str(work / 'epoch_2.pth')]


def test_shard_check_stops_a_run_with_zero_iterations(tmp_path):
    runner = _runner(tmp_path / 'w', _Data(n=3), hooks=[dict(type='ShardCheckHook')], batch_size=4, drop_last=True)
    with pytest.raises(RuntimeError, match=r'0 iterations per epoch .*rank 0: 3 samples, batch_size 4, '
                       r'drop_last=True -> 0 iterations'):
        runner.train()


# ------------------------------------------------------------------------------------------------------ configs
SHIPPED = sorted(glob.glob(str(ROOT / 'configs' / '*' / '*.py')))


@pytest.mark.parametrize('path', SHIPPED, ids=lambda p: osp.basename(p))
def test_every_shipped_config_uses_the_atomic_checkpoint_and_shard_check(path):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook', path
    assert cfg.default_hooks.shard_check.type == 'ShardCheckHook', path
    loader = cfg.get('train_dataloader') or {}
    dataset = loader.get('dataset', {})
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    types = [t.get('type') for t in dataset.get('pipeline', []) if isinstance(t, dict)]
    if 'LoadMultiViewImageFromFiles' in types and dataset.get('type') == 'PairedSceneDataset':
        assert types.index('ValidateImages') == types.index('LoadMultiViewImageFromFiles') - 1, path
    if 'ValidatePoints' in types:
        first = [t for t in dataset['pipeline'] if t.get('type') == 'ValidatePoints'][0]
        assert first.get('check_finite', True) and first.get('check_dims') is None, path



def test_nonfinite_inputs_are_named():
    from mmxmodal.engine.hooks import nonfinite_inputs
    pts = [torch.zeros(5, 5), torch.zeros(5, 5)]
    pts[1][2, 3] = float('nan')
    inputs = dict(points=pts, img=torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    assert nonfinite_inputs(inputs) == ['inputs.points[1]']
    assert nonfinite_inputs(dict(points=[torch.zeros(3, 3)])) == []


def test_best_checkpoint_is_replaced_only_after_the_new_one_is_written(tmp_path):
    from mmengine.evaluator import BaseMetric
    from mmdet3d.registry import METRICS

    @METRICS.register_module(name='_Issue12EpochMetric', force=True)
    class _EpochMetric(BaseMetric):
        calls = 0

        def process(self, data_batch, data_samples):
            self.results.append(0)

        def compute_metrics(self, results):
            type(self).calls += 1
            return dict(acc=float(type(self).calls))  # better every epoch

    class _ValToy(_BNToy):

        def forward(self, inputs, data_samples=None, mode='loss'):
            if mode == 'loss':
                return super().forward(inputs, data_samples, mode)
            return list(data_samples)

    work = tmp_path / 'w'
    runner = Runner(
        model=_ValToy(), work_dir=str(work),
        train_dataloader=dict(dataset=_Data(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                              collate_fn=dict(type='pseudo_collate'), num_workers=0),
        val_dataloader=dict(dataset=_Data(n=2), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                            collate_fn=dict(type='pseudo_collate'), num_workers=0),
        val_evaluator=dict(type='_Issue12EpochMetric'), val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)), train_cfg=dict(by_epoch=True, max_epochs=3),
        default_scope='mmdet3d', log_level='WARNING', experiment_name=f'issue12_best_{id(tmp_path)}',
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1,
                                           save_best='acc', rule='greater')))
    runner.train()
    files = sorted(osp.basename(p) for p in glob.glob(str(work / '*.pth')) + glob.glob(str(work / '.*')))
    assert files == ['best_acc_epoch_3.pth', 'epoch_3.pth'], files
    assert open(work / 'last_checkpoint').read().strip() == str(work / 'epoch_3.pth')
    assert runner.message_hub.get_info('best_ckpt') == str(work / 'best_acc_epoch_3.pth')
