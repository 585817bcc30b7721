"""Metrics (registered in mmdet3d.registry.METRICS) and evaluation protocols."""
