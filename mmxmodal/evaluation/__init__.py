"""Metrics (registered in mmdet3d.registry.METRICS) and evaluation protocols."""
# one import line per module
from .linear_svm import LinearSVMMetric, fit_linear_svm, linear_svm_accuracy  # noqa: F401
from .few_shot import extract_features, few_shot_eval, sample_episode  # noqa: F401
from .classification import ClassificationAccuracy  # noqa: F401
from .branch_accuracy import BranchAccuracy  # noqa: F401
