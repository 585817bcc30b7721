"""Report helpers of ``make demo`` (mmxmodal_bench/report.py) on fabricated mmengine scalars.json files, and the
demo's own pieces that need no training (subprocess runner, data markers, report on failure)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmxmodal_bench import report as R
from mmxmodal_bench.demo import demo as demo_pkg
from mmxmodal_bench.demo import runner, settings
from mmxmodal_bench.demo.steps import data as data_step

ROOT = Path(__file__).resolve().parents[2]


def _write_run(work_dir: Path, stamp: str, records) -> Path:
    d = work_dir / stamp / 'vis_data'
    d.mkdir(parents=True)
    p = d / 'scalars.json'
    p.write_text(''.join(json.dumps(r) + '\n' for r in records))
    return p


def _epoch_run(epochs=3, iters=4, val=True):
    """Records as mmengine writes them for an epoch-based run logged every iteration (+ a val record per epoch)."""
    recs, step = [], 0
    for e in range(1, epochs + 1):
        for i in range(1, iters + 1):
            step += 1
            recs.append(dict(lr=1e-3, loss=10.0 / step, loss_intra=5.0 / step, acc_intra=0.1 * step, time=0.5,
                             data_time=0.1, epoch=e, iter=i, step=step, memory=0))
        if val:
            recs.append({'svm/accuracy': 50.0 + 10 * e, 'data_time': 0.1, 'time': 0.2, 'step': e})
    return recs


def test_load_scalars_picks_the_training_run_and_parses_curves(tmp_path):
    _write_run(tmp_path, '20240101_000000', _epoch_run())
    # a later tools/test.py run in the same work dir: only a test record, no train records
    _write_run(tmp_path, '20240102_000000', [{'svm/accuracy': 99.0, 'step': 0}])
    recs = R.load_scalars(str(tmp_path))
    assert len(recs) == 3 * 4 + 3
    xs, ys = R.train_series(recs, 'loss')
    np.testing.assert_allclose(xs, np.arange(1, 13))
    np.testing.assert_allclose(ys, 10.0 / np.arange(1, 13))
    ex, ey = R.train_series(recs, 'loss', x='epoch')
    np.testing.assert_allclose(ex[:4], [0.25, 0.5, 0.75, 1.0])
    vx, vy = R.val_series(recs, 'svm/accuracy')
    np.testing.assert_allclose(vx, [1, 2, 3])
    np.testing.assert_allclose(vy, [60, 70, 80])
    assert R.last_val(recs, 'svm/accuracy') == 80.0
    assert R.load_scalars(str(tmp_path), run='last') == [{'svm/accuracy': 99.0, 'step': 0}]
    assert len(R.load_scalars(str(tmp_path), run='all')) == 16
    # per-epoch means and first/last windows
    means = R.epoch_means(recs, 'loss')
    assert list(means) == [1, 2, 3]
    assert means[1] == pytest.approx(np.mean(10.0 / np.arange(1, 5)))
    first, last = R.first_last(recs, 'loss', window=4)
    assert first == pytest.approx(np.mean(10.0 / np.arange(1, 5)))
    assert last == pytest.approx(np.mean(10.0 / np.arange(9, 13)))


def test_load_scalars_errors_and_truncated_last_line(tmp_path):
    with pytest.raises(FileNotFoundError, match='no scalars.json'):
        R.load_scalars(str(tmp_path))
    p = _write_run(tmp_path, '20240101_000000', _epoch_run(epochs=1, iters=2, val=False))
    with open(p, 'a') as f:
        f.write('{"loss": 1.0, "st')  # a run killed mid-write
    assert len(R.load_scalars(str(p))) == 2
    bad = tmp_path / 'bad.json'
    bad.write_text('{"loss": 1}\nnot json\n{"loss": 2}\n')
    with pytest.raises(ValueError, match=r'bad.json:2'):
        R.load_scalars(str(bad))
    # NaN / missing values are skipped in series
    p2 = tmp_path / 'nan.json'
    p2.write_text('{"loss": NaN, "iter": 1, "step": 1}\n{"loss": 2.0, "iter": 2, "step": 2}\n{"iter": 3, "step": 3}\n')
    xs, ys = R.train_series(R.load_scalars(str(p2)), 'loss')
    assert xs.tolist() == [2.0] and ys.tolist() == [2.0]


def test_find_key_suffix():
    recs = [{'NuScenes metric/pred_instances_3d_NuScenes/NDS': 0.1,
             'NuScenes metric/pred_instances_3d_NuScenes/mAP': 0.2, 'step': 1}]
    assert R.find_key(recs, 'NDS') == 'NuScenes metric/pred_instances_3d_NuScenes/NDS'
    with pytest.raises(KeyError):
        R.find_key(recs, 'AP')


def test_add_sum_key_sums_per_task_losses():
    recs = [{'task0.loss_heatmap': 1.0, 'task1.loss_heatmap': 2.5, 'task0.loss_bbox': 0.5, 'iter': 1, 'step': 1},
            {'svm/accuracy': 3.0, 'step': 1}]
    out = R.add_sum_key(recs, 'loss_heatmap')
    assert out[0]['sum.loss_heatmap'] == 3.5 and 'sum.loss_heatmap' not in out[1]
    assert 'sum.loss_heatmap' not in recs[0]  # inputs untouched
    xs, ys = R.train_series(R.add_sum_key(out, 'loss_heatmap'), 'sum.loss_heatmap')  # idempotent
    assert ys.tolist() == [3.5]


def test_smooth():
    np.testing.assert_allclose(R.smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(R.smooth([1, 2], 1), [1, 2])


def _png_ok(path):
    data = Path(path).read_bytes()
    return len(data) > 1000 and data[:8] == b'\x89PNG\r\n\x1a\n'


def test_figures_are_written(tmp_path):
    recs = _epoch_run()
    other = [dict(r, loss=r['loss'] * 1.5) if 'loss' in r else r for r in recs]
    out = R.plot_training_curves(recs, ['loss', ('loss_intra', 'intra')], str(tmp_path / 'a' / 'curves.png'),
                                 val_keys=['svm/accuracy'], smooth_window=3, title='t')
    assert _png_ok(out)
    out = R.plot_runs_comparison({'pretrained': recs, 'scratch': other}, ['loss'], str(tmp_path / 'cmp.png'),
                                 val_keys=['accuracy', 'NDS'])  # 'NDS' is missing: drawn as "(no data)"
    assert _png_ok(out)
    out = R.plot_bars({'start': [10, 20, None], 'final': [30, 40, 50]}, ['a', 'b', 'c'], str(tmp_path / 'bars.png'))
    assert _png_ok(out)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    feats = rng.normal(size=(30, 8)) + labels[:, None] * 5.0
    out = R.plot_tsne([dict(title='sep', feats=feats, labels=labels),
                       dict(title='given', emb=rng.normal(size=(30, 2)), labels=labels)], str(tmp_path / 'tsne.png'),
                      class_names=['x', 'y', 'z'])
    assert _png_ok(out)
    with pytest.raises(ValueError):
        R.plot_curves([], str(tmp_path / 'none.png'))


def test_tsne_separates_separable_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 15)
    feats = rng.normal(size=(45, 16)) + labels[:, None] * 10.0
    emb = R.tsne_embed(feats)
    assert emb.shape == (45, 2)
    centres = np.stack([emb[labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(emb[labels == c] - centres[c], axis=1).mean() for c in range(3))
    gaps = min(np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3))
    assert gaps > 2 * spread


def test_report_table_contains_numbers_commands_and_failures(tmp_path):
    rep = R.Report(title='demo', intro='hello')
    rep.add('CrossPoint', 'SVM accuracy, pretrained', 87.5, '%', command='python tools/test.py a b')
    rep.add('CrossPoint', 'SVM accuracy, random', 41.25, '%', command='python tools/test.py a c')
    rep.add('data', 'samples', 32, command='python tools/create_synthetic_data.py nuscenes')
    rep.add('SimIPU', 'tiny value', 0.000123)
    rep.steps.append(R.StepRecord('data', 12.34, 'ok'))
    rep.steps.append(R.StepRecord('simipu', 3.0, 'FAILED', log='logs/simipu.log', error='command failed (exit 1)'))
    rep.figures.append(('curves', 'figures/c.png'))
    assert not rep.complete
    text = rep.render()
    for s in ('87.50 %', '41.25 %', '| 32 |', '0.000123', '`python tools/test.py a b`', '`python tools/test.py a c`',
              '## Failures', 'simipu', 'logs/simipu.log', '![curves](figures/c.png)', '12.3', 'hello'):
        assert s in text, s
    # each distinct command is numbered once and referenced from its rows
    assert text.count('1. `python tools/test.py a b`') == 1
    assert '| CrossPoint | SVM accuracy, pretrained | 87.50 % |  | [1] |' in text
    path = rep.write(str(tmp_path / 'sub' / 'report.md'))
    assert Path(path).read_text() == text


def test_report_missing_number_is_a_failure():
    rep = R.Report(title='t')
    rep.add('x', 'ok', 1.0)
    rep.steps.append(R.StepRecord('x', 1.0, 'ok'))
    assert rep.complete
    rep.add('x', 'not measured', None, note='step x failed')
    assert not rep.complete
    text = rep.render()
    assert 'MISSING' in text and 'number missing: x / not measured' in text


def test_fmt_and_markdown_table():
    assert R.fmt(None) == '—'
    assert R.fmt(3) == '3'
    assert R.fmt(np.int64(3)) == '3'
    assert R.fmt(2.0 / 3) == '0.667'
    assert R.fmt(0.0371234) == '0.0371'
    assert R.fmt(84.16666) == '84.17'
    assert R.fmt(0.0) == '0'
    assert R.fmt(float('nan')) == 'nan'
    assert R.fmt(123456.0) == '1.23e+05'
    t = R.markdown_table(['a', 'b'], [('x|y', 1.5)])
    assert t.splitlines() == ['| a | b |', '| --- | --- |', '| x\\|y | 1.50 |']


# ----------------------------------------------------------------------------------------- tools/demo.py pieces
def _demo_module():
    """``tools/demo.py``, the command line over :mod:`mmxmodal_bench.demo`."""
    spec = importlib.util.spec_from_file_location('mmxmodal_demo_tool', ROOT / 'tools' / 'demo.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_demo_console_filter_hides_dumps_and_warnings_and_shortens_val_lines():
    f = runner.ConsoleFilter()
    val = ('01/01 00:00:03 - mmengine - INFO - Epoch(val) [2][10/10]    ' + '  '.join(
        f'NuScenes metric/pred_instances_3d_NuScenes/car_AP_dist_{i}: 0.0000' for i in range(20))
        + '  NuScenes metric/pred_instances_3d_NuScenes/NDS: 0.0191  NuScenes metric/pred_instances_3d_NuScenes/mAP: '
        '0.0024  data_time: 0.03')
    lines = ['01/01 00:00:00 - mmengine - INFO - \n', '------\n', 'System environment:\n', '    sys.platform: linux\n',
             '01/01 00:00:01 - mmengine - INFO - Config:\n', "model = dict(type='X')\n",
             '01/01 00:00:01 - mmengine - INFO - Hooks will be executed in the following order:\n',
             '(VERY_HIGH   ) RuntimeInfoHook\n',
             '/x/y.py:17: UserWarning: pkg_resources is deprecated\n', '  import pkg_resources\n',
             'W1121 06:45:17.452000 28311 torch/fx/_symbolic_trace.py:57] is_fx_tracing will return\n',
             '  ret[slices] = updates.view(*output_shape)\n',
             '01/01 00:00:02 - mmengine - INFO - Epoch(train) [1][1/2]  loss: 1.0\n',
             val + '\n',
             'Traceback (most recent call last):\n', '  File "x.py"\n', 'KeyError: boom\n']
    shown = [t for t in map(f, lines) if t is not None]
    assert shown[0] == lines[12].rstrip()
    assert shown[1] == ('01/01 00:00:03 - mmengine - INFO - Epoch(val) [2][10/10]  NDS: 0.0191  mAP: 0.0024  '
                        '(all metrics in the log)')
    assert shown[2:] == ['Traceback (most recent call last):', '  File "x.py"', 'KeyError: boom']


def test_demo_run_logged_fails_loudly_with_log_path(tmp_path, capsys):
    log = tmp_path / 'logs' / 'x.log'
    cpu = runner.run_logged([sys.executable, '-c', 'sum(range(3_000_000)); print("hello")'], str(log), 'ok run')
    assert 'hello' in log.read_text()
    assert 0.0 < cpu < 60.0  # CPU seconds of the child, from wait4
    with pytest.raises(runner.StepFailed) as e:
        runner.run_logged([sys.executable, '-c', 'import sys; print("boom"); sys.exit(3)'], str(log), 'bad run')
    assert 'exit 3' in str(e.value) and e.value.log.endswith('x.log')
    assert 'boom' in capsys.readouterr().out


def test_demo_writes_report_with_failure_and_exits_nonzero(tmp_path, monkeypatch):
    """A failing step does not stop the others; the report marks it and the exit status is 1."""
    demo = _demo_module()
    args = demo.parse_args(['--work-dir', str(tmp_path / 'w'), '--data-root', str(tmp_path / 'data')])
    d = demo.Demo(args)

    def fail(_demo):
        runner.run_logged([sys.executable, '-c', 'import sys; sys.exit(2)'], os.path.join(d.logs, 'data.log'), 'x')

    def tool_fails(_demo):
        raise runner.StepFailed('eval_transfer failed', 'logs/transfer.log')

    monkeypatch.setitem(d.step_fns, 'data', fail)
    for step in ('transfer_crosspoint', 'transfer_segmentation'):  # they need no data: a failure of their own
        monkeypatch.setitem(d.step_fns, step, tool_fails)
    rc = d.run()
    assert rc == 1
    text = (tmp_path / 'w' / 'report.md').read_text()
    assert '## Failures' in text and 'data' in text and 'logs/data.log' in text
    for step in ('figures', 'simipu', 'finetune', 'crosspoint', 'probe', 'crossmost'):
        assert f'| {step} | skipped |' in text
    assert '| transfer_crosspoint | FAILED |' in text and '| transfer_segmentation | FAILED |' in text


def test_demo_objects_marker_detects_mismatch_and_half_written_roots(tmp_path):
    demo = _demo_module()
    d = demo.Demo(demo.parse_args(['--work-dir', str(tmp_path / 'w'), '--data-root', str(tmp_path / 'data'),
                                   '--quick']))
    root = Path(d.root('objects'))
    assert not data_step.objects_ok(d, 'objects')  # nothing there
    a = settings.DATA['quick']['objects']['args']
    mn = root / 'modelnet40_ply_hdf5_2048'
    mn.mkdir(parents=True)
    for f in ('shape_names.txt', 'train_files.txt', 'test_files.txt'):
        (mn / f).write_text('x\n')
    assert not data_step.objects_ok(d, 'objects')  # half-written: no meta.json
    meta = dict(num_objects=a['num_objects'], num_points=a['num_points'], image_size=a['image_size'],
                num_views=a['num_views'], seed=a['seed'], scanobjectnn=False, cls_views=a['num_views'],
                classes=['a', 'b'], cls_counts=dict(train=2 * a['cls_train_per_class'],
                                                    test=2 * a['cls_test_per_class']))
    (root / 'meta.json').write_text(json.dumps(meta))
    assert data_step.objects_ok(d, 'objects')
    (root / 'meta.json').write_text(json.dumps(dict(meta, image_size=144)))  # e.g. written by another command
    assert not data_step.objects_ok(d, 'objects')


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path):
    """``tools/demo.py --quick``: every step runs on tiny data (a few minutes on 2 cores), the report has every
    number and figure and the exit status is 0."""
    work = tmp_path / 'demo'
    r = subprocess.run([sys.executable, 'tools/demo.py', '--quick', '--work-dir', str(work)], cwd=ROOT,
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    text = (work / 'report.md').read_text()
    assert 'MISSING' not in text and '## Failures' not in text
    for part in ('SimIPU pretraining', 'CenterPoint fine-tuning', 'CrossPoint pretraining', 'CrossPoint linear probe',
                 'Cross-MoST', 'eval_transfer crosspoint (tiny)', 'eval_transfer segmentation (tiny)'):
        assert f'| {part} |' in text, part
    for name in ('lidar_on_cameras', 'objects', 'simipu_pretraining', 'finetune_pretrained_vs_scratch',
                 'crosspoint_pretraining', 'crosspoint_tsne', 'crossmost'):
        png = work / 'figures' / f'{name}.png'
        assert _png_ok(png), name
        assert f'(figures/{name}.png)' in text
    for method in ('crosspoint', 'segmentation'):  # the one evaluation tool, embedded: its files and table
        assert f'## tools/eval_transfer.py {method} (tiny setting)' in text
        assert f'(transfer/{method}_transfer.png)' in text and _png_ok(work / 'transfer' / f'{method}_transfer.png')
        assert 'seeds [0] (commit' in text  # quick mode: one seed (make demo: 2)
    for step in demo_steps():
        assert f'| {step} | ok |' in text, step
    # a second run reuses everything and rewrites the same numbers
    r2 = subprocess.run([sys.executable, 'tools/demo.py', '--quick', '--work-dir', str(work), '--skip-existing'],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stdout[-4000:]
    text2 = (work / 'report.md').read_text()
    assert text2.split('## Numbers')[1].split('## Schedules')[0] == text.split('## Numbers')[1].split('## Schedules')[0]


def demo_steps():
    return settings.STEPS


def test_demo_steps_share_the_one_runner():
    """No step starts processes or threads of its own: subprocesses, log tailing and threads are in
    ``mmxmodal_bench/demo/runner.py`` only, and ``tools/demo.py`` is the command line."""
    import ast
    bench = ROOT / 'mmxmodal_bench' / 'demo'
    for path in [*(bench / 'steps').glob('*.py'), bench / 'demo.py', ROOT / 'tools' / 'demo.py']:
        tree = ast.parse(path.read_text())
        names = {a.name.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {'subprocess', 'multiprocessing'}, path
        if path.parent.name == 'steps':
            assert 'threading' not in names, path
    assert len((ROOT / 'tools' / 'demo.py').read_text().splitlines()) < 80
    assert set(settings.STEPS) == {n for lane in (demo_pkg.FIRST, *demo_pkg.LANES) for n, _ in lane}
