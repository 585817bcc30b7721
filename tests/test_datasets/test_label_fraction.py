"""LabelFractionDataset: deterministic labelled subsets for label-efficiency studies."""
import numpy as np
import pytest
from mmengine.dataset import BaseDataset

import mmxmodal  # noqa: F401
from mmxmodal.datasets.label_fraction import LabelFractionDataset


class _Toy(BaseDataset):
    """100 samples; odd samples are rejected by the pipeline (prepare_data -> None) in training."""

    METAINFO = dict(classes=('a', ))

    def load_data_list(self):
        return [dict(idx=i) for i in range(100)]

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        return None if (info['idx'] % 2 and not self.test_mode) else info

    def get_cat_ids(self, idx):
        return {self.get_data_info(idx)['idx'] % 3}


@pytest.mark.parametrize('ratio,expected', [(0.01, 1), (0.05, 5), (0.1, 10), (1.0, 100), (0.001, 1)])
def test_subset_size_and_determinism(ratio, expected):
    a = LabelFractionDataset(_Toy(), ratio=ratio, seed=3)
    b = LabelFractionDataset(_Toy(), ratio=ratio, seed=3)
    c = LabelFractionDataset(_Toy(), ratio=ratio, seed=4)
    assert len(a) == expected and a.indices == b.indices and a.indices == sorted(a.indices)
    if 1 < expected < 100:
        assert a.indices != c.indices
    assert [a.get_data_info(i)['idx'] for i in range(len(a))] == a.indices
    assert a.get_cat_ids(0) == {a.indices[0] % 3}
    assert a.metainfo['classes'] == ('a', )


def test_rejected_samples_are_replaced_from_the_subset_only():
    np.random.seed(0)
    ds = LabelFractionDataset(_Toy(), ratio=0.2, seed=0)
    allowed = {i for i in ds.indices if i % 2 == 0}
    assert allowed and len(allowed) < len(ds)
    seen = {ds[i]['idx'] for i in range(len(ds)) for _ in range(3)}
    assert seen <= allowed
    test_ds = LabelFractionDataset(_Toy(test_mode=True), ratio=0.2, seed=0)
    assert [test_ds[i]['idx'] for i in range(len(test_ds))] == test_ds.indices


def test_invalid_ratio():
    with pytest.raises(ValueError, match='ratio'):
        LabelFractionDataset(_Toy(), ratio=0.0)


def test_wraps_nuscenes_inside_repeat_dataset(synthetic_nuscenes):
    """As in the SECOND config (RepeatDataset). mmdet3d's CBGSDataset also accepts it, but divides by the
    frequency of every class, so it fails when a class has no sample (the tiny synthetic split)."""
    from mmdet3d.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    inner = dict(type='NuScenesDataset', data_root=synthetic_nuscenes['root'], ann_file=synthetic_nuscenes['infos'][0],
                 data_prefix=dict(pts='samples/LIDAR_TOP', img='', sweeps='sweeps/LIDAR_TOP'), pipeline=[],
                 metainfo=dict(classes=['car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier',
                                        'motorcycle', 'bicycle', 'pedestrian', 'traffic_cone']),
                 box_type_3d='LiDAR', filter_empty_gt=False)
    full = DATASETS.build(inner)
    ds = DATASETS.build(dict(type='RepeatDataset', times=2,
                             dataset=dict(type='LabelFractionDataset', ratio=0.5, seed=0, dataset=inner)))
    sub = ds.dataset
    assert len(sub) == max(1, round(0.5 * len(full)))
    tokens = {sub.get_data_info(i)['token'] for i in range(len(sub))}
    assert tokens <= {full.get_data_info(i)['token'] for i in range(len(full))}
    assert len(ds) == 2 * len(sub)
    assert ds[0]['token'] in tokens
