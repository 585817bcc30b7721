"""encoders (registered in mmdet3d.registry.MODELS)."""
# one import line per module
