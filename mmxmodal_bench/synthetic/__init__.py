"""Generators of the embedded synthetic data sets, written in real on-disk formats (the bench, not the plugin).

``objects``: paired objects (ShapeNetRender + ModelNet40 / ScanObjectNN h5 layouts); ``scene``: street scenes seen
by a spinning LiDAR and pinhole cameras, written by ``nuscenes``, ``kitti`` and ``semantickitti`` as data roots of
those formats; ``visualize`` / ``visualize_scene``: figures of them. The validators and info writers these roots
go through are the ones for real data, in :mod:`mmxmodal.datasets.converters`. Command line:
``tools/create_synthetic_data.py``.
"""
