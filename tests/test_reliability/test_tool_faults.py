"""Issue 12 faults through the real tools on generated data: poisoned samples, non-finite values that reach the
forward pass, checkpoints with non-finite tensors, empty or short shards in distributed runs, and converter input.

* ``tools/train.py`` (the shipped SimIPU config cut to a tiny model, ``on_error='skip'``) on a scene root where one
  key frame has a NaN intensity column, one camera JPEG is cut short, one camera image is grayscale, one image has
  another size than its calibration, and three infos have a scaled rotation, a translation in millimetres and a
  negative focal length: every one is named in the log with its file / camera, skipped and counted, and the
  checkpoint is finite.
* With the point validation switched off, the NaN reaches the forward pass: ``NaNGuardHook`` skips the step and
  restores the BatchNorm statistics, so the checkpoint is finite; without the guard, ``AtomicCheckpointHook``
  refuses to write the checkpoint and names the tensors.
* ``tools/dist_train.sh CONFIG 2`` with a shard shorter than a batch (``drop_last``) or empty fails on every rank
  with a message, in bounded time; so does ``tools/train.py`` when the only process gets 0 iterations.
* ``tools/create_data.py nuscenes`` names the record of a zero quaternion.
"""
import glob
import json
import os.path as osp
import pickle
import re
import sys

import numpy as np
import pytest

import mmxmodal  # noqa: F401
from tests.test_reliability.data import make_scene_root, scene_points
from tests.test_reliability.tools import (crosspoint_config, free_port, logs, output, run, scalars, simipu_config,
                                          train)


def _nonfinite(ckpt_path):
    from mmxmodal.engine.hooks import nonfinite_tensors
    from mmxmodal.utils.checkpoint import safe_load
    return nonfinite_tensors(safe_load(ckpt_path)['state_dict'])


def _nan_intensity_root(root, num_samples=6):
    pts = scene_points(np.random.default_rng(5))
    pts[:, 3] = np.nan  # xyz finite: only the intensity column
    return make_scene_root(root, num_samples=num_samples, points={0: pts})


