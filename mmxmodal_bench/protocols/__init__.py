"""Transfer protocols, one module per method; each defines ``add_arguments(parser)`` and ``run(args) -> dict``.

``run`` returns the results dict written by :func:`mmxmodal_bench.transfer.write_results`.
"""
