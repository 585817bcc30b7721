"""Sanity checks inside a pipeline: point clouds that are non-finite or (nearly) empty, and camera images that are
truncated, grayscale or of another size than their calibration, are errors naming the file.

mmdet3d's ``LoadPointsFromFile`` accepts NaN / Inf values and ``PointsRangeFilter`` silently drops points with
non-finite coordinates (and may leave no point at all) but keeps a NaN intensity, which then reaches the encoders
(BatchNorm statistics first). Put :class:`ValidatePoints` right after the loading (``check_finite``) and after the range
filter (``min_points``); the dataset's ``on_error`` then raises or skips the sample (see
:mod:`mmxmodal.datasets.robust`). :class:`ValidateImages` goes right before ``LoadMultiViewImageFromFiles``.
"""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio

from mmdet3d.registry import TRANSFORMS


def _where(results: dict) -> str:
    for k in ('lidar_path', 'pts_path'):
        if results.get(k):
            tok = results.get('token')
            return f'{results[k]}' + (f' (sample {tok})' if tok is not None else '')
    return f'sample {results.get("token", results.get("sample_idx", "?"))}'


def _sweep_note(results: dict) -> str:
    """Names the sweep files merged into the cloud (a bad value may come from one of them)."""
    paths = [(s.get('lidar_points') or {}).get('lidar_path') for s in results.get('lidar_sweeps') or []
             if isinstance(s, dict)]
    paths = [p for p in paths if p]
    if not paths:
        return ''
    more = f' (+{len(paths) - 3} more)' if len(paths) > 3 else ''
    return f' (the cloud may also hold the sweeps {", ".join(paths[:3])}{more})'


@TRANSFORMS.register_module()
class ValidatePoints(BaseTransform):
    """Raise ``ValueError`` naming the point file when ``results[key]`` is non-finite or too small.

    Args:
        keys: point keys to check (``points``; add ``points_view2`` after :class:`GlobalTwoViews`).
        check_finite: every value of the first ``check_dims`` columns must be finite.
        check_dims: columns checked for finiteness (default None: every column, features included; 3: x, y, z).
        min_points: minimum number of points (e.g. 1 after ``PointsRangeFilter``); 0 disables.
        stage: free text added to the message (e.g. ``'after PointsRangeFilter'``).
    """

    def __init__(self, keys: Sequence[str] = ('points', ), check_finite: bool = True,
                 check_dims: Optional[int] = None, min_points: int = 1, stage: str = '') -> None:
        self.keys = tuple(keys)
        self.check_finite = check_finite
        self.check_dims = check_dims
        self.min_points = int(min_points)
        self.stage = stage

    def transform(self, results: dict) -> dict:
        for key in self.keys:
            if key not in results:
                raise KeyError(f'ValidatePoints: {_where(results)} has no {key!r} (keys: {sorted(results)})')
            pts = results[key]
            arr = pts.tensor.numpy() if hasattr(pts, 'tensor') else np.asarray(pts)
            stage = f' {self.stage}' if self.stage else ''
            if arr.ndim != 2:
                raise ValueError(f'{_where(results)}: {key}{stage} must be (N, C), got shape {arr.shape}')
            if self.check_finite:
                cols = arr if self.check_dims is None else arr[:, :self.check_dims]
                finite = np.isfinite(cols)
                bad = ~finite.all(axis=1)
                if bad.any():
                    bad_cols = [int(c) for c in np.flatnonzero(~finite.all(axis=0))]
                    what = 'coordinates' if max(bad_cols) < 3 else f'values in columns {bad_cols}'
                    raise ValueError(f'{_where(results)}: {key}{stage}: {int(bad.sum())} of {len(arr)} points have '
                                     f'NaN/Inf {what} (first at row {int(np.argmax(bad))}); expected finite '
                                     f'values{_sweep_note(results)}')
            if len(arr) < self.min_points:
                raise ValueError(f'{_where(results)}: {key}{stage}: {len(arr)} points, expected at least '
                                 f'{self.min_points} (cloud empty after range filtering?)')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(keys={self.keys}, check_finite={self.check_finite}, '
                f'check_dims={self.check_dims}, min_points={self.min_points}, stage={self.stage!r})')


_JPEG_EOI = b'\xff\xd9'
_PNG_IEND = b'IEND\xaeB`\x82'


def image_file_problem(path: str, tail: bytes) -> Optional[str]:
    """Why an image file whose last bytes are ``tail`` is incomplete (None if it looks complete).

    JPEG files end with the EOI marker ``FF D9`` (which cannot occur inside the entropy-coded data), PNG files with
    the ``IEND`` chunk; a file cut short has neither. libjpeg decodes a truncated JPEG anyway (grey-filled, with a
    warning on stderr only), so the decoded array cannot tell; other formats are not checked.
    """
    ext = osp.splitext(str(path))[1].lower()
    body = tail.rstrip(b'\x00\r\n ')
    if ext in ('.jpg', '.jpeg') and not body.endswith(_JPEG_EOI):
        return 'JPEG file is truncated (no end-of-image marker FF D9 at its end)'
    if ext == '.png' and not body.endswith(_PNG_IEND):
        return 'PNG file is truncated (no IEND chunk at its end)'
    return None


