"""The bench mmxmodal is tested and demonstrated on (not part of the plugin a user imports, not in its wheel).

``synthetic``: generators of the embedded data sets in real on-disk formats (``tools/create_synthetic_data.py``).
``demo``: ``make demo`` (``tools/demo.py``): one runner, one module per step. ``report``: mmengine scalars, figures,
the markdown report. ``transfer``: the shared transfer-evaluation protocol (splits, seeds, selection on val,
results files, tables, figures). ``protocols``: one module per method, run by ``tools/eval_transfer.py``.
``crossmost_data`` / ``crossmost_start``: Cross-MoST's shifted data set and zero-shot start.

The bench imports the plugin, never the other way round (``tests/test_plugin/test_import_graph.py``).
"""
