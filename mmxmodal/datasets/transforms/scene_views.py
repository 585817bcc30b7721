"""Two augmented views of one LiDAR scan for SimIPU's intra-modal (point-point) contrast.

Both views hold the *same points in the same order*, so point ``i`` of view 1 and point ``i`` of view 2 are the
same physical point: the correspondence is the identity index map and needs no (Hungarian) matching.
"""
import math
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures.points import BasePoints


def global_view_matrix(angle: float, scale: float, flip_y: bool = False, flip_x: bool = False,
                       translation: Sequence[float] = (0., 0., 0.)) -> np.ndarray:
    """4x4 (float64) map from the LiDAR frame to one augmented view.

    ``view = T @ [x, y, z, 1]`` with ``T = [[s R_z(angle) F, t], [0, 1]]``: first the flip ``F`` (``flip_y``
    negates y, mmdet3d's 'horizontal' BEV flip; ``flip_x`` negates x, 'vertical'), then the rotation about the
    LiDAR z axis (counter-clockwise, radians), then the isotropic scale, then the translation.
    """
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s, 0.], [s, c, 0.], [0., 0., 1.]])
    flip = np.diag([-1. if flip_x else 1., -1. if flip_y else 1., 1.])
    mat = np.eye(4)
    mat[:3, :3] = scale * rot @ flip
    mat[:3, 3] = np.asarray(translation, dtype=np.float64)
    return mat


def apply_view_matrix(xyz: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a 4x4 view matrix to (N, 3) coordinates (computed in float64, returned in ``xyz.dtype``)."""
    xyz64 = np.asarray(xyz, dtype=np.float64)
    return (xyz64 @ mat[:3, :3].T + mat[:3, 3]).astype(xyz.dtype)


@TRANSFORMS.register_module()
class GlobalTwoViews(BaseTransform):
    """Make two globally augmented views of ``results['points']`` with their exact 4x4 transforms.

    SimIPU's augmentation: rotation about z uniform in ``rot_range`` (+-90 deg), isotropic scale uniform in
    ``scale_range`` (0.75-1.25), BEV flip with probability ``flip_ratio``, optional Gaussian translation. By default
    (SimIPU) view 1 is the scan itself (``T_1 = I``: the frame the cameras see, used by the point-pixel loss) and
    view 2 is augmented; with ``identity_first_view=False`` both views are sampled independently. No point is
    dropped or reordered, so the positives of the point-level contrast are the same indices in both views; points
    that leave the voxel grid in a view are masked by the model, not here.

    Required keys: ``points`` (:class:`BasePoints`, N x C, LiDAR frame).

    Added / modified keys:
        - ``points``: view 1 (same class, features unchanged, xyz transformed).
        - ``points_view2``: view 2.
        - ``view_trans`` (np.float64 (2, 4, 4)): ``T_k`` with ``view_k = T_k @ lidar``; hence
          ``view2 = T_2 T_1^-1 view1`` exactly (up to float32 rounding of the stored coordinates).

    Args:
        rot_range: rotation range in radians.
        scale_range: isotropic scale range.
        flip_ratio: probability of the BEV flip of each view.
        flip_direction: ``'horizontal'`` (negate y, mmdet3d convention for LiDAR) or ``'vertical'`` (negate x).
        translation_std: std of the per-axis Gaussian translation (metres), 0 = none.
        identity_first_view: keep view 1 in the LiDAR frame (only view 2 augmented).

    On the embedded data, augmenting view 1 too made the point-pixel task much harder (the image sees the
    un-rotated scene): after 30 steps the point-pixel top-1 was ~0.5 % instead of ~2.5 % (chance 0.2 %).
    """

    def __init__(self,
                 rot_range: Tuple[float, float] = (-math.pi / 2, math.pi / 2),
                 scale_range: Tuple[float, float] = (0.75, 1.25),
                 flip_ratio: float = 0.5,
                 flip_direction: str = 'horizontal',
                 translation_std: Sequence[float] = (0., 0., 0.),
                 identity_first_view: bool = True) -> None:
        if flip_direction not in ('horizontal', 'vertical'):
            raise ValueError(f"flip_direction must be 'horizontal' or 'vertical', got {flip_direction!r}")
        if not 0 <= flip_ratio <= 1:
            raise ValueError(f'flip_ratio must be in [0, 1], got {flip_ratio}')
        if scale_range[0] <= 0 or scale_range[0] > scale_range[1]:
            raise ValueError(f'scale_range must be 0 < low <= high, got {scale_range}')
        self.rot_range = tuple(rot_range)
        self.scale_range = tuple(scale_range)
        self.flip_ratio = flip_ratio
        self.flip_direction = flip_direction
        self.translation_std = np.asarray(translation_std, dtype=np.float64)
        self.identity_first_view = identity_first_view

    def _sample(self) -> np.ndarray:
        angle = np.random.uniform(*self.rot_range)
        scale = np.random.uniform(*self.scale_range)
        flip = np.random.rand() < self.flip_ratio
        trans = np.random.normal(scale=self.translation_std) if self.translation_std.any() else (0., 0., 0.)
        return global_view_matrix(angle, scale, flip_y=flip and self.flip_direction == 'horizontal',
                                  flip_x=flip and self.flip_direction == 'vertical', translation=trans)

    def transform(self, results: dict) -> dict:
        points = results['points']
        if not isinstance(points, BasePoints):
            raise TypeError(f'GlobalTwoViews expects BasePoints in results["points"], got {type(points)}')
        mats = [np.eye(4) if self.identity_first_view else self._sample(), self._sample()]
        xyz = points.tensor[:, :3].numpy()
        views = []
        for mat in mats:
            view = points.clone()
            if not np.array_equal(mat, np.eye(4)):  # the identity gives back the same (finite) float32 values
                view.tensor[:, :3] = view.tensor.new_tensor(apply_view_matrix(xyz, mat))
            views.append(view)
        results['points'], results['points_view2'] = views
        results['view_trans'] = np.stack(mats)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(rot_range={self.rot_range}, scale_range={self.scale_range}, '
                f'flip_ratio={self.flip_ratio}, flip_direction={self.flip_direction!r}, '
                f'translation_std={self.translation_std.tolist()}, '
                f'identity_first_view={self.identity_first_view})')
