"""Concatenation of labelled splits whose samples carry their split name (for probes run inside a val loop)."""
from typing import List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset, ConcatDataset

from mmdet3d.registry import DATASETS


@DATASETS.register_module()
class SplitConcatDataset(ConcatDataset):
    """``ConcatDataset`` of ``datasets`` that sets ``split = splits[i]`` in the metainfo of each packed sample.

    Used as the val dataset of pretraining: a linear-SVM probe (:class:`LinearSVMMetric`) needs frozen features of
    the labelled train split *and* of the test split; one val loop over ``[train, test]`` yields both, and the
    metric separates them by this tag.

    Args:
        datasets: dataset configs or instances (their pipelines end with ``PackObjectInputs``).
        splits: one name per dataset (default ``('train', 'test')``).
    """

    def __init__(self,
                 datasets: Sequence[Union[BaseDataset, dict]],
                 splits: Sequence[str] = ('train', 'test'),
                 lazy_init: bool = False,
                 ignore_keys: Optional[Union[str, List[str]]] = None) -> None:
        assert len(splits) == len(datasets), f'{len(splits)} split names for {len(datasets)} datasets'
        self.splits = tuple(splits)
        # build configs in the mmdet3d registry (mmengine's ConcatDataset would use the root registry)
        datasets = [DATASETS.build(d) if isinstance(d, dict) else d for d in datasets]
        super().__init__(datasets, lazy_init=lazy_init, ignore_keys=ignore_keys)

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        dataset_idx, sample_idx = self._get_ori_dataset_idx(idx)
        out = self.datasets[dataset_idx][sample_idx]
        out['data_samples'].set_metainfo(dict(split=self.splits[dataset_idx]))
        return out
