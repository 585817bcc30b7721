"""The bench mmxmodal is tested and demonstrated on (not part of the plugin a user imports).

``transfer``: the shared transfer-evaluation protocol (splits, seeds, selection on val, results files, tables,
figures). ``protocols``: one module per method, run by ``tools/eval_transfer.py``.
"""
