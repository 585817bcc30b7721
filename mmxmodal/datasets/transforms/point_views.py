"""Object point-cloud augmentation of CrossPoint, one view or several independent views, with recorded transforms.

Frames: input points are in the object frame (y up, like ShapeNet / ModelNet40 h5). A view is

    p_view = s * R (p - c) / m + t (+ clipped jitter),

``c`` the centroid and ``m`` the max radius (normalise to the unit sphere), ``s`` the scale (isotropic, or per
axis), ``R`` a rotation about the up axis, ``t`` the translation. The affine part is recorded as a 4x4 matrix
(object frame -> view frame) so a view can be mapped back with :func:`invert_view`; jitter (<= ``jitter_clip``
per axis in the view frame) and the indices of the dropped-out points (overwritten by the first point, as
CrossPoint does, so N stays fixed) are recorded too.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS


def rotation_about_axis(angle: float, axis: int = 1) -> np.ndarray:
    """(3, 3) right-handed rotation by ``angle`` (rad) about coordinate ``axis`` (0=x, 1=y, 2=z).

    Same matrix as CrossPoint's ``angle_axis(angle, e_axis)``; points rotate as ``p @ R.T``.
    """
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def invert_view(points: np.ndarray, transform: Dict) -> np.ndarray:
    """Map view-frame points (N, >=3) back to the object frame with a recorded ``transform['matrix']``.

    Exact up to the jitter (<= jitter_clip / scale * radius per point) and the dropped points.
    """
    M = np.asarray(transform['matrix'], dtype=np.float64)
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, :3] = (out[:, :3] - M[:3, 3]) @ np.linalg.inv(M[:3, :3]).T
    if transform.get('rotate_normals') and out.shape[1] >= 6:
        out[:, 3:6] = out[:, 3:6] @ transform['rotation']
    return out.astype(points.dtype)


@TRANSFORMS.register_module()
class ObjectPointAugment(BaseTransform):
    """One augmented view of ``results['points']`` (N, C) with CrossPoint's (default) or DGCNN's augmentation.

    Steps, each disabled by ``None``/0: normalise -> scale -> rotate -> translate -> jitter -> dropout.

    Args:
        normalize: centre on the centroid and divide by the max radius (unit sphere).
        scale_range: U(lo, hi) scale factor (CrossPoint: (0.5, 2)); per axis if ``anisotropic_scale``
            (DGCNN fine-tuning: (2/3, 3/2), anisotropic).
        rot_range: U(lo, hi) rotation angle (rad) about ``up_axis`` (CrossPoint: full circle).
        up_axis: 1 (y) for ShapeNet / ModelNet40 h5.
        translate_range: U(-r, r) translation per axis, relative to the bbox extent if ``translate_mode ==
            'extent'`` (CrossPoint: 0.5) or absolute if ``'absolute'`` (DGCNN: 0.2).
        jitter_std, jitter_clip: N(0, std) noise clipped to +-clip (CrossPoint: 0.01, 0.05).
        dropout_max_ratio: drop each point with probability U(0, max) by overwriting it with the first point
            (CrossPoint: 0.875).
        shuffle: permute the points afterwards (DGCNN fine-tuning); the permutation is recorded.
        rotate_normals: rotate channels 3:6 (normals) with the points.
        seed: None (training: numpy's global RNG, seeded per worker by mmengine), or an int to draw the
            augmentation from ``default_rng([seed, sample_idx])``: a fixed random transform per sample (e.g. a
            rotated evaluation set that is identical for every model and run).

    Results: ``points`` (N, C) float32 replaced; ``point_view`` dict with ``matrix`` (4, 4) object -> view,
    ``centroid``, ``radius``, ``scale`` (3,), ``rot_angle``, ``rotation`` (3, 3), ``translation`` (3,),
    ``dropped`` (indices), ``perm`` (or None), ``jitter_clip``.
    """

    def __init__(self,
                 normalize: bool = True,
                 scale_range: Optional[Sequence[float]] = (0.5, 2.0),
                 anisotropic_scale: bool = False,
                 rot_range: Optional[Sequence[float]] = (0.0, 2 * np.pi),
                 up_axis: int = 1,
                 translate_range: float = 0.5,
                 translate_mode: str = 'extent',
                 jitter_std: float = 0.01,
                 jitter_clip: float = 0.05,
                 dropout_max_ratio: float = 0.875,
                 shuffle: bool = False,
                 rotate_normals: bool = False,
                 seed: Optional[int] = None) -> None:
        assert translate_mode in ('extent', 'absolute'), translate_mode
        assert 0 <= dropout_max_ratio < 1
        self.normalize = normalize
        self.scale_range = tuple(scale_range) if scale_range is not None else None
        self.anisotropic_scale = anisotropic_scale
        self.rot_range = tuple(rot_range) if rot_range is not None else None
        self.up_axis = up_axis
        self.translate_range = translate_range
        self.translate_mode = translate_mode
        self.jitter_std, self.jitter_clip = jitter_std, jitter_clip
        self.dropout_max_ratio = dropout_max_ratio
        self.shuffle = shuffle
        self.rotate_normals = rotate_normals
        self.seed = seed

    def _rng(self, results: dict, view: int = 0):
        if self.seed is None:
            return np.random
        return np.random.default_rng([self.seed, int(results.get('sample_idx', 0)), view])

    def augment(self, points: np.ndarray, rng=np.random) -> Tuple[np.ndarray, Dict]:
        """(N, C) object frame -> ((N, C) float32 view, recorded transform); ``rng``: ``np.random`` or a
        ``np.random.Generator``."""
        pts = np.array(points, dtype=np.float64, copy=True)
        xyz = pts[:, :3]
        M = np.eye(4)
        centroid, radius = np.zeros(3), 1.0
        if self.normalize:
            centroid = xyz.mean(axis=0)
            radius = float(np.sqrt(((xyz - centroid)**2).sum(axis=1)).max()) or 1.0
            M[:3, :3] /= radius
            M[:3, 3] = -centroid / radius
        scale = np.ones(3)
        if self.scale_range is not None:
            lo, hi = self.scale_range
            scale = rng.uniform(lo, hi, size=3) if self.anisotropic_scale else np.full(3, rng.uniform(lo, hi))
            M = np.diag([*scale, 1.0]) @ M
        angle, R = 0.0, np.eye(3)
        if self.rot_range is not None:
            angle = float(rng.uniform(*self.rot_range))
            R = rotation_about_axis(angle, self.up_axis)
            Rh = np.eye(4)
            Rh[:3, :3] = R
            M = Rh @ M
        xyz = xyz @ M[:3, :3].T + M[:3, 3]
        translation = np.zeros(3)
        if self.translate_range:
            translation = rng.uniform(-self.translate_range, self.translate_range, size=3)
            if self.translate_mode == 'extent':
                translation = translation * (xyz.max(axis=0) - xyz.min(axis=0))
            xyz = xyz + translation
            M[:3, 3] += translation
        if self.jitter_std:
            xyz = xyz + np.clip(rng.normal(0.0, self.jitter_std, size=xyz.shape), -self.jitter_clip,
                                self.jitter_clip)
        pts[:, :3] = xyz
        if self.rotate_normals and pts.shape[1] >= 6:
            pts[:, 3:6] = pts[:, 3:6] @ R.T
        dropped = np.zeros(0, dtype=np.int64)
        if self.dropout_max_ratio > 0:
            ratio = rng.random() * self.dropout_max_ratio
            dropped = np.where(rng.random(pts.shape[0]) <= ratio)[0]
            pts[dropped] = pts[0]
        perm = None
        if self.shuffle:
            perm = rng.permutation(pts.shape[0])
            pts = pts[perm]
        info = dict(
            matrix=M.astype(np.float32), centroid=centroid.astype(np.float32), radius=radius,
            scale=scale.astype(np.float32), rot_angle=angle, rotation=R.astype(np.float32),
            translation=translation.astype(np.float32), dropped=dropped, perm=perm,
            jitter_clip=self.jitter_clip if self.jitter_std else 0.0, rotate_normals=self.rotate_normals)
        return pts.astype(np.float32), info

    def transform(self, results: dict) -> dict:
        """``points`` (N, C) -> augmented (N, C); adds ``point_view``."""
        results['points'], results['point_view'] = self.augment(results['points'], self._rng(results))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale_range={self.scale_range}, aniso={self.anisotropic_scale}, '
                f'rot_range={self.rot_range}, up_axis={self.up_axis}, translate={self.translate_range} '
                f'({self.translate_mode}), jitter=({self.jitter_std}, {self.jitter_clip}), '
                f'dropout={self.dropout_max_ratio}, shuffle={self.shuffle})')


@TRANSFORMS.register_module()
class ObjectPointViews(ObjectPointAugment):
    """``num_views`` independently augmented views of one object (CrossPoint: 2), see :class:`ObjectPointAugment`.

    Results: ``points`` (V, N, C) float32 views stacked; ``point_views`` list of V recorded transforms;
    ``points_orig`` (N, C) if ``keep_original``.
    """

    def __init__(self, num_views: int = 2, keep_original: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_views, self.keep_original = num_views, keep_original

    def transform(self, results: dict) -> dict:
        """``points`` (N, C) -> (V, N, C); adds ``point_views``."""
        points = np.asarray(results['points'])
        views = [self.augment(points, self._rng(results, v)) for v in range(self.num_views)]
        if self.keep_original:
            results['points_orig'] = points
        results['points'] = np.stack([v for v, _ in views])
        results['point_views'] = [info for _, info in views]
        return results

    def __repr__(self) -> str:
        return super().__repr__().replace(self.__class__.__name__ + '(',
                                          f'{self.__class__.__name__}(num_views={self.num_views}, ', 1)
