"""CrossPoint transfer protocol of tools/eval_transfer.py: val-only choices, and the tiny end-to-end run."""
import argparse
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

from mmxmodal_bench import transfer
from mmxmodal_bench.protocols import crosspoint

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location('eval_transfer', osp.join(ROOT, 'tools', 'eval_transfer.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_select_on_test_is_refused(tmp_path, capsys):
    out = tmp_path / 'r.json'
    assert _tool().main(['crosspoint', '--select-on', 'test', '--out', str(out), '--data-root',
                         str(tmp_path / 'data')]) == 2
    assert "must be made on the 'val' split" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / 'data').exists()  # refused before anything ran
    with pytest.raises(transfer.ProtocolError):
        crosspoint.run(argparse.Namespace(select_on='test'))


def test_val_rows_and_fewshot_parsing():
    labels = np.arange(20) % 4  # 5 rows per class, in row order
    m = crosspoint.val_mask(labels, 2)
    assert m.sum() == 8 and all(m[labels == c].tolist() == [False] * 3 + [True] * 2 for c in range(4))
    with pytest.raises(transfer.ProtocolError, match='needs > 5'):
        crosspoint.val_mask(labels, 5)
    assert crosspoint.parse_fewshot(['5x10', '10X20']) == [(5, 10), (10, 20)]
    with pytest.raises(argparse.ArgumentTypeError):
        crosspoint.parse_fewshot(['5w10'])


def test_probe_chooses_c_on_val_rows_only():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = rng.normal(size=(60, 8)) + 6 * np.eye(8)[y]
    is_val = crosspoint.val_mask(y, 5)
    C, scores = crosspoint.probe_select(x, y, is_val, [0.01, 1.0])
    assert set(scores) == {'0.01', '1'} and C in (0.01, 1.0) and max(scores.values()) > 0.9


@pytest.mark.slow
def test_tool_tiny_run_writes_table(tmp_path):
    """2 seeds, 4 classes, 2 iterations of pretraining per seed: JSON in the common schema, table and figure."""
    out = tmp_path / 'crosspoint_transfer.json'
    rc = _tool().main([
        'crosspoint', '--seeds', '0', '1', '--out', str(out), '--work-dir', str(tmp_path / 'work'),
        '--data-root', str(tmp_path / 'data'), '--classes', 'chair', 'stool', 'bench', 'sofa',
        '--num-objects', '16', '--cls-train-per-class', '5', '--val-per-class', '1', '--cls-test-per-class', '3',
        '--epochs', '1', '--ckpt-interval', '1', '--batch-size', '8', '--svm-c', '0.1', '1',
        '--fewshot', '2x2', '--fewshot-queries', '2', '--fewshot-runs', '2',
        '--scan-probe', '--scan-occlusion', '0.3', '--scan-background', '0.2'])
    assert rc == 0
    res = transfer.load_results(str(out))
    assert res['split'] == 'test' and res['seeds'] == [0, 1] and res['metric'] == 'accuracy'
    assert list(res['arms']) == ['probe_canonical_pretrained', 'probe_canonical_random',
                                 'probe_augmented_pretrained', 'probe_augmented_random',
                                 'probe_scan_pretrained', 'probe_scan_random', 'fewshot_2w2s_pretrained', 'fewshot_2w2s_random']
    for vals in res['arms'].values():
        assert len(vals) == 2 and all(0.0 <= v <= 1.0 for v in vals)
    assert res['baselines']['probe_canonical_pretrained'] == 'probe_canonical_random'
    assert res['chance'] == pytest.approx(0.25)
    for seed in ('0', '1'):
        rec = res['per_seed'][seed]
        assert rec['epoch'] == 1 and set(rec['pretrained']['probe_canonical']['val']) == {'0.1', '1'}
    md = (tmp_path / 'crosspoint_transfer.md').read_text()
    assert '| `probe_canonical_pretrained` |' in md and 'Chance: 25.0.' in md
    assert (tmp_path / 'crosspoint_transfer.png').stat().st_size > 1000
    meta = json.load(open(tmp_path / 'data' / 'meta.json'))
    assert meta['classes'] == ['chair', 'stool', 'bench', 'sofa']
    assert meta['scanobjectnn'] and meta['scan_occlusion'] == 0.3 and meta['scan_background'] == 0.2
    assert res['protocol']['scan_probe'] == dict(occlusion=0.3, background=0.2)
    assert osp.isfile(tmp_path / 'data' / 'ScanObjectNN' / 'main_split' / 'test_objectdataset.h5')
    # the same root with other settings is refused, not silently reused
    args = argparse.Namespace(data_root=str(tmp_path / 'data'), num_objects=17, data_seed=0, num_points=256,
                              cls_train_per_class=5, cls_test_per_class=3, classes=meta['classes'], class_set='hard',
                              scan_probe=True, scan_occlusion=0.3, scan_background=0.2)
    with pytest.raises(transfer.ProtocolError, match='other settings'):
        crosspoint.ensure_data(args)
