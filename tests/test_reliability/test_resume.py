"""Kill a pretraining run mid-epoch and ``--resume``: the loss curve after the resume equals the uninterrupted run's.

Protocol (CPU, ``randomness=dict(seed=0, deterministic=True)``, tiny models and data, a few iterations):

* ``IterBasedTrainLoop`` with ``CheckpointHook(interval=2, by_epoch=False)``: mmengine resumes mid-epoch only with
  iteration-based loops (an ``EpochBasedTrainLoop`` restarts the interrupted epoch). The data set is smaller than
  the schedule, so the resumed part also crosses an epoch boundary (new sampler epoch / shuffle).
* run A: the full schedule, uninterrupted; run B: the same config, "killed" by an exception raised at the start of
  iteration ``KILL`` (after the checkpoint ``iter_KILL.pth`` was written, while the next batch was already
  fetched); run C: run B's config resumed from that checkpoint (``resume=True``, ``load_from``), i.e.
  ``tools/train.py --resume``. The learning-rate schedule (cosine over the full ``max_iters``) is the same in all.
  The tests run with one intra-op thread (several times faster for tiny models on shared cores).
* Compared per iteration (a recording hook writes every loss term and the learning rate): B == A before the kill,
  C == A after it, to 1e-6; and the final checkpoints of A and C hold the same weights, optimizer state and - for
  Cross-MoST - the same EMA teacher (``ema_state_dict``, with its step counter) and pseudo-label statistics.
* CrossPoint runs with ``num_workers=0`` (pipeline randomness in the main process), Cross-MoST with ``num_workers=1``
  (in a worker): :class:`~mmxmodal.engine.hooks.RNGStateHook` makes both exact.
"""
import json
import os.path as osp

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmxmodal  # noqa: F401
from mmdet3d.registry import HOOKS, METRICS
from mmxmodal.utils.checkpoint import safe_load

TOL = 1e-6


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on 2 shared cores: one intra-op thread is several times faster (and the runs compared here
    share the setting, so the comparison is unaffected)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class _Killed(RuntimeError):
    pass


@HOOKS.register_module(name='_ReliabilityLossRecorder', force=True)
class _LossRecorder(Hook):
    """Append ``{iter, lr, <every loss term>}`` to a JSON-lines file after every training iteration."""

    priority = 'LOWEST'

    def __init__(self, path: str) -> None:
        self.path = path

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        row = dict(iter=runner.iter, lr=runner.optim_wrapper.get_lr()['lr'][0])
        row.update({k: float(torch.as_tensor(v).detach()) for k, v in (outputs or {}).items()})
        with open(self.path, 'a') as f:
            f.write(json.dumps(row) + '\n')


