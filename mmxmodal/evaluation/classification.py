"""Object classification accuracy (overall and mean per-class), mmpretrain's ``Accuracy`` is not installed."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from mmdet3d.registry import METRICS


@METRICS.register_module()
class ClassificationAccuracy(BaseMetric):
    """Top-1 overall accuracy and mean class accuracy (DGCNN's ``avg per class acc``), in percent.

    Reads ``pred_label`` (or the argmax of ``pred_score``) and ``gt_label`` of each data sample.

    Metrics: ``{prefix}/top1``, ``{prefix}/mean_class_acc``.
    """
    default_prefix: Optional[str] = 'cls'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            pred = ds['pred_label'] if 'pred_label' in ds else ds['pred_score'].argmax()
            self.results.append((int(pred), int(ds['gt_label'])))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        pred, gt = np.array(results, dtype=np.int64).reshape(-1, 2).T
        valid = gt >= 0
        pred, gt = pred[valid], gt[valid]
        if len(gt) == 0:
            return dict(top1=0.0, mean_class_acc=0.0)
        per_class = [np.mean(pred[gt == c] == c) for c in np.unique(gt)]
        return dict(top1=100.0 * float(np.mean(pred == gt)), mean_class_acc=100.0 * float(np.mean(per_class)))
