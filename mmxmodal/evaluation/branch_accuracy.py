"""Top-1 accuracy of several prediction branches of one model (Cross-MoST: point, image, combined 2D+3D)."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from mmdet3d.registry import METRICS


@METRICS.register_module()
class BranchAccuracy(BaseMetric):
    """Reads ``pred_label_<branch>`` and ``gt_label`` of each data sample; reports ``<branch>_acc`` in percent
    (samples with ``gt_label < 0`` are skipped).

    Args:
        branches: branch names (``CrossMoST.predict`` sets ``pts``, ``img``, ``combined``).
    """

    default_prefix = 'cls'

    def __init__(self, branches: Sequence[str] = ('pts', 'img', 'combined'), collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.branches = tuple(branches)

    @staticmethod
    def _get(sample, key):
        v = sample.get(key) if isinstance(sample, dict) else getattr(sample, key, None)
        return None if v is None else int(np.asarray(v.cpu() if hasattr(v, 'cpu') else v).reshape(()))

    def process(self, data_batch, data_samples: Sequence) -> None:
        for s in data_samples:
            gt = self._get(s, 'gt_label')
            if gt is None or gt < 0:
                continue
            self.results.append(dict(gt=gt, **{b: self._get(s, f'pred_label_{b}') for b in self.branches}))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            return {f'{b}_acc': 0.0 for b in self.branches}
        gt = np.array([r['gt'] for r in results])
        return {f'{b}_acc': float(100.0 * np.mean(np.array([r[b] for r in results]) == gt)) for b in self.branches}