@HOOKS.register_module(name='_ReliabilityKillAt', force=True)
class _KillAt(Hook):
    """Simulate a crash at the start of iteration ``at`` (the batch of that iteration is already fetched)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            raise _Killed(f'killed at iteration {self.at}')


def _records(path):
    with open(path) as f:
        return {r['iter']: r for r in map(json.loads, f)}


def _runtime(work_dir, record, max_iters, custom_hooks, kill_at=None, rng_hook=True):
    hooks = list(custom_hooks) + [dict(type='SkippedSamplesHook'), dict(type='_ReliabilityLossRecorder', path=record)]
    if rng_hook:
        hooks.append(dict(type='RNGStateHook'))
    if kill_at is not None:
        hooks.append(dict(type='_ReliabilityKillAt', at=kill_at))
    return dict(
        default_scope='mmdet3d',
        work_dir=work_dir,
        experiment_name=f'resume_{work_dir}',  # own message hub / visualizer even when started in the same second
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01)),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-5, by_epoch=False, begin=0,
                              end=max_iters)],
        default_hooks=dict(timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=1),
                           param_scheduler=dict(type='ParamSchedulerHook'),
                           checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False, max_keep_ckpts=-1),
                           sampler_seed=dict(type='DistSamplerSeedHook')),
        custom_hooks=hooks + [dict(type='PlainCheckpointHook')],  # as tools/train.py adds (weights-only resume)
        log_processor=dict(type='LogProcessor', window_size=1, by_epoch=False),
        env_cfg=dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
                     dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0, deterministic=True),
        log_level='WARNING',
        launcher='none')


def _run_killed_and_resumed(tmp_path, make_cfg, kill_at, kill=True):
    """Runs A (uninterrupted), B (killed at ``kill_at``), C (B resumed); returns their per-iteration records.

    ``kill=False`` skips B and resumes from A's checkpoint of iteration ``kill_at`` (the file a killed run leaves
    is the one the uninterrupted run wrote at that point: it is written before the next iteration starts)."""
    # A: uninterrupted
    rec_a = str(tmp_path / 'a.jsonl')
    Runner(**make_cfg(str(tmp_path / 'a'), rec_a, None)).train()
    rec_b = str(tmp_path / 'b.jsonl')
    if kill:  # B: killed at the start of iteration kill_at
        runner_b = Runner(**make_cfg(str(tmp_path / 'b'), rec_b, kill_at))
        with pytest.raises(_Killed):
            runner_b.train()
        ckpt = osp.join(str(tmp_path / 'b'), f'iter_{kill_at}.pth')
        assert osp.isfile(ckpt) and not osp.exists(osp.join(str(tmp_path / 'b'), f'iter_{kill_at + 2}.pth'))
        del runner_b
    else:
        ckpt = osp.join(str(tmp_path / 'a'), f'iter_{kill_at}.pth')
        with open(rec_a) as f, open(rec_b, 'w') as g:
            g.writelines(ln for ln in f if json.loads(ln)['iter'] < kill_at)
    # C: --resume from B's checkpoint, same config without the kill
    rec_c = str(tmp_path / 'c.jsonl')
    cfg_c = make_cfg(str(tmp_path / 'c'), rec_c, None)
    cfg_c.update(resume=True, load_from=ckpt)
    Runner(**cfg_c).train()
    return _records(rec_a), _records(rec_b), _records(rec_c)


def _check_resume_exact(tmp_path, make_cfg, max_iters, kill_at, compare_ckpt_keys=('state_dict', )):
    a, b, c = _run_killed_and_resumed(tmp_path, make_cfg, kill_at)
    assert sorted(a) == list(range(max_iters)) and sorted(b) == list(range(kill_at))
    assert sorted(c) == list(range(kill_at, max_iters))
    terms = [k for k in a[0] if k != 'iter']
    assert any(k.startswith('loss') for k in terms)
    for it in range(max_iters):
        other = b[it] if it < kill_at else c[it]
        for k in terms:
            assert other[k] == pytest.approx(a[it][k], abs=TOL, rel=TOL), (it, k, other[k], a[it][k])
    # the resumed part is not trivially equal to the first part (the run does learn / the lr does change)
    assert a[kill_at]['lr'] != a[0]['lr'] and a[max_iters - 1]['loss'] != a[kill_at]['loss']
    # final states
    fa = safe_load(osp.join(str(tmp_path / 'a'), f'iter_{max_iters}.pth'))
    fc = safe_load(osp.join(str(tmp_path / 'c'), f'iter_{max_iters}.pth'))
    for key in compare_ckpt_keys:
        assert fa[key].keys() == fc[key].keys(), key
        for name, v in fa[key].items():
            assert torch.allclose(v.float(), fc[key][name].float(), atol=TOL, rtol=TOL), (key, name)
    sa, sc = fa['optimizer']['state'], fc['optimizer']['state']
    for p in sa:
        for k in sa[p]:
            assert torch.allclose(torch.as_tensor(sa[p][k]).float(), torch.as_tensor(sc[p][k]).float(), atol=TOL)
    return fa, fc


# ------------------------------------------------------------------------------------------------------ CrossPoint
@pytest.fixture(scope='module')
def object_root(tmp_path_factory):
    from mmxmodal_bench.synthetic.objects import generate_objects
    root = str(tmp_path_factory.mktemp('resume_objects'))
    generate_objects(root, num_objects=12, seed=0, num_views=2, image_size=32, num_points=256, cls_train_per_class=1,
                     cls_test_per_class=1, scanobjectnn=False, workers=1)
    return root


def _crosspoint_cfg(root):

    def make(work_dir, record, kill_at):
        cfg = _runtime(work_dir, record, 8, [], kill_at=kill_at)
        cfg['model'] = dict(
            type='CrossPoint',
            data_preprocessor=dict(type='ObjectDataPreprocessor', mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375]),
            point_encoder=dict(type='PointNetEncoder', in_channels=3, mlp_channels=(16, 16, 16, 32), emb_dims=32),
            img_backbone=dict(type='mmdet.ResNet', depth=18, base_channels=8, num_stages=4, out_indices=(3, ),
                              norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch'),
            point_head=dict(type='ProjectionHead', in_channels=32, hidden_channels=32, out_channels=16),
            img_head=dict(type='ProjectionHead', in_channels=64, hidden_channels=32, out_channels=16, bias=False),
            loss_intra=dict(type='NTXentLoss', temperature=0.1, gather_distributed=True),
            loss_cross=dict(type='NTXentLoss', temperature=0.1, gather_distributed=True))
        pipeline = [
            dict(type='LoadObjectPoints', num_points=128),
            dict(type='LoadRenderedImage', choice='random'),
            dict(type='ObjectPointViews', num_views=2, normalize=True, scale_range=(0.5, 2.0),
                 rot_range=(0.0, 6.283185307179586), up_axis=1, translate_range=0.5, translate_mode='extent',
                 jitter_std=0.01, jitter_clip=0.05, dropout_max_ratio=0.875),
            dict(type='mmdet.Resize', scale=(32, 32), keep_ratio=False),
            dict(type='RandomColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
            dict(type='mmdet.RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PackObjectInputs', keys=['points', 'img']),
        ]
        cfg['train_dataloader'] = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(type='ShapeNetRenderDataset', data_root=root, pipeline=pipeline, on_error='skip'))
        return cfg

    return make


def test_crosspoint_resume_is_exact(tmp_path, object_root):
    # 12 objects / batch 2 = 6 iterations per epoch; killed at 4, resumed across the epoch boundary at 6
    _check_resume_exact(tmp_path, _crosspoint_cfg(object_root), max_iters=8, kill_at=4)


# ------------------------------------------------------------------------------------------------------ Cross-MoST
@pytest.fixture(scope='module')
def clip_dir(tmp_path_factory):
    from mmxmodal.models.clip_utils import make_tiny_clip
    return make_tiny_clip(str(tmp_path_factory.mktemp('resume_clip')), seed=0)['local_dir']


def _crossmost_cfg(root, clip_dir):
    data_root = osp.join(root, 'modelnet40_ply_hdf5_2048')
    with open(osp.join(data_root, 'shape_names.txt')) as f:
        names = tuple(ln.strip() for ln in f if ln.strip())

    def make(work_dir, record, kill_at):
        hooks = [dict(type='EMATeacherHook', decay_start=0.5, decay_end=0.9, ramp_iters=4, update_buffers=True),
                 dict(type='PseudoLabelMonitorHook')]
        cfg = _runtime(work_dir, record, 6, hooks, kill_at=kill_at)
        cfg['model'] = dict(
            type='CrossMoST',
            data_preprocessor=dict(type='ObjectDataPreprocessor', mean=(0., 0., 0.), std=(255., 255., 255.)),
            img_encoder=dict(type='CLIPViTEncoder', local_dir=clip_dir, image_size=32),
            point_encoder=dict(type='DGCNNEncoder', k=8, edge_channels=(16, 16, 16, 16), emb_dims=32),
            classifier=dict(type='PrototypeClassifier', num_classes=len(names), in_channels=64, logit_scale=30.0,
                            learnable_scale=False),
            embed_dim=64, class_names=names, classifier_init='none',
            pseudo_label=dict(mode='joint', threshold=0.1, point_weight=1.0),
            loss_pl=dict(type='PseudoLabelCELoss', loss_weight=1.0),
            loss_fair=dict(type='FairnessLoss', loss_weight=1.0),
            loss_align=dict(type='CrossModalAlignmentLoss', temperature=0.1, gather_distributed=True),
            loss_mim=dict(type='MaskedImageModelingLoss', loss_weight=0.5),
            loss_mpm=dict(type='MaskedPointModelingLoss', loss_weight=0.5),
            img_mask_ratio=0.25, pts_mask_ratio=0.25, mpm_groups=(8, 8))
        weak_pts = dict(type='ObjectPointAugment', normalize=True, scale_range=(0.9, 1.1), rot_range=None,
                        translate_range=0.0, jitter_std=0.005, jitter_clip=0.02, dropout_max_ratio=0.0)
        strong_pts = dict(type='ObjectPointAugment', normalize=True, scale_range=(0.8, 1.25), rot_range=(-0.25, 0.25),
                          translate_range=0.1, jitter_std=0.01, jitter_clip=0.05, dropout_max_ratio=0.3)
        pipeline = [
            dict(type='LoadObjectPoints', num_points=64),
            dict(type='LoadRenderedImage', choice='random'),
            dict(type='WeakStrongViews',
                 weak=[dict(type='RandomResizedCropFlip', size=32, scale=(0.8, 1.0), flip_prob=0.5), weak_pts],
                 strong=[dict(type='RandomResizedCropFlip', size=32, scale=(0.4, 1.0), flip_prob=0.5),
                         dict(type='ObjectRandAugment', num_ops=2, magnitude=9), strong_pts,
                         dict(type='RandomPointCrop', ratio=(0.7, 1.0), prob=0.5)]),
            dict(type='PackObjectInputs', keys=('points', 'img')),
        ]
        cfg['train_dataloader'] = dict(
            batch_size=3, num_workers=1, persistent_workers=False, drop_last=True,
            sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='pseudo_collate'),
            dataset=dict(type='ModelNet40Dataset', data_root=data_root, split='train', views_dir='../modelnet40_views',
                         pipeline=pipeline, on_error='skip'))
        return cfg

    return make


def test_crossmost_resume_is_exact_including_the_ema_teacher(tmp_path, object_root, clip_dir):
    # 12 rows / batch 3 = 4 iterations per epoch; killed at 2, resumed across the epoch boundary at 4
    fa, fc = _check_resume_exact(tmp_path, _crossmost_cfg(object_root, clip_dir), max_iters=6, kill_at=2,
                                 compare_ckpt_keys=('state_dict', 'ema_state_dict'))
    assert int(fa['ema_state_dict']['steps']) == int(fc['ema_state_dict']['steps']) == 6
    assert fa['pseudo_label_epoch_stats'] == pytest.approx(fc['pseudo_label_epoch_stats'])
    assert fa['pseudo_label_epoch_stats']['num'] == 18.0  # 6 iterations x 3 samples, resumed totals included
    assert len(fa['rng_state']['states']) == 1
    assert fa['skipped_samples'] == fc['skipped_samples'] == dict(total=0, seen=18)  # counters resumed too


# ------------------------------------------------------------------------------------------------------ control
class _NoisyPoints(torch.utils.data.Dataset):
    """Pipeline randomness from numpy's global generator (as the real transforms)."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        import numpy as np
        from mmengine.structures import BaseDataElement
        x = torch.full((3, ), float(i)) + torch.from_numpy(np.random.normal(size=3).astype('float32'))
        return dict(inputs=x, data_samples=BaseDataElement(metainfo=dict(sample_idx=i)))


