"""Few-shot protocol on frozen features (Sharma & Kaul 2020, as CrossPoint's ``eval_fewshot.py``).

One episode: K classes drawn at random; per class M support and Q query samples, disjoint; a linear SVM
(``SVC(kernel='linear')`` on standardised features, as CrossPoint) fitted on the K * M support samples and scored
on the K * Q queries. Repeated over ``runs`` episodes -> mean +- std accuracy (%).

Pools: ``'train'`` (CrossPoint: support and queries both drawn from the train split), or ``'train-test'``
(support from the train split, queries from the test split).
"""
from typing import Dict, List, Optional, Tuple

import numpy as np

from .linear_svm import fit_linear_svm


def sample_episode(support_labels: np.ndarray,
                   query_labels: Optional[np.ndarray],
                   ways: int,
                   shots: int,
                   queries: int,
                   rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one K-way M-shot episode.

    Args:
        support_labels: (N_s,) labels of the support pool.
        query_labels: (N_q,) labels of a separate query pool, or None to draw queries from the support pool
            (disjoint from the support samples).
        ways, shots, queries: K, M, Q.
        rng: numpy generator.

    Returns:
        (classes (K,), support indices (K * M,) into the support pool, query indices (K * Q,) into the query
        pool), grouped by class in the order of ``classes``.
    """
    same = query_labels is None
    q_labels = support_labels if same else query_labels
    need_s = shots + (queries if same else 0)
    cls_s, cnt_s = np.unique(support_labels[support_labels >= 0], return_counts=True)
    ok = set(cls_s[cnt_s >= need_s].tolist())
    if not same:
        cls_q, cnt_q = np.unique(q_labels[q_labels >= 0], return_counts=True)
        ok &= set(cls_q[cnt_q >= queries].tolist())
    eligible = np.array(sorted(ok))
    if len(eligible) < ways:
        raise ValueError(f'{ways}-way {shots}-shot with {queries} queries needs {ways} classes with enough '
                         f'samples; only {len(eligible)} have them')
    classes = rng.choice(eligible, size=ways, replace=False)
    sup, qry = [], []
    for c in classes:
        s_pool = np.flatnonzero(support_labels == c)
        picked = rng.choice(s_pool, size=need_s, replace=False)
        sup.append(picked[:shots])
        qry.append(picked[shots:] if same else rng.choice(np.flatnonzero(q_labels == c), queries, replace=False))
    return classes, np.concatenate(sup), np.concatenate(qry)


def few_shot_eval(train_x: np.ndarray,
                  train_y: np.ndarray,
                  test_x: Optional[np.ndarray] = None,
                  test_y: Optional[np.ndarray] = None,
                  ways: int = 5,
                  shots: int = 10,
                  queries: int = 20,
                  runs: int = 10,
                  pool: str = 'train',
                  C: float = 1.0,
                  standardize: bool = True,
                  seed: int = 0) -> Dict[str, object]:
    """Mean +- std accuracy (%) of ``runs`` K-way M-shot episodes on features (N, D) with labels (N,).

    ``pool='train'`` draws support and queries from (train_x, train_y); ``'train-test'`` draws queries from
    (test_x, test_y).
    """
    assert pool in ('train', 'train-test'), pool
    rng = np.random.default_rng(seed)
    q_x, q_y = (train_x, train_y) if pool == 'train' else (test_x, test_y)
    accs: List[float] = []
    for _ in range(runs):
        classes, s_idx, q_idx = sample_episode(train_y, None if pool == 'train' else test_y, ways, shots,
                                               queries, rng)
        remap = {int(c): i for i, c in enumerate(classes)}
        ys = np.array([remap[int(c)] for c in train_y[s_idx]])
        yq = np.array([remap[int(c)] for c in q_y[q_idx]])
        clf = fit_linear_svm(train_x[s_idx], ys, C=C, classifier='svc', standardize=standardize)
        accs.append(100.0 * float(clf.score(q_x[q_idx], yq)))
    return dict(mean=float(np.mean(accs)), std=float(np.std(accs)), accs=accs, ways=ways, shots=shots,
                queries=queries, runs=runs, pool=pool)


def extract_features(model, dataloader, max_batches: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Frozen global features of every sample of ``dataloader`` (no gradients, eval mode).

    ``model`` needs ``data_preprocessor`` and ``extract_feat(points) -> (B, D)`` (``CrossPoint``,
    ``PointClassifier``). Returns ``feats`` (N, D) float32, ``labels`` (N,) int64 and ``splits`` (N,) str
    (``''`` when the samples carry no ``split`` tag, see ``SplitConcatDataset``).
    """
    import torch
    feats, labels, splits = [], [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i, batch in enumerate(dataloader):
            if max_batches is not None and i >= max_batches:
                break
            data = model.data_preprocessor(batch, False)
            feats.append(model.extract_feat(data['inputs']['points']).float().cpu().numpy())
            for ds in data['data_samples']:
                labels.append(int(ds.gt_label))
                splits.append(ds.metainfo.get('split', ''))
    model.train(was_training)
    return dict(feats=np.concatenate(feats) if feats else np.zeros((0, 0), np.float32),
                labels=np.array(labels, np.int64), splits=np.array(splits))
