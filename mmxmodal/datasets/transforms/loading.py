"""Loading transforms for object data: point clouds (PLY / NPY / ModelNet text) and rendered views."""
import io
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS
from mmengine import fileio

_PLY_TYPES = {
    'char': 'i1', 'int8': 'i1', 'uchar': 'u1', 'uint8': 'u1', 'short': 'i2', 'int16': 'i2', 'ushort': 'u2',
    'uint16': 'u2', 'int': 'i4', 'int32': 'i4', 'uint': 'u4', 'uint32': 'u4', 'float': 'f4', 'float32': 'f4',
    'double': 'f8', 'float64': 'f8',
}


def read_ply_vertices(data: bytes, path: str = '<bytes>') -> np.ndarray:
    """Parse the vertex element of a PLY file (ascii, binary_little_endian or binary_big_endian).

    Args:
        data: the whole file content; path: only used in error messages.
    Returns:
        A structured array (num_vertices,) with one field per scalar vertex property.
    """
    end = data.find(b'end_header')
    if not data.startswith(b'ply') or end < 0:
        raise ValueError(f'{path}: not a PLY file (no "ply" magic / "end_header")')
    body_start = data.index(b'\n', end) + 1
    fmt, elements = None, []  # [name, count, [(prop, dtype) | None for list]]
    for line in data[:end].decode('ascii', 'replace').splitlines():
        tok = line.split()
        if not tok or tok[0] in ('comment', 'obj_info', 'ply'):
            continue
        if tok[0] == 'format':
            fmt = tok[1]
        elif tok[0] == 'element':
            elements.append([tok[1], int(tok[2]), []])
        elif tok[0] == 'property':
            if not elements:
                raise ValueError(f'{path}: PLY property before any element')
            if tok[1] == 'list':
                elements[-1][2].append((tok[-1], None))
            elif tok[1] in _PLY_TYPES:
                elements[-1][2].append((tok[2], _PLY_TYPES[tok[1]]))
            else:
                raise ValueError(f'{path}: unknown PLY property type {tok[1]!r}')
    if fmt not in ('ascii', 'binary_little_endian', 'binary_big_endian'):
        raise ValueError(f'{path}: unsupported PLY format {fmt!r}')
    names = [e[0] for e in elements]
    if 'vertex' not in names:
        raise ValueError(f'{path}: PLY file has no vertex element')
    body = data[body_start:]
    if fmt == 'ascii':
        lines = body.decode('ascii', 'replace').splitlines()
        skip = sum(e[1] for e in elements[:names.index('vertex')])
        _, count, props = elements[names.index('vertex')]
        if any(t is None for _, t in props):
            raise ValueError(f'{path}: list properties in the PLY vertex element are not supported')
        rows = lines[skip:skip + count]
        if len(rows) < count:
            raise ValueError(f'{path}: truncated PLY file: {len(rows)} of {count} vertex rows')
        try:
            table = np.array([r.split() for r in rows], dtype=np.float64)
        except ValueError as e:
            raise ValueError(f'{path}: malformed PLY vertex rows ({e})') from None
        if table.ndim != 2 or table.shape[1] != len(props):
            raise ValueError(f'{path}: PLY vertex rows do not have {len(props)} values')
        out = np.empty(count, dtype=[(n, t) for n, t in props])
        for k, (n, _) in enumerate(props):
            out[n] = table[:, k]
        return out
    endian = '<' if fmt == 'binary_little_endian' else '>'
    offset = 0
    for name, count, props in elements:
        if any(t is None for _, t in props):
            raise ValueError(f'{path}: binary PLY with list properties before/in the vertex element is not '
                             f'supported (element {name!r})')
        dtype = np.dtype([(n, endian + t) for n, t in props])
        if name == 'vertex':
            need = offset + count * dtype.itemsize
            if len(body) < need:
                raise ValueError(f'{path}: truncated PLY file: {len(body)} body bytes, the {count} vertices '
                                 f'need {need}')
            return np.frombuffer(body, dtype, count, offset).copy()
        offset += count * dtype.itemsize
    raise AssertionError('unreachable')


