"""The shared transfer protocol: selection on val only, one value per seed, tables and figures from the file."""
import json
import subprocess
import sys

import pytest

from mmxmodal_bench import transfer


def test_selection_refuses_the_test_split():
    assert transfer.select_on_val({'C=0.1': 0.5, 'C=1': 0.7, 'C=10': 0.7}) == 'C=1'  # first of the tie
    with pytest.raises(transfer.ProtocolError, match="made on the 'val' split"):
        transfer.select_on_val({'C=1': 0.7}, split='test')


def test_summary_and_schema(tmp_path):
    s = transfer.summarize([1.0, 2.0, 4.0])
    assert s['mean'] == pytest.approx(7 / 3) and s['min'] == 1.0 and s['max'] == 4.0
    assert s['std'] == pytest.approx(1.5275252316519468)
    res = transfer.make_results('acc', [0, 1, 2], {'pre': [0.8, 0.9, 0.85], 'rand': [0.5, 0.4, 0.45]},
                                command='python x', commit='abc', baselines={'pre': 'rand'}, scale=100)
    path = transfer.write_results(str(tmp_path / 'r.json'), res)
    assert json.load(open(path))['arms']['pre'] == [0.8, 0.9, 0.85]
    md = transfer.results_markdown(transfer.load_results(path), baselines={'pre': 'rand'}, scale=100)
    assert '| `pre` | 85.0 +- 5.0 | 80.0 | 90.0 | 40.0 vs `rand`; yes |' in md
    with pytest.raises(transfer.ProtocolError, match="arm 'x' has 2 values for 3 seeds"):
        transfer.make_results('acc', [0, 1, 2], {'x': [1, 2]}, command='c', commit='c')
    assert transfer.plot_results(res, str(tmp_path / 'r.png')).endswith('r.png')


def test_run_seeds_keeps_seed_order_and_gaps():
    arms = transfer.run_seeds([3, 4], lambda s: {'a': s} if s == 3 else {'a': s, 'b': -s})
    assert arms == {'a': [3, 4], 'b': [None, -4]}


def test_tool_help_lists_the_protocols():
    out = subprocess.run([sys.executable, 'tools/eval_transfer.py', '--help'], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