def _toy_cfg(rng_hook, with_val):
    from mmengine.model import BaseModel

    class _Toy(BaseModel):
        """Model randomness from torch's generator (as masks / sampled pairs / dropout)."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def forward(self, inputs, data_samples=None, mode='loss'):
            x = torch.stack(inputs)
            noise = torch.rand_like(x)  # consumed in training *and* validation
            if mode == 'loss':
                return dict(loss=((x + noise) * self.w).pow(2).mean())
            return [dict(v=float((x * self.w).sum()))]

    def make(work_dir, record, kill_at):
        cfg = _runtime(work_dir, record, 7, [], kill_at=kill_at, rng_hook=rng_hook)
        cfg['model'] = _Toy()
        loader = dict(dataset=_NoisyPoints(), sampler=dict(type='DefaultSampler', shuffle=True), batch_size=3,
                      num_workers=0, collate_fn=dict(type='pseudo_collate'))
        cfg['train_dataloader'] = loader
        if with_val:
            cfg['train_cfg']['val_interval'] = 2  # right after the checkpoints: between save and resume point
            cfg.update(val_dataloader=dict(loader, sampler=dict(type='DefaultSampler', shuffle=False)),
                       val_cfg=dict(type='ValLoop'), val_evaluator=dict(type='_ReliabilityNullMetric'))
        return cfg

    return make


@METRICS.register_module(name='_ReliabilityNullMetric', force=True)
class _NullMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.append(0.0)

    def compute_metrics(self, results):
        return dict(null=0.0)


@pytest.mark.parametrize('with_val', [False, True])
def test_rng_hook_makes_resume_exact_and_validation_neutral(tmp_path, with_val):
    """Toy run whose data (numpy) and model (torch) draw random numbers, killed at 4 of 7 (with_val: validation,
    which also draws, every 2 iterations, i.e. between each checkpoint and the next iteration): exact with
    RNGStateHook; without it the resumed losses differ (so the protocol does detect inexact resumes)."""
    a, b, c = _run_killed_and_resumed(tmp_path / 'with', _toy_cfg(True, with_val), kill_at=4)
    for it in range(7):
        assert (b if it < 4 else c)[it]['loss'] == pytest.approx(a[it]['loss'], abs=TOL, rel=TOL), it
    a, b, c = _run_killed_and_resumed(tmp_path / 'without', _toy_cfg(False, with_val), kill_at=4)
    assert any(abs(c[it]['loss'] - a[it]['loss']) > 1e-4 for it in range(4, 7))


# ------------------------------------------------------------------------------------------------------ SimIPU
def _simipu_cfg(scene_root, ann_file):
    from tests.test_reliability.data import CAMS, PREFIX
    pcr = [-25.6, -25.6, -5.0, 25.6, 25.6, 3.0]
    voxel = [0.8, 0.8, 0.2]  # grid 64 x 64 x 40 -> sparse_shape [41, 64, 64]

    def make(work_dir, record, kill_at):
        cfg = _runtime(work_dir, record, 5, [], kill_at=kill_at)
        cfg['model'] = dict(
            type='SimIPU',
            data_preprocessor=dict(type='PairedSceneDataPreprocessor', voxel=True,
                                   voxel_layer=dict(max_num_points=5, voxel_size=voxel, point_cloud_range=pcr,
                                                    max_voxels=(4000, 4000)),
                                   mean=[103.53, 116.28, 123.675], std=[1., 1., 1.], bgr_to_rgb=False,
                                   pad_size_divisor=32),
            img_backbone=dict(type='mmdet.ResNet', depth=18, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                              frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                              style='caffe'),
            img_feat_levels=(0, 1, 2, 3), img_feat_channels=(8, 16, 32, 64),
            pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
            pts_middle_encoder=dict(
                type='SparseEncoder', in_channels=5, sparse_shape=[41, 64, 64], output_channels=16, base_channels=8,
                order=('conv', 'norm', 'act'), encoder_channels=((8, 8, 16), (16, 16, 16), (16, 16, 16), (16, 16)),
                encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)), block_type='basicblock'),
            sparse_point_sources=('conv_input', 'encoder_layer1', 'bev'),
            point_proj=dict(type='ContrastProjectionHead', hidden_channels=(16, ), out_channels=8),
            loss_intra=dict(type='SampledInfoNCELoss', max_pairs=64, gather_distributed=True),
            loss_inter=dict(type='SampledInfoNCELoss', max_pairs=64, gather_distributed=True),
            max_pairs_intra=64, max_pairs_inter=64)
        pipeline = [
            dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
            dict(type='ValidatePoints', check_finite=True, min_points=1, stage='as loaded'),
            dict(type='PointsRangeFilter', point_cloud_range=pcr),
            dict(type='ValidatePoints', check_finite=False, min_points=1, stage='after PointsRangeFilter'),
            dict(type='PointShuffle'),
            dict(type='LoadMultiViewImageFromFiles', to_float32=False, num_views=len(CAMS)),
            dict(type='MultiViewImageAug', final_shape=(32, 64), scale_range=(1.0, 1.2), crop_mode='random',
                 flip_ratio=0.5, pad_size_divisor=32),
            dict(type='ProjectPointsToCameras', min_depth=0.5, time_dim=4),
            dict(type='GlobalTwoViews', rot_range=(-1.5707963, 1.5707963), scale_range=(0.75, 1.25), flip_ratio=0.5),
            dict(type='PackPairedSceneInputs'),
        ]
        cfg['train_dataloader'] = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='pseudo_collate'),
            dataset=dict(type='PairedSceneDataset', data_root=scene_root, ann_file=ann_file, data_prefix=PREFIX,
                         cam_names=list(CAMS), pipeline=pipeline, on_error='skip'))
        return cfg

    return make


def test_simipu_resume_is_exact(tmp_path):
    from tests.test_reliability.data import make_scene_root
    scenes = make_scene_root(str(tmp_path / 'scenes'), num_samples=6)
    # 6 scans / batch 2 = 3 iterations per epoch; resumed at 2, across the epoch boundary at 3
    _check_resume_exact(tmp_path, _simipu_cfg(scenes['root'], scenes['ann_file']), max_iters=5, kill_at=2)
