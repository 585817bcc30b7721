"""Hooks (registered in mmdet3d.registry.HOOKS)."""
# one import line per hook module
from .nan_guard import NaNGuardHook, sample_ids  # noqa: F401
