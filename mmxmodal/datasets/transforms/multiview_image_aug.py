"""Multi-camera image augmentation (resize -> crop -> flip -> pad) that keeps every camera's projection exact.

Pixel convention (used by the whole SimIPU pipeline): continuous pixel coordinates, pixel ``(row i, col j)``
covers ``[j, j + 1) x [i, i + 1)`` and its centre is ``(j + 0.5, i + 0.5)``; ``u = (K X)_0 / (K X)_2`` of a
camera-frame point ``X`` is such a coordinate. Under it the operations are affine and exact:

- resize by ``(sx, sy) = (new_w / w, new_h / h)`` (cv2 / PIL half-pixel resampling): ``u' = sx * u``;
- crop at offset ``(x0, y0)``: ``u' = u - x0``;
- horizontal flip of an image of width ``w``: ``u' = w - u``;
- padding at the right / bottom: identity.

Why not mmdet3d's image transforms: ``Resize3D`` / ``RandomCrop3D`` update ``cam2img`` per image, but
``RandomFlip3D`` only mirrors the principal point (``cx -> w - cx``) because it flips the 3D scene together with
the image (mono-3D); here the LiDAR points are not flipped, so ``fx`` must change sign as well. This transform
applies all four operations to every camera of ``results['img']`` and records one affine ``img_aug_mat`` per
camera, from which ``cam2img`` and ``lidar2img`` are rebuilt (``lidar2img = img_aug_mat @ cam2img @ lidar2cam``).
"""
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS


def to_homogeneous_4x4(mat) -> np.ndarray:
    """Embed a 3x3 (intrinsics) or 3x4 (projection) matrix into a 4x4 float64 matrix; 4x4 passes through."""
    mat = np.asarray(mat, dtype=np.float64)
    if mat.shape == (4, 4):
        return mat.copy()
    if mat.shape not in ((3, 3), (3, 4)):
        raise ValueError(f'expected a 3x3, 3x4 or 4x4 matrix, got shape {mat.shape}')
    out = np.eye(4)
    out[:mat.shape[0], :mat.shape[1]] = mat
    return out


def image_aug_matrix(scale: Tuple[float, float], crop_offset: Tuple[int, int] = (0, 0),
                     flip_width: Optional[float] = None) -> np.ndarray:
    """4x4 map of homogeneous pixel coordinates ``(u d, v d, d, 1)`` for resize -> crop -> (flip).

    Args:
        scale: ``(sx, sy)`` resize factors.
        crop_offset: ``(x0, y0)`` of the crop window in the resized image.
        flip_width: width of the cropped image when it is flipped horizontally, else None.
    """
    sx, sy = scale
    x0, y0 = crop_offset
    aff = np.array([[sx, 0., -x0], [0., sy, -y0], [0., 0., 1.]])
    if flip_width is not None:
        aff = np.array([[-1., 0., flip_width], [0., 1., 0.], [0., 0., 1.]]) @ aff
    out = np.eye(4)
    out[:3, :3] = aff  # acts on (u d, v d, d): the offsets scale with the depth d
    return out