def load_points_file(path: str, backend_args: Optional[dict] = None) -> np.ndarray:
    """Read an object point cloud as float32 (N, C): xyz, then nx ny nz when the file has normals.

    Supports ``.ply`` (x y z [nx ny nz] vertex properties), ``.npy`` (N, >=3) and ``.txt`` (ModelNet40
    ``modelnet40_normal_resampled`` comma-separated ``x,y,z,nx,ny,nz`` rows, or whitespace-separated). Errors
    (missing / truncated / malformed / non-finite content) name the file.
    """
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'point cloud file not found: {path}') from None
    ext = osp.splitext(path)[1].lower()
    if ext == '.ply':
        v = read_ply_vertices(data, path)
        names = v.dtype.names
        if not all(k in names for k in 'xyz'):
            raise ValueError(f'{path}: PLY vertices have no x/y/z properties (found {names})')
        cols = ['x', 'y', 'z'] + (['nx', 'ny', 'nz'] if all(k in names for k in ('nx', 'ny', 'nz')) else [])
        points = np.stack([v[c] for c in cols], 1)
    elif ext == '.npy':
        try:
            points = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as e:  # noqa: BLE001  (numpy raises ValueError/EOFError/OSError for bad files)
            raise ValueError(f'{path}: cannot read .npy point cloud ({e})') from None
    elif ext == '.txt':
        text = data.decode('ascii', 'replace')
        delim = ',' if ',' in text[:1000] else None
        try:
            points = np.loadtxt(io.StringIO(text), delimiter=delim, dtype=np.float64, ndmin=2)
        except ValueError as e:
            raise ValueError(f'{path}: malformed point text file ({e})') from None
    else:
        raise ValueError(f'{path}: unsupported point cloud extension {ext!r} (.ply, .npy, .txt)')
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3 or points.shape[0] == 0:
        raise ValueError(f'{path}: expected a non-empty (N, >=3) point array, got shape {points.shape}')
    points = points.astype(np.float32)
    if not np.isfinite(points).all():
        raise ValueError(f'{path}: point cloud contains NaN/inf values')
    return points


def _select_columns(points: np.ndarray, use_normals: bool, where: str) -> np.ndarray:
    if use_normals:
        if points.shape[1] < 6:
            raise ValueError(f'{where}: use_normals=True but the points have only {points.shape[1]} columns')
        return np.ascontiguousarray(points[:, :6], np.float32)
    return np.ascontiguousarray(points[:, :3], np.float32)


@TRANSFORMS.register_module()
class LoadObjectPoints(BaseTransform):
    """Load an object point cloud into ``results['points']``: np.float32 (N, 3) xyz or (N, 6) xyz + normals.

    Reads ``results['pts_path']`` (.ply ascii/binary, .npy, ModelNet40 normal-resampled .txt), or passes through
    ``results['points']`` when already present (h5-backed datasets). Points stay in the object frame (y-up).

    Args:
        use_normals: keep the normals (error if the source has none).
        num_points: keep the first ``num_points`` points (as PointNet++ does for ModelNet); None keeps all.
        backend_args: mmengine file backend arguments.
    """

    def __init__(self, use_normals: bool = False, num_points: Optional[int] = None,
                 backend_args: Optional[dict] = None) -> None:
        self.use_normals = use_normals
        self.num_points = num_points
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        if results.get('points') is not None:
            where = results.get('pts_path') or f'sample {results.get("sample_idx")}'
            points = np.asarray(results['points'])
            if points.ndim != 2 or points.shape[1] < 3:
                raise ValueError(f'{where}: expected points (N, >=3), got {points.shape}')
            if not np.isfinite(points).all():
                raise ValueError(f'{where}: point cloud contains NaN/inf values')
        elif results.get('pts_path'):
            where = results['pts_path']
            points = load_points_file(where, self.backend_args)
        else:
            raise KeyError('LoadObjectPoints needs results["pts_path"] or results["points"]')
        points = _select_columns(points, self.use_normals, where)
        if self.num_points is not None:
            if len(points) < self.num_points:
                raise ValueError(f'{where}: {len(points)} points < num_points={self.num_points}')
            points = points[:self.num_points]
        results['points'] = points
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(use_normals={self.use_normals}, num_points={self.num_points}, '
                f'backend_args={self.backend_args})')


