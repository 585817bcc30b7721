"""Check a loaded per-point semantic mask against its scan before the class mapping (no silent mis-pairing)."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS


class SegMaskError(ValueError):
    """A per-point label file that does not fit its scan (the message names the file)."""


@TRANSFORMS.register_module()
class CheckPointSegMask(BaseTransform):
    """Raise :class:`SegMaskError` when ``pts_semantic_mask`` does not fit ``points``.

    Put it right after ``LoadAnnotations3D`` (before ``PointSegClassMapping``): mmdet3d's loaders read a ``.label``
    of the wrong length without complaint and the class mapping silently sends unknown ids to ``ignore``.

    Checks: one label per point (a ``.label`` of another scan, a truncated file), and every raw class id in
    ``raw_ids`` (default: the ids below the length of the dataset's ``seg_label_mapping``). The message names the
    label file (``pts_semantic_mask_path``) and the scan (``lidar_path``). In a dataset built with
    :class:`~mmxmodal.datasets.robust.RobustDatasetMixin` and ``on_error='skip'`` the sample is skipped and counted.

    Args:
        raw_ids: the raw class ids a label file may hold (e.g. ``list(labels_map)`` of the SemanticKITTI config).
    """

    def __init__(self, raw_ids: Optional[Sequence[int]] = None) -> None:
        self.raw_ids = None if raw_ids is None else np.unique(np.asarray(list(raw_ids), dtype=np.int64))

    def transform(self, results: dict) -> dict:
        mask = results.get('pts_semantic_mask')
        label = results.get('pts_semantic_mask_path', '<pts_semantic_mask>')
        scan = results.get('lidar_path') or (results.get('lidar_points') or {}).get('lidar_path', '<points>')
        if mask is None:
            raise SegMaskError(f'no pts_semantic_mask loaded for {scan} (put CheckPointSegMask after '
                               f'LoadAnnotations3D(with_seg_3d=True))')
        points = results.get('points')
        n = len(points) if points is not None else None
        if n is not None and len(mask) != n:
            raise SegMaskError(f'label file {label} has {len(mask)} labels but its scan {scan} has {n} points')
        ids = np.unique(np.asarray(mask, dtype=np.int64))
        if self.raw_ids is not None:
            bad = np.setdiff1d(ids, self.raw_ids)
            expected = f'{self.raw_ids.tolist()}'
        else:
            lut = results.get('seg_label_mapping')
            bad = ids[(ids < 0) | (ids >= len(lut))] if lut is not None else ids[ids < 0]
            expected = f'ids in [0, {len(lut) - 1}]' if lut is not None else 'non-negative ids'
        if len(bad):
            raise SegMaskError(f'label file {label} holds unknown raw class id(s) {bad[:10].tolist()} '
                               f'(expected {expected})')
        return results

    def __repr__(self) -> str:
        n = 'None' if self.raw_ids is None else f'{len(self.raw_ids)} ids'
        return f'{type(self).__name__}(raw_ids={n})'
