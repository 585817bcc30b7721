"""Hooks (registered in mmdet3d.registry.HOOKS)."""
from .nan_guard import NaNGuardHook, sample_ids  # noqa: F401