def load_rgb_image(path: str, backend_args: Optional[dict] = None,
                   alpha_background: Optional[Tuple[int, int, int]] = (255, 255, 255)) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); RGBA (e.g. real ShapeNetRendering) is composited onto
    ``alpha_background`` (None: alpha dropped, like PIL ``convert('RGB')``). Errors name the file."""
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'rendered image not found: {path}') from None
    img = mmcv.imfrombytes(data, flag='unchanged', channel_order='bgr') if data else None
    if img is None:
        raise ValueError(f'{path}: cannot decode image (empty, truncated or not an image)')
    from .validate import image_file_problem
    problem = image_file_problem(path, data[-64:])
    if problem:
        raise ValueError(f'{path}: {problem}; expected a complete image file')
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        rgb = img[..., 2::-1].astype(np.float32)
        if alpha_background is not None:
            a = img[..., 3:4].astype(np.float32) / 255.0
            rgb = rgb * a + np.asarray(alpha_background, np.float32) * (1 - a)
        return np.rint(rgb).astype(np.uint8)
    return np.ascontiguousarray(img[..., ::-1])


@TRANSFORMS.register_module()
class LoadRenderedImage(BaseTransform):
    """Load one (or all) of the rendered views listed in ``results['img_paths']``.

    Sets ``results['img']`` RGB uint8 (H, W, 3), ``results['img_path']`` (str), ``results['img_shape']`` and
    ``results['ori_shape']`` (H, W), and ``results['view_idx']``. With ``choice='all'``: ``img`` is a list of V
    (H, W, 3) arrays (what ``PackObjectInputs`` stacks to (V, 3, H, W)) and ``img_path`` / ``view_idx`` are lists.

    Args:
        choice: 'random' (training; numpy global RNG, seeded per worker by mmengine), 'first', or 'all'.
        alpha_background: RGB that transparent pixels of RGBA renders are composited onto (None: drop alpha).
        backend_args: mmengine file backend arguments.
    """

    def __init__(self, choice: str = 'random', alpha_background: Optional[Sequence[int]] = (255, 255, 255),
                 backend_args: Optional[dict] = None) -> None:
        if choice not in ('random', 'first', 'all'):
            raise ValueError(f"choice must be 'random', 'first' or 'all', got {choice!r}")
        self.choice = choice
        self.alpha_background = None if alpha_background is None else tuple(alpha_background)
        self.backend_args = backend_args

    def _load(self, path: str) -> np.ndarray:
        return load_rgb_image(path, self.backend_args, self.alpha_background)

    def transform(self, results: dict) -> dict:
        paths: List[str] = list(results.get('img_paths') or [])
        if not paths:
            raise ValueError(f'sample {results.get("sample_idx")} '
                             f'({results.get("pts_path", "in-memory points")}): no img_paths to load')
        if self.choice == 'all':
            imgs = [self._load(p) for p in paths]
            shapes = {im.shape for im in imgs}
            if len(shapes) != 1:
                raise ValueError(f'views of sample {results.get("sample_idx")} differ in size: {sorted(shapes)}')
            results['img'] = imgs
            results['img_path'] = paths
            results['view_idx'] = list(range(len(paths)))
            hw = imgs[0].shape[:2]
        else:
            k = int(np.random.randint(len(paths))) if self.choice == 'random' else 0
            results['img'] = self._load(paths[k])
            results['img_path'] = paths[k]
            results['view_idx'] = k
            hw = results['img'].shape[:2]
        results['img_shape'] = hw
        results['ori_shape'] = hw
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(choice={self.choice!r}, alpha_background={self.alpha_background}, '
                f'backend_args={self.backend_args})')
