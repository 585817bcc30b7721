"""Bad samples never cost a run: raise with a precise message, or skip with a warning and a counter.

:class:`RobustDatasetMixin` is mixed into the project's datasets (``ShapeNetRenderDataset``, ``ModelNet40Dataset``,
``ScanObjectNNDataset``, ``PairedSceneDataset``). It wraps ``prepare_data`` (the pipeline of one sample):

* ``on_error='raise'`` (default; always used in ``test_mode``): an error in any transform is re-raised as a
  :class:`SampleError` that names the dataset, the index, the sample's identity (``token`` / ``pts_path`` /
  ``lidar_path`` / image paths ...), the failing transform and the original message, plus a check of the sample's
  files (missing, empty, truncated LiDAR ``.bin``, undecodable image). The error keeps the original type as a base
  (a missing file still raises a ``FileNotFoundError``, a bad value a ``ValueError`` ...).
* ``on_error='skip'`` (set in the pretraining configs' train datasets): the same message is logged as a warning
  through mmengine's logger, the sample is counted and ``None`` is returned, so that mmengine's
  ``BaseDataset.__getitem__`` fetches another (random) index, at most ``max_refetch`` times.

Counting across dataloader workers: a worker cannot update the main process's message hub. The number of samples
skipped while producing a sample travels *with* that sample: the next good sample gets ``skipped_before=n`` in its
data sample's metainfo (or as a key of a plain dict result). Since mmengine refetches inside the same
``__getitem__`` call, every skip is attached to the sample that replaced it, whatever ``num_workers`` is.
:class:`~mmxmodal.engine.hooks.SkippedSamplesHook` sums these per batch in the main process (all-reduced over
processes) and logs ``train/skipped_samples`` every iteration.

Info-level problems found while the annotation file is parsed (a camera missing from a sample, calibration of the
wrong shape or singular) are handled the same way at construction: raise, or drop the sample with a warning
(counted in ``dataset.num_skipped_infos``, logged by the hook before training). An info pkl in an older mmdet3d
layout (v1: ``infos`` / ``metadata``, or a bare list) is detected and the error says how to convert it.

Pairing: :func:`check_object_pairing` and :func:`check_scene_pairing` (called by the packing transforms) compare the
identity of the point cloud file and of the image file(s) a sample actually loaded, so that an image is never
silently paired with another sample's cloud.
"""
import logging
import os.path as osp
import re
from typing import Any, Callable, List, Optional, Sequence

import numpy as np
from mmengine.dataset import Compose
from mmengine.logging import print_log

ON_ERROR_CHOICES = ('raise', 'skip')


# ------------------------------------------------------------------------------------------------------ errors
class SampleError(Exception):
    """A sample (or an info entry) that cannot be used; the message names it and says what was expected."""

    def __str__(self) -> str:  # KeyError subclasses would otherwise print the message quoted
        return str(self.args[0]) if self.args else ''


class SampleFileNotFoundError(SampleError, FileNotFoundError):
    pass


class SampleOSError(SampleError, OSError):
    pass


class SampleKeyError(SampleError, KeyError):
    pass


class SampleIndexError(SampleError, IndexError):
    pass


class SampleValueError(SampleError, ValueError):
    pass


class SampleTypeError(SampleError, TypeError):
    pass


class SampleAssertionError(SampleError, AssertionError):
    pass


class SampleRuntimeError(SampleError, RuntimeError):
    pass


class PairingError(SampleValueError):
    """The image(s) and the point cloud of a sample do not belong to the same object / scan."""


class InfoFormatError(SampleValueError):
    """An annotation (info) file that is not in mmdet3d's v2 layout (``metainfo`` + ``data_list``)."""


# most specific first; module-level classes so that errors raised in dataloader workers can be pickled
_TYPED = ((FileNotFoundError, SampleFileNotFoundError), (KeyError, SampleKeyError), (IndexError, SampleIndexError),
          (ValueError, SampleValueError), (OSError, SampleOSError), (TypeError, SampleTypeError),
          (AssertionError, SampleAssertionError), (RuntimeError, SampleRuntimeError))


