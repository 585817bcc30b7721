"""A deterministic random fraction of a labelled dataset, for label-efficiency studies (1 / 5 / 10 / 100 %)."""
import copy
from typing import List, Union

import numpy as np
from mmdet3d.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log


@DATASETS.register_module()
class LabelFractionDataset:
    """Keep ``round(ratio * N)`` samples (at least ``min_samples``) of ``dataset``, drawn without replacement by
    ``numpy.random.default_rng(seed)`` and kept in their original order.

    The subset depends only on ``(N, ratio, seed)``, so pretrained and scratch runs see the same labelled samples,
    and a smaller fraction of the same seed is *not* a subset of a larger one (draw once per ratio). Samples the
    wrapped dataset rejects in training (``prepare_data`` returning None, e.g. empty GT) are replaced by another
    sample *of the subset*, never by one outside it.

    Use inside ``CBGSDataset`` (CenterPoint) or directly as the train dataset::

        train_dataloader = dict(dataset=dict(type='CBGSDataset', dataset=dict(
            type='LabelFractionDataset', ratio=0.1, seed=0, dataset=dict(type='NuScenesDataset', ...))))

    Note: GT-database augmentation (``ObjectSample``) pastes objects of the *full* train split; drop it, or build
    the database from the subset, for an honest label fraction.

    Args:
        dataset: the wrapped dataset (config or instance).
        ratio: fraction in (0, 1].
        seed: seed of the draw.
        min_samples: lower bound of the subset size.
        lazy_init: defer loading the annotations.
    """

    def __init__(self, dataset: Union[BaseDataset, dict], ratio: float, seed: int = 0, min_samples: int = 1,
                 lazy_init: bool = False) -> None:
        if not 0 < ratio <= 1:
            raise ValueError(f'ratio must be in (0, 1], got {ratio}')
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.ratio = float(ratio)
        self.seed = int(seed)
        self.min_samples = int(min_samples)
        self._metainfo = self.dataset.metainfo
        self.indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.dataset.full_init()
        n = len(self.dataset)
        k = min(n, max(self.min_samples, int(round(self.ratio * n))))
        self.indices = sorted(np.random.default_rng(self.seed).choice(n, k, replace=False).tolist())
        print_log(f'LabelFractionDataset: {k} of {n} samples (ratio {self.ratio}, seed {self.seed})', 'current')
        self._fully_initialized = True

    def __len__(self) -> int:
        self.full_init()
        return len(self.indices)

    def get_data_info(self, idx: int) -> dict:
        self.full_init()
        return self.dataset.get_data_info(self.indices[idx])

    def get_cat_ids(self, idx: int):
        self.full_init()
        return self.dataset.get_cat_ids(self.indices[idx])

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        if getattr(self.dataset, 'test_mode', False):
            data = self.dataset.prepare_data(self.indices[idx])
            if data is None:
                raise RuntimeError(f'test-time pipeline returned None for sample {self.indices[idx]}')
            return data
        for _ in range(getattr(self.dataset, 'max_refetch', 1000) + 1):
            data = self.dataset.prepare_data(self.indices[idx])
            if data is not None:
                return data
            idx = int(np.random.randint(0, len(self.indices)))
        raise RuntimeError('LabelFractionDataset: no valid sample found in the subset')
