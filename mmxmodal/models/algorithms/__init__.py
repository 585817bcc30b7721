"""algorithms (registered in mmdet3d.registry.MODELS)."""