def typed_sample_error(exc: BaseException, message: str) -> SampleError:
    """A :class:`SampleError` with ``message`` that is also an instance of ``exc``'s standard base type."""
    if isinstance(exc, SampleError):
        return type(exc)(message)
    for base, cls in _TYPED:
        if isinstance(exc, base):
            return cls(message)
    return SampleError(message)


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    return on_error


# ------------------------------------------------------------------------------------------------------ identity
_ID_KEYS = ('token', 'object_id', 'synset', 'pts_path', 'h5_path', 'lidar_path')


def sample_identity(info: Optional[dict]) -> str:
    """Short description of a sample from its data info: ids and the files it reads."""
    if not isinstance(info, dict):
        return '?'
    parts = []
    if info.get('sample_idx') is not None:
        parts.append(f'sample_idx={info["sample_idx"]}')
    for k in _ID_KEYS:
        if info.get(k) is not None and not (k == 'lidar_path' and info.get('pts_path')):
            parts.append(f'{k}={info[k]}')
    imgs = _image_paths(info)
    if imgs:
        more = f' (+{len(imgs) - 1} more)' if len(imgs) > 1 else ''
        parts.append(f'img={imgs[0]}{more}')
    return ', '.join(parts) or '?'


def _image_paths(info: dict) -> List[str]:
    if info.get('img_paths'):
        return [str(p) for p in info['img_paths']]
    images = info.get('images')
    if isinstance(images, dict):
        return [str(v['img_path']) for v in images.values() if isinstance(v, dict) and v.get('img_path')]
    return []


def _lidar_files(info: dict) -> List[str]:
    files = []
    path = info.get('lidar_path') or (info.get('lidar_points') or {}).get('lidar_path')
    if path:
        files.append(str(path))
    for sweep in info.get('lidar_sweeps') or []:
        p = (sweep.get('lidar_points') or {}).get('lidar_path') if isinstance(sweep, dict) else None
        if p:
            files.append(str(p))
    return files


def diagnose_sample_files(info: Optional[dict], max_images: int = 16) -> List[str]:
    """Problems of the files a sample reads (only called after a failure, so it may decode images).

    Checks the point cloud file(s) (missing, empty, LiDAR ``.bin`` size not a whole number of
    ``num_pts_feats`` float32 values) and the image file(s) (missing, not decodable).
    """
    if not isinstance(info, dict):
        return []
    problems = []
    pts = [info['pts_path']] if info.get('pts_path') else []
    n_feats = info.get('num_pts_feats') or (info.get('lidar_points') or {}).get('num_pts_feats')
    for path in pts + _lidar_files(info):
        if not osp.isfile(path):
            problems.append(f'point cloud file not found: {path}')
            continue
        size = osp.getsize(path)
        if size == 0:
            problems.append(f'point cloud file is empty: {path}')
        elif path.endswith('.bin') and n_feats and size % (4 * int(n_feats)):
            problems.append(f'{path}: {size} bytes is not a whole number of points of {n_feats} float32 values '
                            f'({4 * int(n_feats)} bytes each): truncated?')
    cams = {}
    if isinstance(info.get('images'), dict):
        cams = {str(v['img_path']): c for c, v in info['images'].items() if isinstance(v, dict) and v.get('img_path')}
    shapes = {}
    for path in _image_paths(info)[:max_images]:
        name = f'{path} (camera {cams[path]})' if path in cams else path
        if not osp.isfile(path):
            problems.append(f'image file not found: {name}')
            continue
        img = None
        try:
            import mmcv
            from .transforms.validate import image_file_problem
            with open(path, 'rb') as f:
                data = f.read()
            img = mmcv.imfrombytes(data, flag='unchanged') if data else None
            truncated = image_file_problem(path, data[-64:])
        except Exception:  # noqa: BLE001  (any decoder failure means "not decodable")
            img, truncated = None, None
        if img is None:
            problems.append(f'image file cannot be decoded (empty, truncated or not an image): {name}')
            continue
        if truncated:
            problems.append(f'{name}: {truncated}')
        shapes[name] = tuple(img.shape)
    channels = {n: (s[2] if len(s) == 3 else 1) for n, s in shapes.items()}
    if len(set(channels.values())) > 1:  # e.g. one grayscale camera: name it, not the first camera's file
        for n, c in channels.items():
            if c != 3:
                problems.append(f'image {n} has {c} channel(s) (shape {shapes[n]}), expected 3 like the other cameras')
    return problems