def _file_header(path: str, backend_args: Optional[dict]):
    """(width, height, channels, last 64 bytes) of an image file, from its header (nothing is decoded)."""
    from PIL import Image
    if osp.isfile(path):
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64))
            tail = f.read()
        with Image.open(path) as im:
            return im.size[0], im.size[1], len(im.getbands()), tail
    import io
    data = fileio.get(path, backend_args=backend_args)
    with Image.open(io.BytesIO(data)) as im:
        return im.size[0], im.size[1], len(im.getbands()), data[-64:]


@TRANSFORMS.register_module()
class ValidateImages(BaseTransform):
    """Check the camera files and calibration of a sample; raise naming the camera, the file and the expectation.

    Put it right *before* ``LoadMultiViewImageFromFiles`` (which pads images of different sizes to one size and
    stacks their shapes, so that a wrong size is hidden and a grayscale image fails without a file name). For every
    camera of ``results['images']`` (``img_path``, ``cam2img``), from the file header only (nothing is decoded):

    * the file is complete (JPEG end-of-image marker / PNG ``IEND``): libjpeg decodes a truncated JPEG grey-filled
      with a warning on stderr only;
    * it opens as an image with ``channels`` channels (a grayscale camera is named, not another camera's file);
    * its size agrees with the calibration: the principal point ``(cx, cy)`` of ``cam2img`` lies within
      ``max_principal_offset`` (a fraction of the width / height) of the image centre, as for any real camera; an
      image resized or cropped after calibration, or the calibration of another camera, fails.

    Placed after the loader instead, it also checks that float images (``results['img']``) are finite. The dataset's
    ``on_error`` raises or skips the sample (counted, see :mod:`mmxmodal.datasets.robust`).

    Args:
        channels: expected channels (3); None disables the check.
        check_file: check that the files are complete.
        max_principal_offset: largest ``|cx / W - 0.5|`` and ``|cy / H - 0.5|``; None disables.
        backend_args: mmengine file backend arguments (for non-local files).
    """

    def __init__(self, channels: Optional[int] = 3, check_file: bool = True,
                 max_principal_offset: Optional[float] = 0.2, backend_args: Optional[dict] = None) -> None:
        self.channels = channels
        self.check_file = check_file
        self.max_principal_offset = max_principal_offset
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        images = results.get('images')
        if not isinstance(images, dict) or not images:
            raise KeyError(f'ValidateImages: {_where(results)} has no "images" dict (camera entries)')
        tok = results.get('token', results.get('sample_idx', '?'))
        for cam, item in images.items():
            path = str(item.get('img_path'))
            where = f'sample {tok}: camera {cam}: image {path}'
            try:
                w, h, channels, tail = _file_header(path, self.backend_args)
            except FileNotFoundError:
                raise FileNotFoundError(f'{where}: file not found') from None
            except Exception as e:  # noqa: BLE001  (PIL raises UnidentifiedImageError, OSError, ...)
                raise ValueError(f'{where}: cannot be read as an image ({type(e).__name__}: {e}); expected a '
                                 'JPEG / PNG file') from None
            if self.check_file:
                problem = image_file_problem(path, tail)
                if problem:
                    raise ValueError(f'{where}: {problem}; expected a complete image file')
            if self.channels is not None and channels != self.channels:
                raise ValueError(f'{where}: {channels} channel(s), expected {self.channels}'
                                 + (' (a grayscale image)' if channels == 1 else ''))
            k = item.get('cam2img')
            if self.max_principal_offset is not None and k is not None:
                k = np.asarray(k, dtype=np.float64)
                ox, oy = k[0, 2] / w - 0.5, k[1, 2] / h - 0.5
                if max(abs(ox), abs(oy)) > self.max_principal_offset:
                    raise ValueError(
                        f'{where}: image size {w}x{h} (WxH) does not match the calibration: cam2img puts the principal '
                        f'point at ({k[0, 2]:.1f}, {k[1, 2]:.1f}) px, at {ox + 0.5:.2f} x {oy + 0.5:.2f} of the '
                        f'image; expected within {self.max_principal_offset} of the centre (an image resized or '
                        'cropped after calibration, or another camera\'s calibration?)')
        imgs = results.get('img')
        for i, img in enumerate(imgs if isinstance(imgs, (list, tuple)) else [] if imgs is None else [imgs]):
            arr = np.asarray(img)
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                cam = list(images)[i] if i < len(images) else f'view {i}'
                raise ValueError(f'sample {tok}: camera {cam}: {int((~np.isfinite(arr)).sum())} non-finite pixel '
                                 'values; expected finite values')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(channels={self.channels}, check_file={self.check_file}, '
                f'max_principal_offset={self.max_principal_offset})')
