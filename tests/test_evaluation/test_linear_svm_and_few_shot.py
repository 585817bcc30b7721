"""Linear-SVM metric (train split -> test split inside one val loop), few-shot episodes and protocol, and the
classification accuracy metric."""
import numpy as np
import pytest
import torch

import mmxmodal  # noqa: F401
from mmdet3d.registry import METRICS
from mmdet3d.structures import Det3DDataSample
from mmxmodal.evaluation.few_shot import few_shot_eval, sample_episode


def _blobs(n_per_class=30, n_cls=4, dim=16, sep=4.0, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_cls, dim)) * sep
    x = np.concatenate([c + rng.normal(size=(n_per_class, dim)) for c in centers]).astype(np.float32)
    y = np.repeat(np.arange(n_cls), n_per_class)
    return x, y


def _samples(x, y, split):
    out = []
    for f, label in zip(x, y):
        ds = Det3DDataSample()
        ds.set_metainfo(dict(split=split))
        ds.gt_label = torch.tensor(int(label))
        ds.point_feat = torch.from_numpy(f)
        out.append(ds.to_dict())  # what mmengine's Evaluator hands to metrics
    return out


def test_linear_svm_metric_fits_on_train_and_scores_test():
    xtr, ytr = _blobs(seed=0)
    xte, yte = _blobs(seed=0)  # same centres, fresh noise
    rng = np.random.default_rng(1)
    xte = xte + rng.normal(size=xte.shape).astype(np.float32)
    metric = METRICS.build(dict(type='LinearSVMMetric', C=0.1))
    metric.dataset_meta = {}
    # interleaved batches of both splits, as a val loop over SplitConcatDataset yields them
    tr, te = _samples(xtr, ytr, 'train'), _samples(xte, yte, 'test')
    for i in range(0, len(tr), 25):
        metric.process({}, tr[i:i + 25])
        metric.process({}, te[i:i + 25])
    res = metric.evaluate(len(tr) + len(te))
    assert res['svm/num_train'] == len(tr) and res['svm/num_test'] == len(te)
    assert res['svm/accuracy'] > 95.0
    # labels shuffled on the train split only -> chance level on test
    metric.process({}, _samples(xtr, rng.permutation(ytr), 'train'))
    metric.process({}, te)
    assert metric.evaluate(len(tr) + len(te))['svm/accuracy'] < 60.0


def test_linear_svm_metric_needs_split_tags_and_handles_empty():
    metric = METRICS.build(dict(type='LinearSVMMetric', classifier='linear_svc', standardize=True))
    ds = Det3DDataSample()
    ds.gt_label = torch.tensor(0)
    ds.point_feat = torch.zeros(4)
    with pytest.raises(KeyError, match='SplitConcatDataset'):
        metric.process({}, [ds.to_dict()])
    x, y = _blobs(5)
    metric.process({}, _samples(x, y, 'train'))
    assert metric.evaluate(len(y))['svm/accuracy'] == 0.0  # no test samples: warned, reported as 0


def test_sample_episode_disjoint_and_k_ways():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 40)
    labels[:5] = -1  # unlabelled rows are never drawn
    for _ in range(20):
        classes, s, q = sample_episode(labels, None, ways=5, shots=10, queries=20, rng=rng)
        assert len(set(classes.tolist())) == 5 and len(s) == 50 and len(q) == 100
        assert not set(s.tolist()) & set(q.tolist())  # support and queries disjoint
        for k, c in enumerate(classes):
            assert np.all(labels[s[k * 10:(k + 1) * 10]] == c) and np.all(labels[q[k * 20:(k + 1) * 20]] == c)
    # separate query pool (train -> test)
    qlabels = np.repeat(np.arange(10), 25)
    classes, s, q = sample_episode(labels, qlabels, 10, 20, 20, rng)
    assert np.all(qlabels[q].reshape(10, 20) == classes[:, None])
    # classes without enough samples are not eligible; too few eligible classes -> error
    few = np.repeat(np.arange(6), [40, 40, 40, 40, 40, 10])
    for _ in range(10):
        classes, _, _ = sample_episode(few, None, 5, 10, 20, rng)
        assert 5 not in classes
    with pytest.raises(ValueError, match='only 5'):
        sample_episode(few, None, 6, 10, 20, rng)


def test_few_shot_eval_protocol():
    x, y = _blobs(n_per_class=40, n_cls=8, sep=3.0)
    r = few_shot_eval(x, y, ways=5, shots=10, queries=20, runs=6, seed=0)
    assert r['runs'] == 6 and len(r['accs']) == 6
    assert r['mean'] > 90 and r['std'] == pytest.approx(np.std(r['accs']))
    assert r == few_shot_eval(x, y, ways=5, shots=10, queries=20, runs=6, seed=0)  # seeded
    xt, yt = _blobs(n_per_class=25, n_cls=8, sep=3.0)
    r2 = few_shot_eval(x, y, xt, yt, ways=5, shots=10, queries=20, runs=3, pool='train-test')
    assert r2['pool'] == 'train-test' and r2['mean'] > 90
    noise = np.random.default_rng(0).normal(size=x.shape)
    r3 = few_shot_eval(noise, y, ways=5, shots=10, queries=20, runs=6)
    assert r3['mean'] < 45  # chance is 20%


def test_classification_accuracy():
    metric = METRICS.build(dict(type='ClassificationAccuracy'))
    samples = []
    for pred, gt in [(0, 0), (1, 1), (1, 0), (2, 2), (2, 2), (0, 2)]:
        samples.append(dict(pred_label=torch.tensor(pred), gt_label=torch.tensor(gt)))
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    assert res['cls/top1'] == pytest.approx(100 * 4 / 6)
    # per class: c0 1/2, c1 1/1, c2 2/3
    assert res['cls/mean_class_acc'] == pytest.approx(100 * (0.5 + 1 + 2 / 3) / 3)
