"""Hooks (registered in mmdet3d.registry.HOOKS)."""
