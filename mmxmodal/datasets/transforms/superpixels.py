"""Superpixels of the camera images (SLIC), cached on disk, for the superpixel-pooled contrast of SLidR."""
import hashlib
import os
import os.path as osp
import tempfile
from typing import List, Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS


def slic_superpixels(img: np.ndarray, n_segments: int = 150, compactness: float = 10.0,
                     sigma: float = 0.0) -> np.ndarray:
    """SLIC superpixels of one image.

    Args:
        img: (H, W, 3) uint8 image (any channel order: SLIC clusters in Lab of the given order; use the loader's
            order consistently).
    Returns:
        (H, W) int32 superpixel ids, 0 .. K-1 (K <= about ``n_segments``).
    """
    from skimage.segmentation import slic
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'slic_superpixels expects an (H, W, 3) image, got shape {img.shape}')
    seg = slic(img, n_segments=n_segments, compactness=compactness, sigma=sigma, start_label=0,
               channel_axis=-1)
    _, ids = np.unique(seg, return_inverse=True)  # dense ids 0 .. K-1
    return ids.reshape(seg.shape).astype(np.int32)


@TRANSFORMS.register_module()
class LoadSuperpixels(BaseTransform):
    """SLIC superpixels of every camera image (SLidR's segments), computed once and cached on disk.

    Place it after ``LoadMultiViewImageFromFiles`` and before :class:`MultiViewImageAug`, which carries the maps
    through the same resize / crop / flip (nearest neighbour; padding is -1).

    Required keys: ``img`` (list of (h, w, 3) arrays); ``filename`` (``LoadMultiViewImageFromFiles``) or
    ``img_path``: the image files, the cache key.
    Added keys: ``superpixels`` (list of (h, w) int32 arrays, ids 0 .. K-1 per image).

    Args:
        n_segments / compactness / sigma: :func:`skimage.segmentation.slic` arguments.
        cache_dir: folder of the cached maps (``<sha1>.npy``; the key is the image file's absolute path, size and
            modification time and the SLIC arguments, so a changed image or setting is recomputed). None: no cache.
    """

    def __init__(self, n_segments: int = 150, compactness: float = 10.0, sigma: float = 0.0,
                 cache_dir: Optional[str] = None) -> None:
        if n_segments < 1:
            raise ValueError(f'n_segments must be >= 1, got {n_segments}')
        self.n_segments = int(n_segments)
        self.compactness = float(compactness)
        self.sigma = float(sigma)
        self.cache_dir = cache_dir

    def cache_path(self, img_path: str) -> Optional[str]:
        if self.cache_dir is None:
            return None
        st = os.stat(img_path)
        key = f'{osp.abspath(img_path)}|{st.st_size}|{st.st_mtime_ns}|{self.n_segments}|{self.compactness}|{self.sigma}'
        return osp.join(self.cache_dir, hashlib.sha1(key.encode()).hexdigest() + '.npy')

    def _one(self, img: np.ndarray, img_path: Optional[str]) -> np.ndarray:
        path = self.cache_path(img_path) if img_path else None
        if path is not None and osp.isfile(path):
            seg = np.load(path)
            if seg.shape == img.shape[:2]:
                return seg
        seg = slic_superpixels(img, self.n_segments, self.compactness, self.sigma)
        if path is not None:  # atomic: concurrent workers never read a partial file
            os.makedirs(self.cache_dir, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix='.npy.tmp')
            with os.fdopen(fd, 'wb') as f:
                np.save(f, seg)
            os.replace(tmp, path)
        return seg

    def transform(self, results: dict) -> dict:
        imgs = results['img']
        if not isinstance(imgs, (list, tuple)):
            raise TypeError('LoadSuperpixels expects results["img"] as a list of per-camera images '
                            '(LoadMultiViewImageFromFiles)')
        paths = results.get('filename', results.get('img_path'))  # the stock loader's list of files
        paths: List[Optional[str]] = [paths] if isinstance(paths, str) else list(paths or [None] * len(imgs))
        if len(paths) != len(imgs):
            raise KeyError(f'LoadSuperpixels: {len(imgs)} images but {len(paths)} file names (filename / img_path)')
        results['superpixels'] = [self._one(np.asarray(im), p) for im, p in zip(imgs, paths)]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(n_segments={self.n_segments}, compactness={self.compactness}, '
                f'sigma={self.sigma}, cache_dir={self.cache_dir!r})')