# ------------------------------------------------------------------------------------------------------ pipeline
class TracedCompose(Compose):
    """``Compose`` that remembers the transform being applied (to name it in error messages)."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        super().__init__([])
        self.transforms = list(transforms)
        self.current: Optional[Callable] = None

    def __call__(self, data: dict) -> Optional[dict]:
        for t in self.transforms:
            self.current = t
            data = t(data)
            if data is None:
                return None
        self.current = None
        return data


def _step_name(t: Optional[Callable]) -> str:
    """Name of a pipeline step (``'loading the data info'`` when the failure came before the pipeline)."""
    if t is None:
        return 'loading the data info'
    return getattr(t, '__name__', None) or type(t).__name__


# ------------------------------------------------------------------------------------------------------ mixin
class RobustDatasetMixin:
    """Raise-or-skip handling of bad samples for an mmengine ``BaseDataset`` subclass (see the module doc).

    Use: ``class MyDataset(RobustDatasetMixin, BaseDataset)``; call ``self._init_robust(on_error)`` before
    ``BaseDataset.__init__`` (info parsing may already skip). A class that defines its own ``prepare_data`` routes
    it through :meth:`_robust_prepare`; ``parse_data_info`` implementations can route through
    :meth:`_robust_parse` to drop bad info entries in skip mode.
    """

    on_error: str = 'raise'

    def _init_robust(self, on_error: str = 'raise') -> None:
        self.on_error = check_on_error(on_error)
        self.num_skipped_infos = 0
        self._pending_skips = 0

    @property
    def skipping(self) -> bool:
        """True when bad samples are skipped (``on_error='skip'`` and not ``test_mode``)."""
        return getattr(self, 'on_error', 'raise') == 'skip' and not getattr(self, 'test_mode', False)

    # -------------------------------------------------------------------- info level (construction)
    def _robust_parse(self, raw_info: dict, parse: Callable[[dict], Any]) -> Any:
        """``parse(raw_info)``; in skip mode a failure drops the entry (returns ``[]``) with a warning."""
        try:
            return parse(raw_info)
        except (MemoryError, RecursionError):
            raise
        except Exception as e:  # noqa: BLE001
            if getattr(self, 'on_error', 'raise') != 'skip' or getattr(self, 'test_mode', False):
                raise
            self.num_skipped_infos = getattr(self, 'num_skipped_infos', 0) + 1
            print_log(f'{type(self).__name__}: skipping info entry {sample_identity(raw_info)} of '
                      f'{getattr(self, "ann_file", "")}: {e}', logger='current', level=logging.WARNING)
            return []

    def load_data_list(self) -> List[dict]:
        """mmengine's ``load_data_list``, with old (v1) info layouts explained instead of a generic error."""
        try:
            return super().load_data_list()
        except (TypeError, ValueError) as e:
            ann_file = getattr(self, 'ann_file', None)
            problem = describe_info_format(ann_file) if ann_file and osp.isfile(ann_file) else None
            if problem:
                raise InfoFormatError(problem) from e
            raise

    # -------------------------------------------------------------------- sample level (pipeline)
    def _traced_pipeline(self) -> Optional[TracedCompose]:
        pipe = getattr(self, 'pipeline', None)
        if isinstance(pipe, Compose) and not isinstance(pipe, TracedCompose):
            pipe = TracedCompose(pipe.transforms)
            self.pipeline = pipe
        return pipe if isinstance(pipe, TracedCompose) else None

    def prepare_data(self, idx: int) -> Any:
        return self._robust_prepare(idx, super().prepare_data)

    def _robust_prepare(self, idx: int, prepare: Callable[[int], Any]) -> Any:
        """``prepare(idx)`` with raise-or-skip handling (for classes that define their own ``prepare_data``)."""
        pipe = self._traced_pipeline()
        if pipe is not None:
            pipe.current = None
        try:
            data = prepare(idx)
        except (MemoryError, RecursionError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001
            return self._on_sample_error(idx, e, pipe.current if pipe is not None else None)
        if data is not None:
            data = self._attach_skips(data)
        return data

    def _on_sample_error(self, idx: int, exc: Exception, step: Optional[Callable]) -> None:
        try:
            info = self.get_data_info(idx)
        except Exception:  # noqa: BLE001
            info = None
        problems = diagnose_sample_files(info)
        msg = (f'{type(self).__name__}[{idx}] ({sample_identity(info)}): {_step_name(step)} failed: '
               f'{type(exc).__name__}: {exc}')
        if problems:
            msg += '; file check: ' + '; '.join(problems)
        if not self.skipping:
            raise typed_sample_error(exc, msg) from exc
        self._pending_skips = getattr(self, '_pending_skips', 0) + 1
        print_log(f'skipping bad sample (on_error="skip"): {msg}', logger='current', level=logging.WARNING)
        return None

    def _attach_skips(self, data: Any) -> Any:
        n = getattr(self, '_pending_skips', 0)
        if not n:
            return data
        self._pending_skips = 0
        samples = data.get('data_samples') if isinstance(data, dict) else None
        if samples is not None and hasattr(samples, 'set_metainfo'):
            samples.set_metainfo(dict(skipped_before=n))
        elif isinstance(data, dict):
            data['skipped_before'] = n
        return data


# ------------------------------------------------------------------------------------------------------ info files
_V2_HINT = ('convert it with mmdet3d\'s "python tools/dataset_converters/update_infos_to_v2.py --dataset '
            '{dataset} --pkl-path {path} --out-dir <dir>", or recreate the infos with mmdet3d 1.x\'s '
            '"python tools/create_data.py {dataset} ..."')


def describe_info_format(ann_file: str) -> Optional[str]:
    """None if ``ann_file`` is an mmdet3d v2 info file, else a message naming the layout found and the fix."""
    import mmengine
    try:
        data = mmengine.load(ann_file)
    except Exception as e:  # noqa: BLE001
        return f'{ann_file}: cannot read the info file ({type(e).__name__}: {e})'
    return describe_info_layout(data, ann_file)


def describe_info_layout(data: Any, ann_file: str = '<infos>') -> Optional[str]:
    """See :func:`describe_info_format` (for an already loaded object)."""
    if isinstance(data, dict) and 'data_list' in data and 'metainfo' in data:
        return None
    name = osp.basename(str(ann_file)).lower()
    dataset = 'kitti' if 'kitti' in name else ('nuscenes' if 'nuscenes' in name else '<dataset>')
    hint = _V2_HINT.format(dataset=dataset, path=ann_file)
    if isinstance(data, dict) and 'infos' in data:
        version = (data.get('metadata') or {}).get('version', '?') if isinstance(data.get('metadata'), dict) \
            else '?'
        return (f'{ann_file}: info file in the old mmdet3d v1 layout (keys {sorted(data)}, metadata version '
                f'{version}) without "data_list"/"metainfo": {hint}')
    if isinstance(data, list):
        return (f'{ann_file}: info file in the old mmdet3d v1 layout (a bare list of {len(data)} infos, as KITTI '
                f'v1) without "data_list"/"metainfo": {hint}')
    keys = sorted(data) if isinstance(data, dict) else type(data).__name__
    return f'{ann_file}: not an mmdet3d v2 info file (expected a dict with "metainfo" and "data_list", got {keys})'


# ------------------------------------------------------------------------------------------------------ pairing
def _object_key_from_points(path: str) -> Optional[tuple]:
    """``<synset>/<object_id>.<ext>`` -> ('obj', synset, object_id)."""
    stem = osp.splitext(osp.basename(path))[0]
    return ('obj', osp.basename(osp.dirname(path)), stem)


def _object_key_from_image(path: str) -> Optional[tuple]:
    """ShapeNetRendering ``<synset>/<object_id>/rendering/NN.png`` -> ('obj', synset, object_id); view folders
    ``<split>/<row:05d>/NN.png`` -> ('row', row); else None."""
    parent = osp.dirname(path)
    if osp.basename(parent) == 'rendering':
        obj_dir = osp.dirname(parent)
        return ('obj', osp.basename(osp.dirname(obj_dir)), osp.basename(obj_dir))
    if osp.basename(parent).isdigit():
        return ('row', int(osp.basename(parent)))
    return None


def check_object_pairing(results: dict) -> None:
    """Raise :class:`PairingError` when a loaded image belongs to another object than the loaded point cloud.

    Point identity: ``pts_path`` (``<synset>/<id>.<ext>``) or, for in-memory (h5) points, ``h5_row``; image
    identity: the path the image loader recorded (``img_path``). Layouts that encode no
    identity are not checked.
    """
    imgs = results.get('img_path')
    if not imgs:
        return
    imgs = [imgs] if isinstance(imgs, str) else list(imgs)
    if results.get('pts_path'):
        pts_key, pts_desc = _object_key_from_points(results['pts_path']), results['pts_path']
    elif results.get('h5_row') is not None:
        pts_key, pts_desc = ('row', int(results['h5_row'])), f'row {results["h5_row"]}'
        if results.get('h5_path'):
            pts_desc += f' of {results["h5_path"]}'
    else:
        return
    for p in imgs:
        key = _object_key_from_image(str(p))
        if key is None or key[0] != pts_key[0]:
            continue
        if key != pts_key:
            raise PairingError(f'image/point-cloud pairing mismatch: image {p} belongs to {key[1:]}, the point '
                               f'cloud ({pts_desc}) to {pts_key[1:]}')


_NUS_TIME = re.compile(r'__(\d{13,19})\.')


def _file_time(path: str) -> Optional[float]:
    """nuScenes file names end in ``__<microseconds>.<ext>``: that time in seconds, else None."""
    m = _NUS_TIME.search(osp.basename(path))
    return int(m.group(1)) / 1e6 if m else None


def check_scene_pairing(results: dict, max_time_offset: float = 0.1) -> None:
    """Raise :class:`PairingError` when a camera image was not captured with the LiDAR scan of the sample.

    nuScenes: the capture times in the file names (``..__<us>.pcd.bin`` / ``..__<us>.jpg``, else the info
    ``timestamp`` of the scan and of each camera) must agree within ``max_time_offset`` seconds (key frames are
    0.5 s apart). KITTI: image and velodyne files share their frame number (``000123.png`` / ``000123.bin``).
    Images are also checked to be the files listed for their camera in ``results['images']``.
    """
    lidar = results.get('lidar_path') or (results.get('lidar_points') or {}).get('lidar_path')
    files = results.get('filename') or results.get('img_path')
    if not lidar or not files:
        return
    files = [files] if isinstance(files, str) else list(files)
    images = results.get('images') if isinstance(results.get('images'), dict) else {}
    cams = list(images)
    if cams and len(cams) == len(files):
        for cam, f in zip(cams, files):
            listed = images[cam].get('img_path')
            if listed and osp.normpath(str(listed)) != osp.normpath(str(f)):
                raise PairingError(f'sample {results.get("token", results.get("sample_idx"))}: image {f} loaded '
                                   f'for camera {cam}, whose info lists {listed}')
    t_lidar = _file_time(str(lidar))
    if t_lidar is None and results.get('timestamp') is not None:
        t_lidar = float(results['timestamp'])
    stem_lidar = osp.basename(str(lidar)).split('.')[0]
    for i, f in enumerate(files):
        t_img = _file_time(str(f))
        if t_img is None and cams and i < len(cams) and images[cams[i]].get('timestamp') is not None:
            t_img = float(images[cams[i]]['timestamp'])
        if t_lidar is not None and t_img is not None:
            if abs(t_img - t_lidar) > max_time_offset:
                raise PairingError(f'sample {results.get("token", results.get("sample_idx"))}: image {f} was '
                                   f'captured {t_img - t_lidar:+.3f} s from the LiDAR scan {lidar} (expected within '
                                   f'{max_time_offset} s): image and point cloud are not of the same sample')
            continue
        stem_img = osp.basename(str(f)).split('.')[0]
        if stem_img.isdigit() and stem_lidar.isdigit() and stem_img != stem_lidar:
            raise PairingError(f'sample {results.get("token", results.get("sample_idx"))}: image {f} and LiDAR '
                               f'scan {lidar} are different frames ({stem_img} != {stem_lidar})')


# ------------------------------------------------------------------------------------------------------ calibration
def check_calibration(mat: np.ndarray, key: str, where: str, min_abs_det: float = 1e-9) -> None:
    """Raise ``ValueError`` when a 4x4 calibration matrix is singular (or its 3x3 linear part is)."""
    lin = np.asarray(mat, dtype=np.float64)[:3, :3]
    det = float(np.linalg.det(lin))
    if not np.isfinite(det) or abs(det) < min_abs_det:
        raise ValueError(f'{where}: {key} is singular (det of its 3x3 part = {det:.3g}); expected an invertible '
                         f'{"intrinsic" if key == "cam2img" else "rigid"} matrix')


def check_camera_calibration(cam2img: np.ndarray, lidar2cam: np.ndarray, where: str, rotation_tol: float = 1e-2,
                             max_translation: Optional[float] = 20.0) -> None:
    """Raise ``ValueError`` when a camera's calibration is not well formed.

    Args:
        cam2img: (4, 4) intrinsics (the 3x3 or 3x4 matrix of the info, padded): ``fx, fy > 0``, a positive principal
            point, and a last row ``[0, 0, 1]`` / second row starting with 0 in its 3x3 part.
        lidar2cam: (4, 4) LiDAR -> camera: a rigid transform, i.e. an orthonormal rotation (``max|R R^T - I| <=
            rotation_tol``, ``det R = +1``), the last row ``[0, 0, 0, 1]``, and a translation of at most
            ``max_translation`` (metres; a calibration in millimetres fails). None disables the translation check.
        where: names the sample, camera and image file in the message.
    """
    k = np.asarray(cam2img, dtype=np.float64)[:3, :3]
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    if not (fx > 0 and fy > 0 and cx > 0 and cy > 0) or abs(k[1, 0]) > 1e-6 * max(fy, 1.0) or \
            not np.allclose(k[2], [0.0, 0.0, 1.0], atol=1e-6):
        raise ValueError(f'{where}: cam2img is not a well-formed intrinsic matrix: {np.round(k, 4).tolist()}; '
                         'expected [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy, cx, cy > 0 (in pixels)')
    m = np.asarray(lidar2cam, dtype=np.float64)
    rot, t = m[:3, :3], m[:3, 3]
    err = float(np.abs(rot @ rot.T - np.eye(3)).max())
    if err > rotation_tol:
        scale = float(np.cbrt(abs(np.linalg.det(rot))))
        raise ValueError(f'{where}: lidar2cam is not rigid: its rotation part is not orthonormal (max |R R^T - I| = '
                         f'{err:.3g}, scale ~{scale:.4g}; expected <= {rotation_tol}); expected a rotation and a '
                         'translation in metres')
    if np.linalg.det(rot) < 0:
        raise ValueError(f'{where}: lidar2cam is not rigid: its rotation is a reflection (det = -1); expected a '
                         'proper rotation (det = +1)')
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise ValueError(f'{where}: lidar2cam has last row {m[3].tolist()}; expected [0, 0, 0, 1] (a rigid transform)')
    dist = float(np.linalg.norm(t))
    if max_translation is not None and dist > max_translation:
        raise ValueError(f'{where}: lidar2cam translates by {dist:.4g} (translation {np.round(t, 4).tolist()}); '
                         f'expected at most {max_translation} m between a LiDAR and a camera of the same vehicle '
                         '(millimetres instead of metres?)')


__all__ = [
    'SampleError', 'PairingError', 'InfoFormatError', 'RobustDatasetMixin', 'TracedCompose', 'check_on_error',
    'sample_identity', 'diagnose_sample_files', 'describe_info_format', 'describe_info_layout',
    'check_object_pairing', 'check_scene_pairing', 'check_calibration', 'check_camera_calibration',
    'typed_sample_error'
]