# ------------------------------------------------------------------------------------------------------ data faults
@pytest.mark.slow
def test_poisoned_samples_are_named_skipped_and_counted_by_train(tmp_path):
    import cv2
    scenes = make_scene_root(str(tmp_path / 'scenes'), num_samples=10)
    lidar, images, infos = scenes['lidar'], scenes['images'], scenes['infos']
    pts = np.fromfile(lidar[0], np.float32).reshape(-1, 5)
    pts[:, 3] = np.nan
    pts.tofile(lidar[0])
    jpg = images[1]['CAM_FRONT']
    data = open(jpg, 'rb').read()
    open(jpg, 'wb').write(data[:len(data) // 2])
    gray = images[2]['CAM_BACK']
    cv2.imwrite(gray, np.full((48, 64), 128, np.uint8))
    big = images[3]['CAM_FRONT']
    cv2.imwrite(big, np.full((96, 128, 3), 128, np.uint8))  # twice the size the calibration was made for
    dl = infos['data_list']
    rot = np.array(dl[4]['images']['CAM_FRONT']['lidar2cam'], float)
    rot[:3, :3] *= 1.5
    dl[4]['images']['CAM_FRONT']['lidar2cam'] = rot.tolist()
    mm = np.array(dl[5]['images']['CAM_BACK']['lidar2cam'], float)
    mm[:3, 3] = [0.0, 500.0, 1800.0]
    dl[5]['images']['CAM_BACK']['lidar2cam'] = mm.tolist()
    dl[6]['images']['CAM_FRONT']['cam2img'] = [[40.0, 0.0, 32.0], [0.0, -40.0, 24.0], [0.0, 0.0, 1.0]]
    with open(scenes['ann_file'], 'wb') as f:
        pickle.dump(infos, f)

    cfg = simipu_config(str(tmp_path / 'cfg.py'), scenes['root'], scenes['ann_file'])
    work = str(tmp_path / 'work')
    r = train(cfg, work)
    assert r.returncode == 0, output(r)[-4000:]
    log = logs(work)
    # sample level: skipped with the file named
    name = {k: re.escape(osp.basename(v)) for k, v in dict(lidar=lidar[0], jpg=jpg, gray=gray, big=big).items()}
    assert re.search(rf'skipping bad sample.*{name["lidar"]}.*NaN/Inf values in columns \[3\]', log), log
    assert re.search(rf'skipping bad sample.*camera CAM_FRONT: image .*{name["jpg"]}.*JPEG file is truncated', log)
    assert re.search(rf'skipping bad sample.*camera CAM_BACK: image .*{name["gray"]}: 1 channel', log)
    assert re.search(rf'skipping bad sample.*camera CAM_FRONT: image .*{name["big"]}: image size 128x96 '
                     r'\(WxH\) does not match the calibration', log)
    # info level: dropped at construction, named, counted
    assert re.search(r'skipping info entry .*token0004.*camera CAM_FRONT .*lidar2cam is not rigid', log)
    assert re.search(r'skipping info entry .*token0005.*camera CAM_BACK .*millimetres', log)
    assert re.search(r'skipping info entry .*token0006.*camera CAM_FRONT .*not a well-formed intrinsic', log)
    assert '3 entries were dropped while loading the annotations' in log
    rows = scalars(work)
    assert rows[-1]['skipped_samples'] >= 4  # the scalar train/skipped_samples, as mmengine writes it
    assert all(np.isfinite(r['loss']) for r in rows)
    assert _nonfinite(osp.join(work, 'epoch_1.pth')) == []


@pytest.mark.slow
def test_nan_that_reaches_the_forward_pass_leaves_no_trace(tmp_path):
    """Point validation off: the NaN intensity reaches the sparse encoder's BatchNorm; the guard skips the step and
    restores the statistics, so every saved tensor is finite."""
    scenes = _nan_intensity_root(str(tmp_path / 'scenes'))
    cfg = simipu_config(str(tmp_path / 'cfg.py'), scenes['root'], scenes['ann_file'], validate_points=False)
    work = str(tmp_path / 'work')
    r = train(cfg, work)
    assert r.returncode == 0, output(r)[-4000:]
    log = logs(work)
    name = re.escape(osp.basename(scenes['lidar'][0]))
    assert re.search(rf'NaNGuardHook skipped iteration \d+: non-finite values .*running_mean.*non-finite inputs: '
                     rf'inputs.points\[\d\].*sample_idx=0 \([^)]*{name}\)', log), log
    rows = scalars(work)
    assert rows[-1]['nan_skipped'] >= 1
    assert _nonfinite(osp.join(work, 'epoch_1.pth')) == []


@pytest.mark.slow
def test_checkpoint_with_nonfinite_tensors_is_refused(tmp_path):
    """No validation and no guard: the NaN gets into the weights; the save is refused naming the tensors, and the
    previous checkpoint stays the one ``last_checkpoint`` names."""
    scenes = _nan_intensity_root(str(tmp_path / 'scenes'))
    cfg = simipu_config(str(tmp_path / 'cfg.py'), scenes['root'], scenes['ann_file'], validate_points=False,
                        nan_guard=False)
    work = str(tmp_path / 'work')
    r = train(cfg, work)
    assert r.returncode != 0
    out = output(r)
    assert 'FloatingPointError: AtomicCheckpointHook refused to write a checkpoint' in out, out[-4000:]
    assert re.search(r'non-finite tensors: state_dict\.\S+ \(\d+ of \d+ values\)', out)
    assert not glob.glob(osp.join(work, '*.pth')) and not glob.glob(osp.join(work, '.*.tmp'))


# ------------------------------------------------------------------------------------------------------ shards
@pytest.fixture(scope='module')
def four_objects(tmp_path_factory):
    from mmxmodal_bench.synthetic.objects import generate_objects
    root = str(tmp_path_factory.mktemp('shard_objects'))
    generate_objects(root, num_objects=4, seed=0, num_views=1, image_size=32, num_points=256, cls_train_per_class=1,
                     cls_test_per_class=1, scanobjectnn=False, workers=1)
    return root


def _dist_train(cfg, work, timeout=300):
    env = dict(PYTHON=sys.executable, PORT=str(free_port()))
    return run(['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', str(work)], timeout=timeout, env=env)


@pytest.mark.slow
def test_dist_shard_shorter_than_a_batch_fails_on_every_rank(tmp_path, four_objects):
    """4 objects over 2 processes, batch 4 with drop_last: every rank would run 0 iterations and 'finish'."""
    cfg = crosspoint_config(str(tmp_path / 'cfg.py'), four_objects, max_epochs=1, batch_size=4,
                            loader='drop_last=True,')
    r = _dist_train(cfg, tmp_path / 'work')  # bounded: a hang raises TimeoutExpired and fails the test
    out = output(r)
    assert r.returncode != 0, out[-4000:]
    for rank in (0, 1):
        assert '0 iterations per epoch' in out and f'this is rank {rank})' in out, out[-4000:]
    assert 'rank 1: 2 samples, batch_size 4, drop_last=True -> 0 iterations per epoch' in out
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))


