"""Hooks (registered in mmdet3d.registry.HOOKS)."""
# one import line per hook module
from .ema_teacher import EMATeacherHook, RampedEMA, ema_decay_at  # noqa: F401
from .pseudo_labels import PseudoLabelMonitorHook  # noqa: F401
from .nan_guard import NaNGuardHook, nonfinite_inputs, sample_ids  # noqa: F401
from .skipped_samples import SkippedSamplesHook, count_skipped  # noqa: F401
from .rng_state import RNGStateHook, get_rng_state, set_rng_state  # noqa: F401
from .atomic_checkpoint import AtomicCheckpointHook, nonfinite_tensors  # noqa: F401
from .shard_check import ShardCheckHook  # noqa: F401
