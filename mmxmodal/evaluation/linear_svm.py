"""Linear-SVM probe on frozen features, as an mmengine metric usable in the val loop of pretraining.

Design: the metric needs features of a labelled *train* split (to fit the SVM) and of a *test* split (to score
it). The val dataloader iterates both: its dataset is a :class:`~mmxmodal.datasets.SplitConcatDataset` of the
two labelled datasets, which tags each packed sample with ``split='train'|'test'``. The model's ``predict`` adds
frozen global features ``point_feat`` (D,) to each data sample (``CrossPoint`` / ``PointClassifier``). The metric
collects ``(feature, gt_label, split)`` per sample, and in ``compute_metrics`` (rank 0, after mmengine gathered
all processes) fits an SVM on the train features and reports test accuracy. This keeps the metric a pure
function of the val loop's outputs (no access to the model or to other dataloaders), so it runs every epoch
during training (CrossPoint does) as well as from ``tools/test.py``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet3d.registry import METRICS


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def fit_linear_svm(train_x: np.ndarray,
                   train_y: np.ndarray,
                   C: float = 0.1,
                   classifier: str = 'svc',
                   standardize: bool = False,
                   max_iter: int = -1):
    """Fit a linear SVM: ``'svc'`` = ``SVC(kernel='linear', C)`` (CrossPoint's probe, one-vs-one) or
    ``'linear_svc'`` = ``LinearSVC(C)`` (liblinear, one-vs-rest, faster for many samples).

    Returns a fitted estimator (a ``Pipeline`` with ``StandardScaler`` when ``standardize``).
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC
    if classifier == 'svc':
        clf = SVC(C=C, kernel='linear', max_iter=max_iter)
    elif classifier == 'linear_svc':
        clf = LinearSVC(C=C, max_iter=max_iter if max_iter > 0 else 10000)
    else:
        raise ValueError(f'unknown classifier {classifier!r} (svc | linear_svc)')
    if standardize:
        clf = make_pipeline(StandardScaler(), clf)
    return clf.fit(train_x, train_y)


def linear_svm_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                        **kwargs) -> float:
    """Test accuracy in [0, 1] of :func:`fit_linear_svm` fitted on the train split."""
    return float(fit_linear_svm(train_x, train_y, **kwargs).score(test_x, test_y))


def split_features(results: Sequence[dict], train_split: str = 'train',
                   test_split: str = 'test') -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``[{'feat', 'label', 'split'}]`` -> (train_x, train_y, test_x, test_y), unlabelled (-1) samples dropped."""
    out = []
    for split in (train_split, test_split):
        rows = [r for r in results if r['split'] == split and r['label'] >= 0]
        x = np.stack([r['feat'] for r in rows]) if rows else np.zeros((0, 0), np.float32)
        out += [x, np.array([r['label'] for r in rows], dtype=np.int64)]
    return tuple(out)


@METRICS.register_module()
class LinearSVMMetric(BaseMetric):
    """Linear-SVM probe accuracy (percent) of frozen features: fit on ``split == train_split``, score on
    ``split == test_split``. See the module docstring for the val-loop design.

    Args:
        C: SVM regularisation (CrossPoint: 0.1).
        classifier: ``'svc'`` (CrossPoint) or ``'linear_svc'``.
        standardize: standardise features with train statistics first.
        feat_key: data-sample field holding the feature.
        train_split, test_split: split tags (set by ``SplitConcatDataset``).
        max_iter: solver iteration cap (-1: none for ``svc``).

    Metrics: ``{prefix}/accuracy`` (%), ``{prefix}/num_train``, ``{prefix}/num_test``.
    """
    default_prefix: Optional[str] = 'svm'

    def __init__(self,
                 C: float = 0.1,
                 classifier: str = 'svc',
                 standardize: bool = False,
                 feat_key: str = 'point_feat',
                 train_split: str = 'train',
                 test_split: str = 'test',
                 max_iter: int = -1,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.svm_kwargs = dict(C=C, classifier=classifier, standardize=standardize, max_iter=max_iter)
        self.feat_key, self.train_split, self.test_split = feat_key, train_split, test_split

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            if 'split' not in ds:
                raise KeyError('LinearSVMMetric needs a `split` tag per sample: use SplitConcatDataset '
                               '(datasets=[train, test]) as the val dataset')
            self.results.append(dict(feat=_to_numpy(ds[self.feat_key]).astype(np.float32).reshape(-1),
                                     label=int(_to_numpy(ds['gt_label']).reshape(-1)[0]), split=ds['split']))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        train_x, train_y, test_x, test_y = split_features(results, self.train_split, self.test_split)
        if len(train_y) == 0 or len(test_y) == 0 or len(np.unique(train_y)) < 2:
            MMLogger.get_current_instance().warning(
                f'LinearSVMMetric: {len(train_y)} train / {len(test_y)} test labelled samples; accuracy set to 0')
            return dict(accuracy=0.0, num_train=len(train_y), num_test=len(test_y))
        acc = linear_svm_accuracy(train_x, train_y, test_x, test_y, **self.svm_kwargs)
        return dict(accuracy=100.0 * acc, num_train=len(train_y), num_test=len(test_y))