@pytest.mark.slow
def test_dist_empty_shard_fails_on_every_rank(tmp_path, four_objects):
    """1 object over 2 processes without padding (round_up=False): rank 1 has no sample at all."""
    cfg = crosspoint_config(str(tmp_path / 'cfg.py'), four_objects, max_epochs=1, batch_size=1,
                            loader="sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),",
                            dataset='indices=1,')
    r = _dist_train(cfg, tmp_path / 'work')
    out = output(r)
    assert r.returncode != 0, out[-4000:]
    assert 'rank 1: 0 samples' in out and 'this is rank 0)' in out and 'this is rank 1)' in out, out[-4000:]
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))


def test_single_process_with_zero_iterations_fails(tmp_path, four_objects):
    cfg = crosspoint_config(str(tmp_path / 'cfg.py'), four_objects, max_epochs=1, batch_size=8,
                            loader='drop_last=True,')
    r = train(cfg, tmp_path / 'work', timeout=300)
    out = output(r)
    assert r.returncode != 0 and 'RuntimeError: the train data gives this run 0 iterations per epoch' in out, \
        out[-3000:]
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))


# ------------------------------------------------------------------------------------------------------ converter
def test_create_data_names_the_record_of_a_zero_quaternion(tmp_path):
    from mmxmodal_bench.synthetic.nuscenes import generate_nuscenes_root
    root = tmp_path / 'nus'
    out = generate_nuscenes_root(str(root), num_scenes=1, samples_per_scene=1, sweeps=0, seed=3,
                                 image_size=(160, 90))
    table = root / out['version'] / 'calibrated_sensor.json'
    recs = json.loads(table.read_text())
    recs[0]['rotation'] = [0.0, 0.0, 0.0, 0.0]
    table.write_text(json.dumps(recs))
    r = run([sys.executable, 'tools/create_data.py', 'nuscenes', '--root-path', str(root), '--version',
             out['version'], '--out-dir', str(tmp_path / 'infos')], timeout=300)
    assert r.returncode != 0
    assert f'calibrated_sensor.json: record {recs[0]["token"]}: field "rotation" = [0.0, 0.0, 0.0, 0.0] is not a ' \
        'unit quaternion (norm 0)' in r.stderr, r.stderr[-3000:]
    assert 'ZeroDivisionError' not in r.stderr


@pytest.mark.slow
def test_dist_train_writes_atomic_checkpoints(tmp_path, four_objects):
    """The shipped hooks in a 2-process run: the shard check passes, only the main process writes, and
    ``max_keep_ckpts=1`` keeps the newest checkpoint, named by ``last_checkpoint``."""
    cfg = crosspoint_config(str(tmp_path / 'cfg.py'), four_objects, max_epochs=2, batch_size=2)
    work = tmp_path / 'work'
    r = _dist_train(cfg, work)
    assert r.returncode == 0, output(r)[-4000:]
    assert sorted(osp.basename(p) for p in glob.glob(str(work / '*.pth')) + glob.glob(str(work / '.*'))) == \
        ['epoch_2.pth']
    assert open(work / 'last_checkpoint').read().strip().endswith('epoch_2.pth')
    assert _nonfinite(str(work / 'epoch_2.pth')) == []


@pytest.mark.slow
def test_create_data_kitti_names_a_calibration_in_millimetres(tmp_path):
    from mmxmodal_bench.synthetic.kitti import generate_kitti_root
    out = generate_kitti_root(str(tmp_path / 'kitti'), num_scenes=1, samples_per_scene=2, seed=0,
                              image_size=(160, 48), num_azimuths=256, test_scenes=0)
    calib = sorted(glob.glob(osp.join(out['root'], 'training', 'calib', '*.txt')))[0]
    lines = open(calib).read().splitlines()
    k = [n for n, ln in enumerate(lines) if ln.startswith('Tr_velo_to_cam:')][0]
    vals = [float(v) for v in lines[k].split(':')[1].split()]
    vals[3], vals[7], vals[11] = vals[3] * 1000 + 270.0, vals[7] * 1000 - 80.0, vals[11] * 1000 - 300.0
    lines[k] = 'Tr_velo_to_cam: ' + ' '.join(f'{v:.12e}' for v in vals)
    open(calib, 'w').write('\n'.join(lines) + '\n')
    r = run([sys.executable, 'tools/create_data.py', 'kitti', '--root-path', out['root'], '--out-dir',
             str(tmp_path / 'infos')], timeout=300)
    assert r.returncode != 0
    assert f'file {calib}: R0_rect @ Tr_velo_to_cam translates by' in r.stderr and 'millimetres' in r.stderr, \
        r.stderr[-3000:]
