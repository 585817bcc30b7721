"""heads (registered in mmdet3d.registry.MODELS)."""
