"""Generators that write synthetic paired data in real on-disk formats (objects, nuScenes, KITTI)."""
