"""data preprocessors (registered in mmdet3d.registry.MODELS)."""
