"""Metrics (registered in mmdet3d.registry.METRICS) and evaluation protocols."""
# one import line per module
