"""Data transforms (registered in ``mmdet3d.registry.TRANSFORMS``)."""