@TRANSFORMS.register_module()
class MultiViewImageAug(BaseTransform):
    """Resize, crop, flip and pad every camera image, updating ``cam2img`` / ``lidar2img`` exactly.

    Per camera of original size ``(h, w)``: resize by ``r = base * U(scale_range)`` with
    ``base = max(H_f / h, W_f / w)`` (the smallest scale covering ``final_shape``; 1 when ``final_shape`` is
    None), crop a window of ``final_shape`` (``crop_mode``: 'random', 'center' or 'bottom' = bottom rows,
    centred columns), flip horizontally with probability ``flip_ratio``, and pad right / bottom to
    ``final_shape`` (when the resized image is smaller) and to ``pad_size_divisor``.

    Required keys: ``img`` (list of (h, w, 3) arrays, one per camera), ``cam2img`` (list of 3x3 / 4x4),
    ``lidar2cam`` (list of 4x4).

    Modified / added keys:
        - ``img``: list of (H, W, 3) arrays, all of one shape.
        - ``cam2img``, ``lidar2img``, ``img_aug_mat``: lists of 4x4 float64 (camera -> augmented pixels,
          LiDAR -> augmented pixels, original pixels -> augmented pixels; all on ``(u d, v d, d, 1)``).
        - ``superpixels`` (only when present, :class:`LoadSuperpixels`): np.int32 (num_cams, H, W), the maps
          through the same resize (nearest) / crop / flip, -1 on padding.
        - ``valid_shape`` (np.int64 (num_cams, 2)): ``(h, w)`` of the image content (without padding) per
          camera, the bounds used for projection validity.
        - ``img_shape``, ``pad_shape``: ``(H, W)`` of the stacked images; ``flip`` (list[bool]),
          ``scale_factor`` (list of ``(sx, sy)``), ``crop_offset`` (list of ``(x0, y0)``).

    Args:
        final_shape: ``(H, W)`` output size or None (keep the resized size).
        scale_range: multiplicative range around the base scale.
        crop_mode: placement of the crop window.
        flip_ratio: probability of a horizontal flip.
        same_aug_all_cams: draw one (scale, crop, flip) for all cameras instead of one per camera.
        pad_size_divisor: pad right / bottom to a multiple of this.
        interpolation: mmcv resize interpolation.
    """

    def __init__(self,
                 final_shape: Optional[Sequence[int]] = None,
                 scale_range: Sequence[float] = (1.0, 1.0),
                 crop_mode: str = 'random',
                 flip_ratio: float = 0.0,
                 same_aug_all_cams: bool = False,
                 pad_size_divisor: int = 1,
                 interpolation: str = 'bilinear') -> None:
        if crop_mode not in ('random', 'center', 'bottom'):
            raise ValueError(f"crop_mode must be 'random', 'center' or 'bottom', got {crop_mode!r}")
        if scale_range[0] <= 0 or scale_range[0] > scale_range[1]:
            raise ValueError(f'scale_range must be 0 < low <= high, got {scale_range}')
        self.final_shape = None if final_shape is None else (int(final_shape[0]), int(final_shape[1]))
        self.scale_range = tuple(scale_range)
        self.crop_mode = crop_mode
        self.flip_ratio = flip_ratio
        self.same_aug_all_cams = same_aug_all_cams
        self.pad_size_divisor = int(pad_size_divisor)
        self.interpolation = interpolation

    def _draw(self) -> Tuple[float, float, float, bool]:
        """Random numbers of one camera: (scale multiplier, crop x fraction, crop y fraction, flip)."""
        return (np.random.uniform(*self.scale_range), np.random.rand(), np.random.rand(),
                bool(np.random.rand() < self.flip_ratio))

    def _offset(self, excess: int, frac: float, axis: str) -> int:
        if excess <= 0:
            return 0
        if self.crop_mode == 'random':
            return int(np.floor(frac * (excess + 1)))
        if self.crop_mode == 'bottom' and axis == 'y':
            return excess
        return excess // 2

    def _augment_one(self, img: np.ndarray, draw, seg: Optional[np.ndarray] = None
                     ) -> Tuple[np.ndarray, np.ndarray, dict, Optional[np.ndarray]]:
        h, w = img.shape[:2]
        mult, fx, fy, flip = draw
        base = 1.0 if self.final_shape is None else max(self.final_shape[0] / h, self.final_shape[1] / w)
        new_w, new_h = max(1, int(round(w * base * mult))), max(1, int(round(h * base * mult)))
        if (new_w, new_h) != (w, h):
            img = mmcv.imresize(img, (new_w, new_h), interpolation=self.interpolation)
            if seg is not None:  # label map: nearest neighbour
                rows = np.minimum(((np.arange(new_h) + 0.5) * h / new_h).astype(np.int64), h - 1)
                cols = np.minimum(((np.arange(new_w) + 0.5) * w / new_w).astype(np.int64), w - 1)
                seg = seg[rows[:, None], cols[None, :]]
        sx, sy = new_w / w, new_h / h
        if self.final_shape is not None:
            out_h, out_w = self.final_shape
            x0, y0 = self._offset(new_w - out_w, fx, 'x'), self._offset(new_h - out_h, fy, 'y')
            img = img[y0:y0 + out_h, x0:x0 + out_w]
            seg = None if seg is None else seg[y0:y0 + out_h, x0:x0 + out_w]
        else:
            x0 = y0 = 0
        ch, cw = img.shape[:2]
        if flip:
            img = mmcv.imflip(img, direction='horizontal')
            seg = None if seg is None else seg[:, ::-1]
        mat = image_aug_matrix((sx, sy), (x0, y0), float(cw) if flip else None)
        meta = dict(scale_factor=(sx, sy), crop_offset=(x0, y0), flip=flip, valid_shape=(ch, cw))
        return np.ascontiguousarray(img), mat, meta, None if seg is None else np.ascontiguousarray(seg)

    def transform(self, results: dict) -> dict:
        imgs = results['img']
        if not isinstance(imgs, (list, tuple)):
            raise TypeError('MultiViewImageAug expects results["img"] as a list of per-camera images '
                            '(LoadMultiViewImageFromFiles)')
        n = len(imgs)
        for key in ('cam2img', 'lidar2cam'):
            if key not in results or len(results[key]) != n:
                raise KeyError(f'MultiViewImageAug needs results[{key!r}] with one matrix per camera ({n})')
        segs = results.get('superpixels')
        if segs is not None and len(segs) != n:
            raise KeyError(f'MultiViewImageAug: {n} images but {len(segs)} superpixel maps')
        shared = self._draw() if self.same_aug_all_cams else None
        out_imgs, aug_mats, metas, out_segs = [], [], [], []
        for i, img in enumerate(imgs):
            img, mat, meta, seg = self._augment_one(img, shared or self._draw(), None if segs is None else segs[i])
            out_imgs.append(img)
            aug_mats.append(mat)
            metas.append(meta)
            out_segs.append(seg)
        # pad everything to one shape (final_shape, then the divisor)
        out_h = max(im.shape[0] for im in out_imgs)
        out_w = max(im.shape[1] for im in out_imgs)
        if self.final_shape is not None:
            out_h, out_w = max(out_h, self.final_shape[0]), max(out_w, self.final_shape[1])
        d = self.pad_size_divisor
        pad_h, pad_w = int(np.ceil(out_h / d)) * d, int(np.ceil(out_w / d)) * d
        out_imgs = [im if im.shape[:2] == (pad_h, pad_w) else mmcv.impad(im, shape=(pad_h, pad_w), pad_val=0)
                    for im in out_imgs]
        cam2img = [m @ to_homogeneous_4x4(k) for m, k in zip(aug_mats, results['cam2img'])]
        results['img'] = out_imgs
        if segs is not None:  # (num_cams, H, W) int32, -1 on padding
            results['superpixels'] = np.stack([
                np.pad(sg, ((0, pad_h - sg.shape[0]), (0, pad_w - sg.shape[1])), constant_values=-1)
                for sg in out_segs]).astype(np.int32)
        results['img_aug_mat'] = aug_mats
        results['cam2img'] = cam2img
        results['lidar2img'] = [k @ to_homogeneous_4x4(l2c) for k, l2c in zip(cam2img, results['lidar2cam'])]
        results['valid_shape'] = np.array([m['valid_shape'] for m in metas], dtype=np.int64)
        results['img_shape'] = (pad_h, pad_w)
        results['pad_shape'] = (pad_h, pad_w)
        results['flip'] = [m['flip'] for m in metas]
        results['scale_factor'] = [m['scale_factor'] for m in metas]
        results['crop_offset'] = [m['crop_offset'] for m in metas]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(final_shape={self.final_shape}, scale_range={self.scale_range}, '
                f'crop_mode={self.crop_mode!r}, flip_ratio={self.flip_ratio}, '
                f'same_aug_all_cams={self.same_aug_all_cams}, pad_size_divisor={self.pad_size_divisor})')
