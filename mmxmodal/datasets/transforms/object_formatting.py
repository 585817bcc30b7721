"""Packing of object samples (point views, rendered image, class label) into model inputs + a data sample."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.structures.points import BasePoints

from ..robust import check_object_pairing


@TRANSFORMS.register_module()
class PackObjectInputs(BaseTransform):
    """Pack ``points`` / ``img`` into ``inputs`` and ``gt_label`` + meta keys into a ``Det3DDataSample``.

    mmdet3d's ``Pack3DDetInputs`` is not used: it keeps numpy points as numpy, has no field for a per-object
    class label and raises on unknown keys.

    Inputs:
        ``points``: (N, C) or stacked views (V, N, C) -> float32 tensor of the same shape.
        ``img``: (H, W, 3) -> (3, H, W); a list of V images -> (V, 3, H, W); dtype kept (uint8 or float32),
        normalisation happens in :class:`ObjectDataPreprocessor`.
    Data sample: ``gt_label`` int64 scalar tensor (-1 when unknown) as a data field; ``meta_keys`` present in
    the results as metainfo.

    ``check_pairing`` (default True): raise a ``PairingError`` when the loaded image's path encodes another object
    than the loaded point cloud (:func:`mmxmodal.datasets.robust.check_object_pairing`).
    """

    def __init__(self,
                 keys: Sequence[str] = ('points', 'img'),
                 meta_keys: Sequence[str] = ('sample_idx', 'pts_path', 'img_path', 'ori_shape', 'img_shape',
                                             'scale_factor', 'flip', 'flip_direction', 'point_view',
                                             'point_views', 'color_jitter', 'split'),
                 check_pairing: bool = True) -> None:
        self.keys, self.meta_keys = tuple(keys), tuple(meta_keys)
        self.check_pairing = check_pairing

    @staticmethod
    def _img_to_tensor(img: np.ndarray) -> torch.Tensor:
        if img.ndim == 2:
            img = img[..., None]
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    def transform(self, results: dict) -> dict:
        """results -> ``dict(inputs=dict(points=..., img=...), data_samples=Det3DDataSample)``."""
        if self.check_pairing and 'img' in self.keys and 'img' in results:
            check_object_pairing(results)
        inputs = {}
        if 'points' in self.keys and 'points' in results:
            pts = results['points']
            if isinstance(pts, BasePoints):
                pts = pts.tensor
            inputs['points'] = torch.as_tensor(np.asarray(pts, dtype=np.float32))
        if 'img' in self.keys and 'img' in results:
            img = results['img']
            if isinstance(img, (list, tuple)):
                inputs['img'] = torch.stack([self._img_to_tensor(np.asarray(i)) for i in img])
            else:
                inputs['img'] = self._img_to_tensor(np.asarray(img))
        data_sample = Det3DDataSample()
        data_sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        data_sample.gt_label = torch.as_tensor(int(results.get('gt_label', -1)), dtype=torch.long)
        return dict(inputs=inputs, data_samples=data_sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys}, meta_keys={self.meta_keys})'
