"""Synthetic paired objects (point cloud + rendered views) written in real on-disk layouts.

Every object is a composition of analytic primitives (boxes, frusta/cylinders/cones, ellipsoids, tori) with random
proportions, in the ShapeNet convention: y-up, front facing +z, centred on its bounding box and scaled so that its
farthest vertex lies on the unit sphere. For each object the generator samples ``num_points`` surface points with
normals (area-weighted, interior points of overlapping parts removed) and renders ``num_views`` RGB views with a
numpy z-buffer rasteriser (perspective camera, Phong-interpolated normals, Lambert + ambient shading, gradient
background).

Layout written under ``out_dir`` (every file is byte-identical for the same arguments and seed)::

    ShapeNet/<synset>/<object_id>.ply                 # pretraining set (``--num-objects``), CrossPoint layout:
                                                      #   binary_little_endian PLY, float x y z nx ny nz
    ShapeNetRendering/<synset>/<object_id>/rendering/
        00.png ... NN.png                             # RGB uint8 renders (image_size x image_size)
        renderings.txt                                # one file name per line, as in real ShapeNetRendering
        rendering_metadata.txt                        # per view: azimuth elevation in_plane distance fov
                                                      #   (degrees; distance in unit-sphere units, see Camera)
    modelnet40_ply_hdf5_2048/                         # labelled set in the ModelNet40 h5 layout
        ply_data_train0.h5, ply_data_test0.h5, ...    #   'data' (N, P, 3) f4, 'normal' (N, P, 3) f4,
                                                      #   'label' (N, 1) u1; at most 2048 shapes per file
        train_files.txt, test_files.txt               #   'data/modelnet40_ply_hdf5_2048/ply_data_*.h5' lines
        shape_names.txt                               #   one class name per line, label = line index
    modelnet40_views/<split>/<row:05d>/NN.png         # views of the labelled objects (Cross-MoST); <row> is the
        (+ renderings.txt, rendering_metadata.txt)    #   row of the object in the concatenated <split>_files.txt h5
    ScanObjectNN/main_split/                          # partial "scans" of the labelled objects (one random
        training_objectdataset.h5, test_objectdataset.h5   # viewpoint, z-buffer visibility, noise): 'data'
        shape_names.txt                               #   (N, P, 3) f4, 'label' (N,) i8
    meta.json                                         # generator arguments, classes, synsets, counts

The train and test rows of the labelled set are different object instances (disjoint random streams), and both are
disjoint from the ShapeNet pretraining objects.

Object ids are 32 hex digits like ShapeNet's; synset ids are the real ShapeNetCore ids of the classes (``monitor``
is ShapeNet's ``display``).

Usage::

    python tools/create_synthetic_data.py objects --out-dir data/synthetic_objects --num-objects 200 --seed 0
"""
import colorsys
import hashlib
import json
import os
import os.path as osp
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmxmodal.datasets.shapenet_render import SHAPENET_SYNSETS  # noqa: F401  (the real ShapeNetCore names)

# --------------------------------------------------------------------------------------------- classes and synsets

#: Generated class name -> ShapeNetCore synset id (label order of the labelled set = this order).
CLASS_SYNSETS: Dict[str, str] = {
    'airplane': '02691156', 'bed': '02818832', 'bottle': '02876657', 'car': '02958343',
    'chair': '03001627', 'guitar': '03467517', 'lamp': '03636649', 'laptop': '03642806',
    'monitor': '03211117', 'mug': '03797390', 'sofa': '04256520', 'table': '04379243',
}
OBJECT_CLASSES: Tuple[str, ...] = tuple(CLASS_SYNSETS)

#: Synsets of generated classes that are not ShapeNetCore categories: their WordNet 3.0 noun ids (the ids
#: ShapeNetCore and ShapeNetSem name their categories by).
WORDNET_SYNSETS: Dict[str, str] = {
    '04326896': 'stool', '03147509': 'cup', '04522168': 'vase', '04490091': 'truck', '04520170': 'van',
    '03179701': 'desk',
}

#: The 'hard' class set: 32 classes in confusable families (same parts, overlapping proportions; one part or one
#: ratio tells the class). Label order of the labelled set = this order.
HARD_CLASS_SYNSETS: Dict[str, str] = {
    # seating
    'chair': '03001627', 'stool': '04326896', 'bench': '02828884', 'sofa': '04256520', 'bed': '02818832',
    # vessels
    'cup': '03147509', 'mug': '03797390', 'vase': '04522168', 'bottle': '02876657', 'jar': '03593526',
    'can': '02946921', 'bowl': '02880940', 'pot': '03991062', 'trash_bin': '02747177',
    # vehicles
    'car': '02958343', 'truck': '04490091', 'bus': '02924116', 'van': '04520170',
    # furniture with a top or shelves
    'table': '04379243', 'desk': '03179701', 'bookshelf': '02871439', 'cabinet': '02933112',
    'file_cabinet': '03337140',
    # boxes with a front panel
    'microwave': '03761084', 'washer': '04554684', 'stove': '04330267', 'loudspeaker': '03691459',
    'monitor': '03211117',
    # singletons
    'airplane': '02691156', 'guitar': '03467517', 'lamp': '03636649', 'laptop': '03642806',
}
HARD_OBJECT_CLASSES: Tuple[str, ...] = tuple(HARD_CLASS_SYNSETS)
#: Every class the generator can build -> its synset.
ALL_CLASS_SYNSETS: Dict[str, str] = {**CLASS_SYNSETS, **HARD_CLASS_SYNSETS}
#: Named class sets (``--class-set``): 'basic' (the default, 12 distinct classes) and 'hard'.
CLASS_SETS: Dict[str, Tuple[str, ...]] = {'basic': OBJECT_CLASSES, 'hard': HARD_OBJECT_CLASSES}

_STREAM_SHAPENET, _STREAM_CLS_TRAIN, _STREAM_CLS_TEST = 0, 1, 2
_H5_CHUNK = 2048  # shapes per ply_data_*.h5 file, as in modelnet40_ply_hdf5_2048


# ------------------------------------------------------------------------------------------- canonical primitives
def _grid_faces(n_u: int, n_v: int, wrap_u: bool, wrap_v: bool) -> np.ndarray:
    """Two triangles per cell of a (n_u, n_v) vertex grid; vertex (i, j) has index i * n_v + j."""
    iu = np.arange(n_u if wrap_u else n_u - 1)
    jv = np.arange(n_v if wrap_v else n_v - 1)
    i, j = np.meshgrid(iu, jv, indexing='ij')
    i1, j1 = (i + 1) % n_u, (j + 1) % n_v
    a, b, c, d = i * n_v + j, i1 * n_v + j, i1 * n_v + j1, i * n_v + j1
    return np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3),
                           np.stack([a, c, d], -1).reshape(-1, 3)])


@lru_cache(maxsize=None)
def _box_mesh() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit cube [-0.5, 0.5]^3: 24 vertices (flat normals per side), 12 outward counter-clockwise faces."""
    verts, normals, faces = [], [], []
    for axis in range(3):
        ea, eb = np.eye(3)[(axis + 1) % 3], np.eye(3)[(axis + 2) % 3]
        for sign in (-1.0, 1.0):
            n = np.eye(3)[axis] * sign
            corners = [0.5 * n + 0.5 * (sa * ea + sb * eb) for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            if sign < 0:
                corners = corners[::-1]
            base = len(verts)
            verts += corners
            normals += [n] * 4
            faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    return np.array(verts), np.array(normals), np.array(faces)


@lru_cache(maxsize=None)
def _frustum_mesh(top: float, sections: int = 24) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frustum along z in [-0.5, 0.5]: radius 1 at the bottom, ``top`` at the top (1: cylinder, 0: cone)."""
    th = 2 * np.pi * np.arange(sections) / sections
    ring = np.stack([np.cos(th), np.sin(th), np.zeros_like(th)], 1)
    bottom = ring + [0, 0, -0.5]
    upper = ring * [top, top, 1] + [0, 0, 0.5]
    side_n = np.stack([np.cos(th), np.sin(th), np.full_like(th, 1.0 - top)], 1)
    side_n /= np.linalg.norm(side_n, axis=1, keepdims=True)
    i = np.arange(sections)
    j = (i + 1) % sections
    n = sections
    faces = [np.stack([i, j, n + j], 1), np.stack([i, n + j, n + i], 1)]
    verts, normals = [bottom, upper], [side_n, side_n]
    # bottom cap (ring copy + centre), facing -z
    base = 2 * n
    verts += [bottom, [[0, 0, -0.5]]]
    normals += [np.tile([0, 0, -1.0], (n, 1)), [[0, 0, -1.0]]]
    faces.append(np.stack([np.full(n, base + n), base + j, base + i], 1))
    if top > 1e-6:  # top cap, facing +z
        base = 3 * n + 1
        verts += [upper, [[0, 0, 0.5]]]
        normals += [np.tile([0, 0, 1.0], (n, 1)), [[0, 0, 1.0]]]
        faces.append(np.stack([np.full(n, base + n), base + i, base + j], 1))
    return np.concatenate(verts).astype(np.float64), np.concatenate(normals), np.concatenate(faces)


@lru_cache(maxsize=None)
def _sphere_mesh(n_lat: int = 10, n_lon: int = 20) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit UV sphere (poles on z); normals = positions."""
    phi = np.linspace(0, np.pi, n_lat + 1)
    th = np.linspace(0, 2 * np.pi, n_lon + 1)
    p, t = np.meshgrid(phi, th, indexing='ij')
    verts = np.stack([np.sin(p) * np.cos(t), np.sin(p) * np.sin(t), np.cos(p)], -1).reshape(-1, 3)
    faces = _grid_faces(n_lat + 1, n_lon + 1, False, False)
    return verts, verts.copy(), faces


@lru_cache(maxsize=None)
def _torus_mesh(minor: float, n_major: int = 20, n_minor: int = 10) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Torus around z with major radius 1 and minor radius ``minor``."""
    u = 2 * np.pi * np.arange(n_major) / n_major
    v = 2 * np.pi * np.arange(n_minor) / n_minor
    uu, vv = np.meshgrid(u, v, indexing='ij')
    normals = np.stack([np.cos(vv) * np.cos(uu), np.cos(vv) * np.sin(uu), np.sin(vv)], -1).reshape(-1, 3)
    centre = np.stack([np.cos(uu), np.sin(uu), np.zeros_like(uu)], -1).reshape(-1, 3)
    return centre + minor * normals, normals, _grid_faces(n_major, n_minor, True, True)


def _canonical_mesh(kind: str, param: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    if kind == 'box':
        return _box_mesh()
    if kind == 'frustum':
        return _frustum_mesh(round(float(param), 4))
    if kind == 'sphere':
        return _sphere_mesh()
    if kind == 'torus':
        return _torus_mesh(round(float(param), 4))
    raise ValueError(f'unknown primitive {kind!r}')


def _inside_canonical(kind: str, param: float, q: np.ndarray, eps: float = 2e-3) -> np.ndarray:
    """Whether canonical-frame points q (N, 3) lie strictly inside the canonical primitive (by ``eps``)."""
    if kind == 'box':
        return np.all(np.abs(q) < 0.5 - eps, axis=1)
    if kind == 'frustum':
        radius = 1.0 + (param - 1.0) * (q[:, 2] + 0.5)
        return (np.abs(q[:, 2]) < 0.5 - eps) & (np.linalg.norm(q[:, :2], axis=1) < radius - eps)
    if kind == 'sphere':
        return np.linalg.norm(q, axis=1) < 1.0 - eps
    if kind == 'torus':
        rho = np.linalg.norm(q[:, :2], axis=1)
        return (rho - 1.0) ** 2 + q[:, 2] ** 2 < (param - eps) ** 2
    raise ValueError(f'unknown primitive {kind!r}')


# ---------------------------------------------------------------------------------------------------- parts / object
@dataclass
class Part:
    """One primitive: world point = ``A @ canonical + t``; ``param``: frustum top ratio or torus minor radius."""
    kind: str
    A: np.ndarray
    t: np.ndarray
    color: np.ndarray
    param: float = 0.0


def _rot_to(direction: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) taking +z to the unit vector ``direction``."""
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(z, d), float(z @ d)
    if np.linalg.norm(v) < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _rot_axis(axis: str, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    if axis == 'x':
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == 'y':
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


class _Parts:
    """Small builder of primitive compositions (units arbitrary; normalised afterwards)."""

    def __init__(self) -> None:
        self.parts: List[Part] = []

    def box(self, center, size, color, rot=None) -> None:
        rot = np.eye(3) if rot is None else rot
        self.parts.append(Part('box', rot @ np.diag(size), np.asarray(center, float), np.asarray(color)))

    def frustum(self, p0, p1, r0, r1, color) -> None:
        """Frustum from p0 (radius r0) to p1 (radius r1); r1 == r0: cylinder, r1 == 0: cone."""
        p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
        length = np.linalg.norm(p1 - p0)
        A = _rot_to(p1 - p0) @ np.diag([r0, r0, length])
        self.parts.append(Part('frustum', A, (p0 + p1) / 2, np.asarray(color), float(r1 / r0)))

    def flare(self, p0, p1, r0, r1, color) -> None:
        """:meth:`frustum`, built from its wide end when it strongly flares (the same solid): the canonical radius
        stays <= 1.25, so the 24-gon stays close to the analytic surface."""
        if r1 > 1.25 * r0:
            p0, p1, r0, r1 = p1, p0, r1, r0
        self.frustum(p0, p1, r0, r1, color)

    def cyl(self, p0, p1, r, color) -> None:
        self.frustum(p0, p1, r, r, color)

    def ellipsoid(self, center, radii, color, rot=None) -> None:
        rot = np.eye(3) if rot is None else rot
        self.parts.append(Part('sphere', rot @ np.diag(radii), np.asarray(center, float), np.asarray(color)))

    def torus(self, center, major, minor, color, rot=None) -> None:
        rot = np.eye(3) if rot is None else rot
        self.parts.append(Part('torus', rot * major, np.asarray(center, float), np.asarray(color), minor / major))


@dataclass
class SyntheticObject:
    """A normalised object: triangle mesh with per-vertex normals and per-part colours (world = object frame).

    Attributes:
        cls_name: class name (key of ``CLASS_SYNSETS``).
        parts: the primitives, already normalised (farthest vertex at distance 1 from the bbox centre = origin).
        vertices: (V, 3) float64; vertex_normals: (V, 3) unit; faces: (F, 3) int64, outward counter-clockwise;
        face_part: (F,) part index of each face; part_colors: (P, 3) RGB in [0, 1].
    """
    cls_name: str
    parts: List[Part]
    vertices: np.ndarray = field(repr=False)
    vertex_normals: np.ndarray = field(repr=False)
    faces: np.ndarray = field(repr=False)
    face_part: np.ndarray = field(repr=False)
    part_colors: np.ndarray = field(repr=False)

    @property
    def mesh(self):
        """The object as a ``trimesh.Trimesh`` (face colours from the parts)."""
        import trimesh
        colors = (np.clip(self.part_colors[self.face_part], 0, 1) * 255).astype(np.uint8)
        return trimesh.Trimesh(self.vertices, self.faces, vertex_normals=self.vertex_normals,
                               face_colors=colors, process=False)


def _assemble(parts: List[Part]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    verts, normals, faces, face_part = [], [], [], []
    offset = 0
    for k, part in enumerate(parts):
        v, n, f = _canonical_mesh(part.kind, part.param)
        inv_t = np.linalg.inv(part.A)
        nw = n @ inv_t  # normals transform with the inverse transpose
        nw /= np.linalg.norm(nw, axis=1, keepdims=True) + 1e-12
        if np.linalg.det(part.A) < 0:
            f = f[:, ::-1]
        verts.append(v @ part.A.T + part.t)
        normals.append(nw)
        faces.append(f + offset)
        face_part.append(np.full(len(f), k))
        offset += len(v)
    return (np.concatenate(verts), np.concatenate(normals), np.concatenate(faces).astype(np.int64),
            np.concatenate(face_part))


def _finalise(cls_name: str, builder: _Parts) -> SyntheticObject:
    parts = builder.parts
    verts, _, _, _ = _assemble(parts)
    centre = (verts.min(0) + verts.max(0)) / 2
    scale = 1.0 / np.linalg.norm(verts - centre, axis=1).max()
    parts = [Part(p.kind, p.A * scale, (p.t - centre) * scale, p.color, p.param) for p in parts]
    verts, normals, faces, face_part = _assemble(parts)
    return SyntheticObject(cls_name, parts, verts, normals, faces, face_part, np.stack([p.color for p in parts]))


# ------------------------------------------------------------------------------------------------- class builders
def _color(rng: np.random.Generator, hue=None, sat=(0.35, 0.85), val=(0.45, 0.9)) -> np.ndarray:
    h = rng.uniform(0, 1) if hue is None else (rng.uniform(*hue) % 1.0)
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val)))


def _wood(rng):
    return _color(rng, hue=(0.05, 0.11), sat=(0.4, 0.75), val=(0.35, 0.75))


def _dark(rng):
    return _color(rng, sat=(0.0, 0.2), val=(0.08, 0.22))


def _light(rng):
    return _color(rng, sat=(0.0, 0.12), val=(0.82, 0.95))


def _build_chair(rng):
    b = _Parts()
    w, d, sh = rng.uniform(0.8, 1.15), rng.uniform(0.75, 1.1), rng.uniform(0.75, 1.1)
    t = rng.uniform(0.06, 0.14)
    frame, seat = (_wood(rng) if rng.random() < 0.6 else _color(rng)), _color(rng)
    b.box([0, sh, 0], [w, t, d], seat)
    inset, lr = rng.uniform(0.03, 0.1), rng.uniform(0.03, 0.06)
    round_legs = rng.random() < 0.5
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w / 2 - inset - lr), sz * (d / 2 - inset - lr)
            splay = rng.uniform(0.0, 0.06)
            if round_legs:
                b.cyl([x + sx * splay, 0, z + sz * splay], [x, sh, z], lr, frame)
            else:
                b.box([x, sh / 2, z], [2 * lr, sh + t / 2, 2 * lr], frame)
    bh, tilt = rng.uniform(0.6, 1.25), rng.uniform(0, 16)
    rot = _rot_axis('x', -tilt)
    bt = rng.uniform(0.05, 0.1)
    back_c = np.array([0, sh, -d / 2 + bt / 2]) + rot @ [0, bh / 2, 0]
    if rng.random() < 0.35:  # slatted back: posts + top rail + slats
        for sx in (-1, 1):
            b.box(back_c + [sx * (w / 2 - lr), 0, 0], [2 * lr, bh, bt], frame, rot)
        b.box(back_c + rot @ [0, bh / 2 - 0.06, 0], [w, 0.12, bt], frame, rot)
        n_slats = int(rng.integers(2, 5))
        for k in range(n_slats):
            x = (-w / 2 + w * (k + 1) / (n_slats + 1)) * 0.9
            b.box(back_c + [x, 0, 0], [0.05, bh, bt * 0.7], frame, rot)
    else:
        b.box(back_c, [w, bh, bt], seat, rot)
    if rng.random() < 0.35:  # armrests
        ah = rng.uniform(0.2, 0.35)
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.03)
            b.box([x, sh + ah, 0], [0.07, 0.05, d * 0.85], frame)
            b.box([x, sh + ah / 2, d * 0.3], [0.05, ah, 0.05], frame)
    return b


def _build_table(rng):
    b = _Parts()
    h, t = rng.uniform(0.65, 1.0), rng.uniform(0.04, 0.1)
    top_c, leg_c = (_wood(rng), _wood(rng)) if rng.random() < 0.6 else (_color(rng), _dark(rng))
    if rng.random() < 0.35:  # round table on a pedestal or three legs
        r = rng.uniform(0.5, 0.9)
        b.cyl([0, h - t, 0], [0, h, 0], r, top_c)
        if rng.random() < 0.6:
            b.cyl([0, 0.02, 0], [0, h - t, 0], rng.uniform(0.05, 0.1), leg_c)
            b.cyl([0, 0, 0], [0, 0.04, 0], r * rng.uniform(0.4, 0.7), leg_c)
        else:
            for k in range(3):
                a = 2 * np.pi * k / 3
                p = np.array([np.cos(a), 0, np.sin(a)]) * r * 0.7
                b.cyl(p * 1.1, p * 0.9 + [0, h - t, 0], 0.04, leg_c)
    else:
        w, d = rng.uniform(1.2, 2.2), rng.uniform(0.6, 1.2)
        b.box([0, h - t / 2, 0], [w, t, d], top_c)
        lr, inset = rng.uniform(0.03, 0.07), rng.uniform(0.03, 0.15)
        for sx in (-1, 1):
            for sz in (-1, 1):
                x, z = sx * (w / 2 - inset - lr), sz * (d / 2 - inset - lr)
                if rng.random() < 0.5:
                    b.cyl([x, 0, z], [x, h - t / 2, z], lr, leg_c)
                else:
                    b.box([x, (h - t / 2) / 2, z], [2 * lr, h - t / 2, 2 * lr], leg_c)
        if rng.random() < 0.4:  # lower shelf
            b.box([0, h * 0.25, 0], [w - 2 * inset, 0.03, d - 2 * inset], top_c)
    return b


def _build_car(rng):
    b = _Parts()
    length, width = rng.uniform(1.8, 2.5), rng.uniform(0.8, 1.0)
    wr, clearance = rng.uniform(0.15, 0.22), rng.uniform(0.05, 0.12)
    bh = rng.uniform(0.25, 0.45)
    body, glass, tyre = _color(rng, sat=(0.5, 0.95), val=(0.4, 0.95)), _color(rng, hue=(0.5, 0.65), sat=(0.2, 0.5),
                                                                                val=(0.2, 0.45)), _dark(rng)
    y0 = wr + clearance
    b.box([0, y0, 0], [width, bh, length], body)
    cl, ch = length * rng.uniform(0.35, 0.65), rng.uniform(0.22, 0.4)
    cz = rng.uniform(-0.2, 0.1) * length
    b.box([0, y0 + bh / 2 + ch / 2 - 0.01, cz], [width * rng.uniform(0.8, 0.92), ch, cl], glass)
    b.box([0, y0 + bh / 2 + ch - 0.01, cz], [width * 0.8, 0.03, cl * 0.9], body)  # roof
    wb = length * rng.uniform(0.28, 0.38)
    for sx in (-1, 1):
        for sz in (-1, 1):
            c = np.array([sx * (width / 2 - 0.03), wr, sz * wb])
            b.cyl(c - [0.08, 0, 0], c + [0.08, 0, 0], wr, tyre)
    if rng.random() < 0.3:  # spoiler
        b.box([0, y0 + bh / 2 + 0.08, -length / 2 + 0.08], [width * 0.9, 0.03, 0.12], body)
    return b


def _build_airplane(rng):
    b = _Parts()
    length, r = rng.uniform(2.0, 3.0), rng.uniform(0.1, 0.18)
    hull, wing_c = _light(rng) if rng.random() < 0.6 else _color(rng), _color(rng, sat=(0.0, 0.4), val=(0.5, 0.9))
    zn, zt = length / 2, -length / 2
    b.cyl([0, 0, zt * 0.6], [0, 0, zn * 0.7], r, hull)
    b.frustum([0, 0, zn * 0.7 - 0.01], [0, 0, zn], r, r * rng.uniform(0.0, 0.3), hull)
    b.frustum([0, 0, zt * 0.6 + 0.01], [0, 0, zt], r, r * rng.uniform(0.15, 0.4), hull)
    span, chord = rng.uniform(1.6, 3.0), rng.uniform(0.25, 0.5)
    sweep, dihedral = rng.uniform(0, 35), rng.uniform(-3, 8)
    wz = rng.uniform(-0.1, 0.15) * length
    wy = rng.uniform(-0.6, 0.6) * r
    for sx in (-1, 1):
        rot = _rot_axis('y', sx * sweep) @ _rot_axis('z', sx * dihedral)
        b.box(np.array([0, wy, wz]) + rot @ [sx * span / 4, 0, 0], [span / 2, 0.03, chord], wing_c, rot)
        if rng.random() < 0.7:  # engine under each wing
            e = np.array([0, wy, wz]) + rot @ [sx * span * 0.18, 0, 0] + [0, -0.1, 0.1]
            b.cyl(e - [0, 0, 0.22], e + [0, 0, 0.22], 0.07, hull)
    tz = zt * 0.85
    fh = rng.uniform(0.3, 0.55)
    b.box([0, r + fh / 2 - 0.04, tz], [0.03, fh, chord * 0.8], wing_c, _rot_axis('x', -rng.uniform(10, 35)))
    ts = rng.uniform(0.5, 0.9)
    b.box([0, 0, tz], [ts, 0.025, chord * 0.55], wing_c)
    return b


def _build_lamp(rng):
    b = _Parts()
    metal, shade = _color(rng, sat=(0.0, 0.3), val=(0.2, 0.8)), _color(rng, val=(0.6, 0.95))
    if rng.random() < 0.5:
        br = rng.uniform(0.25, 0.45)
        b.cyl([0, 0, 0], [0, rng.uniform(0.04, 0.1), 0], br, metal)
    else:
        bs = rng.uniform(0.4, 0.7)
        b.box([0, 0.04, 0], [bs, 0.08, bs], metal)
    h = rng.uniform(0.9, 1.8)
    pr = rng.uniform(0.02, 0.04)
    if rng.random() < 0.6:  # straight floor/table lamp with a shade
        b.cyl([0, 0.02, 0], [0, h, 0], pr, metal)
        sr, sh = rng.uniform(0.25, 0.5), rng.uniform(0.25, 0.5)
        b.frustum([0, h - sh * 0.3, 0], [0, h + sh * 0.7, 0], sr, sr * rng.uniform(0.4, 0.8), shade)
    else:  # desk lamp: bent arm + cone head
        elbow = np.array([rng.uniform(-0.2, 0.2), h * rng.uniform(0.5, 0.8), rng.uniform(-0.1, 0.1)])
        tip = elbow + [rng.uniform(0.3, 0.7), rng.uniform(0.0, 0.4), 0]
        b.cyl([0, 0.02, 0], elbow, pr, metal)
        b.ellipsoid(elbow, [pr * 1.6] * 3, metal)
        b.cyl(elbow, tip, pr, metal)
        head = tip + [0.05, -0.02, 0]
        b.frustum(head + [0, 0.08, 0], head - [0, rng.uniform(0.2, 0.35), 0], 0.05, rng.uniform(0.15, 0.22), shade)
    return b


def _build_mug(rng):
    b = _Parts()
    h, r = rng.uniform(0.8, 1.3), rng.uniform(0.35, 0.55)
    taper = rng.uniform(0.85, 1.2)
    body = _color(rng, val=(0.5, 0.95)) if rng.random() < 0.7 else _light(rng)
    b.frustum([0, 0, 0], [0, h, 0], r, r * taper, body)
    b.cyl([0, h - 0.02, 0], [0, h + 0.004, 0], r * taper * 0.88, _color(rng, hue=(0.05, 0.1), sat=(0.6, 0.9),
                                                                        val=(0.12, 0.3)))
    hr = rng.uniform(0.2, 0.32) * h
    b.torus([r * (1 + taper) / 2 + hr * 0.55, h * rng.uniform(0.45, 0.6), 0], hr, rng.uniform(0.04, 0.07), body)
    return b


def _build_bottle(rng):
    b = _Parts()
    r, hb = rng.uniform(0.2, 0.35), rng.uniform(0.8, 1.6)
    rn, hs, hn = rng.uniform(0.06, 0.11), rng.uniform(0.15, 0.45), rng.uniform(0.2, 0.45)
    glass = _color(rng, hue=(0.0, 1.0), sat=(0.4, 0.9), val=(0.3, 0.8))
    taper = rng.uniform(0.85, 1.05)
    b.frustum([0, 0, 0], [0, hb, 0], r, r * taper, glass)
    b.frustum([0, hb - 0.01, 0], [0, hb + hs, 0], r * taper, rn, glass)
    b.cyl([0, hb + hs - 0.01, 0], [0, hb + hs + hn, 0], rn, glass)
    b.cyl([0, hb + hs + hn - 0.02, 0], [0, hb + hs + hn + 0.08, 0], rn * 1.2, _color(rng))
    if rng.random() < 0.6:  # label band
        y = hb * rng.uniform(0.3, 0.6)
        b.cyl([0, y - hb * 0.15, 0], [0, y + hb * 0.15, 0], r * max(1.0, taper) + 0.01, _light(rng))
    return b


def _build_guitar(rng):
    b = _Parts()
    r1 = rng.uniform(0.35, 0.45)
    r2 = r1 * rng.uniform(0.65, 0.82)
    th = rng.uniform(0.1, 0.16)
    wood, neck_c = _wood(rng) if rng.random() < 0.7 else _color(rng), _wood(rng)
    y2 = r1 + r2 * rng.uniform(0.6, 0.9)
    b.cyl([0, r1, -th / 2], [0, r1, th / 2], r1, wood)
    b.cyl([0, y2, -th / 2], [0, y2, th / 2], r2, wood)
    b.cyl([0, y2 - r2 * 0.2, th / 2 - 0.01], [0, y2 - r2 * 0.2, th / 2 + 0.004], r2 * 0.35, _dark(rng))
    nl = rng.uniform(0.9, 1.3)
    ytop = y2 + r2 * 0.8
    b.box([0, ytop + nl / 2, 0], [0.09, nl, 0.05], neck_c)
    b.box([0, ytop + nl + 0.1, -0.02], [0.14, 0.22, 0.04], neck_c, _rot_axis('x', -rng.uniform(5, 15)))
    b.box([0, r1 * 0.6, th / 2], [0.25, 0.04, 0.02], _dark(rng))  # bridge
    return b


def _build_monitor(rng):
    b = _Parts()
    w = rng.uniform(1.2, 1.8)
    hgt = w * rng.uniform(0.5, 0.75)
    t = rng.uniform(0.04, 0.09)
    frame, panel = _color(rng, sat=(0.0, 0.25), val=(0.1, 0.8)), _color(rng, hue=(0.55, 0.7), sat=(0.3, 0.7),
                                                                         val=(0.15, 0.4))
    stand_h = rng.uniform(0.25, 0.5)
    cy = stand_h + hgt / 2
    b.box([0, cy, 0], [w, hgt, t], frame)
    b.box([0, cy, t / 2], [w * 0.93, hgt * 0.9, 0.012], panel)
    if rng.random() < 0.25:  # CRT-like back
        b.box([0, cy, -t / 2 - 0.2], [w * 0.7, hgt * 0.7, 0.4], frame)
    b.box([0, stand_h / 2 + 0.02, -t], [0.1, stand_h + 0.04, 0.05], frame)
    if rng.random() < 0.5:
        b.box([0, 0.02, -t], [w * rng.uniform(0.3, 0.5), 0.04, rng.uniform(0.25, 0.4)], frame)
    else:
        b.cyl([0, 0, -t], [0, 0.04, -t], rng.uniform(0.18, 0.3), frame)
    return b


def _build_laptop(rng):
    b = _Parts()
    w, d, t = rng.uniform(1.2, 1.6), rng.uniform(0.8, 1.05), rng.uniform(0.03, 0.06)
    shell, keys, screen = _color(rng, sat=(0.0, 0.3), val=(0.2, 0.85)), _dark(rng), _color(
        rng, hue=(0.5, 0.7), sat=(0.3, 0.8), val=(0.2, 0.5))
    b.box([0, t / 2, 0], [w, t, d], shell)
    b.box([0, t, 0.08], [w * 0.85, 0.01, d * 0.45], keys)
    ang = rng.uniform(95, 130)
    rot = _rot_axis('x', -(ang - 90))
    sd = d * rng.uniform(0.85, 1.0)
    hinge = np.array([0, t, -d / 2 + t / 2])
    b.box(hinge + rot @ [0, sd / 2, 0], [w, sd, t * 0.8], shell, rot)
    b.box(hinge + rot @ [0, sd / 2, t * 0.4], [w * 0.9, sd * 0.85, 0.01], screen, rot)
    return b


def _build_sofa(rng):
    b = _Parts()
    length, d = rng.uniform(1.6, 2.6), rng.uniform(0.8, 1.0)
    sh, base_h = rng.uniform(0.35, 0.5), rng.uniform(0.15, 0.3)
    fabric, legs = _color(rng, sat=(0.2, 0.7), val=(0.3, 0.85)), _dark(rng)
    leg = 0.08
    b.box([0, leg + base_h / 2, 0], [length, base_h, d], fabric)
    n_cush = int(rng.integers(1, 4))
    cw = length * 0.8 / n_cush
    for k in range(n_cush):
        x = -length * 0.4 + cw * (k + 0.5)
        b.box([x, leg + base_h + (sh - base_h) / 2, 0.05], [cw * 0.97, sh - base_h, d * 0.8], fabric)
    bh = rng.uniform(0.35, 0.65)
    b.box([0, leg + sh + bh / 2 - 0.05, -d / 2 + 0.1], [length, bh + 0.1, 0.2], fabric, _rot_axis('x', -8))
    ah = rng.uniform(0.1, 0.3)
    aw = rng.uniform(0.1, 0.22)
    for sx in (-1, 1):
        b.box([sx * (length / 2 - aw / 2), leg + (sh + ah) / 2, 0], [aw, sh + ah, d], fabric)
        for sz in (-1, 1):
            b.cyl([sx * (length / 2 - 0.1), 0, sz * (d / 2 - 0.1)], [sx * (length / 2 - 0.1), leg + 0.02,
                                                                      sz * (d / 2 - 0.1)], 0.035, legs)
    return b


def _build_bed(rng):
    b = _Parts()
    length, w = rng.uniform(1.9, 2.3), rng.uniform(0.9, 1.8)
    fh, mh = rng.uniform(0.15, 0.35), rng.uniform(0.15, 0.3)
    frame, sheet = _wood(rng) if rng.random() < 0.6 else _color(rng), _light(rng) if rng.random() < 0.5 else _color(
        rng, sat=(0.1, 0.5), val=(0.6, 0.95))
    leg = rng.uniform(0.05, 0.2)
    b.box([0, leg + fh / 2, 0], [w, fh, length], frame)
    b.box([0, leg + fh + mh / 2 - 0.02, 0.02], [w * 0.96, mh, length * 0.96], sheet)
    hh = rng.uniform(0.5, 1.0)
    b.box([0, (leg + fh + hh) / 2, -length / 2 - 0.03], [w * 1.02, leg + fh + hh, 0.07], frame)
    if rng.random() < 0.5:  # footboard
        fb = rng.uniform(0.15, 0.4)
        b.box([0, (leg + fh + fb) / 2, length / 2 + 0.03], [w * 1.02, leg + fh + fb, 0.06], frame)
    n_p = 2 if w > 1.3 else 1
    for k in range(n_p):
        x = 0 if n_p == 1 else (k - 0.5) * w * 0.5
        b.ellipsoid([x, leg + fh + mh + 0.03, -length / 2 + 0.25], [min(0.3, w / 2 / n_p * 0.8), 0.07, 0.16],
                    _light(rng))
    for sx in (-1, 1):
        for sz in (-1, 1):
            b.box([sx * (w / 2 - 0.05), (leg + 0.02) / 2, sz * (length / 2 - 0.05)], [0.08, leg + 0.02, 0.08],
                  frame)
    return b


# ------------------------------------------------------------------------------- confusable families (class set 'hard')
# The builders below make the 'hard' class set (``HARD_OBJECT_CLASSES``): families of classes built from the same
# parts with overlapping proportions (chair / stool / bench / sofa / bed, cup / mug / vase / bottle / jar / can /
# bowl / pot / trash_bin, car / truck / bus / van, table / desk / bookshelf / cabinet / file_cabinet, microwave /
# washer / stove / loudspeaker / monitor), where one part or one ratio tells the class, and optional parts vary
# inside a class.
def _legs4(b, w, d, h, lr, inset, color, round_legs, y0=0.0, splay=0.0):
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w / 2 - inset - lr), sz * (d / 2 - inset - lr)
            if round_legs:
                b.cyl([x + sx * splay, y0, z + sz * splay], [x, y0 + h, z], lr, color)
            else:
                b.box([x, y0 + h / 2, z], [2 * lr, h, 2 * lr], color)


def _build_stool(rng):
    b = _Parts()
    sh = rng.uniform(0.8, 1.6)
    frame, seat = (_wood(rng) if rng.random() < 0.5 else _color(rng, sat=(0.0, 0.3))), _color(rng)
    t = rng.uniform(0.05, 0.12)
    n_legs = int(rng.choice([3, 4, 4]))
    if rng.random() < 0.6:  # round seat
        r = rng.uniform(0.3, 0.5)
        b.cyl([0, sh - t, 0], [0, sh, 0], r, seat)
        foot = r * rng.uniform(0.75, 1.15)
    else:
        w = rng.uniform(0.6, 0.95)
        b.box([0, sh - t / 2, 0], [w, t, w * rng.uniform(0.8, 1.0)], seat)
        r = w / 2
        foot = r * rng.uniform(0.75, 1.15)
    lr = rng.uniform(0.025, 0.05)
    for k in range(n_legs):
        a = 2 * np.pi * (k + 0.5) / n_legs
        top = np.array([np.cos(a), 0, np.sin(a)]) * r * 0.7 + [0, sh - t, 0]
        bottom = np.array([np.cos(a), 0, np.sin(a)]) * foot
        b.cyl(bottom, top, lr, frame)
    if rng.random() < 0.6:  # foot ring
        b.torus([0, sh * rng.uniform(0.25, 0.4), 0], (r * 0.7 + foot) / 2, 0.02, frame, _rot_axis('x', 90))
    if rng.random() < 0.15:  # low back rest (bar stool): confusable with a chair
        bh = rng.uniform(0.15, 0.3)
        b.box([0, sh + bh / 2, -r * 0.85], [r * 1.4, bh, 0.05], seat)
    return b


def _build_bench(rng):
    b = _Parts()
    length, d = rng.uniform(1.8, 3.2), rng.uniform(0.4, 0.7)
    sh, t = rng.uniform(0.4, 0.55), rng.uniform(0.05, 0.1)
    frame, seat = (_dark(rng) if rng.random() < 0.5 else _wood(rng)), _wood(rng)
    if rng.random() < 0.5:  # slatted seat
        n = int(rng.integers(3, 6))
        for k in range(n):
            z = -d / 2 + d * (k + 0.5) / n
            b.box([0, sh - t / 2, z], [length, t, d / n * 0.85], seat)
    else:
        b.box([0, sh - t / 2, 0], [length, t, d], seat)
    if rng.random() < 0.5:  # slab ends
        for sx in (-1, 1):
            b.box([sx * (length / 2 - 0.15), (sh - t) / 2, 0], [0.06, sh - t, d * 0.9], frame)
    else:
        _legs4(b, length, d, sh - t, rng.uniform(0.03, 0.05), rng.uniform(0.05, 0.2), frame, rng.random() < 0.5)
    if rng.random() < 0.5:  # backrest: confusable with a sofa or a wide chair
        bh = rng.uniform(0.3, 0.6)
        rot = _rot_axis('x', -rng.uniform(0, 15))
        c = np.array([0, sh, -d / 2 + 0.03]) + rot @ [0, bh / 2 + 0.05, 0]
        b.box(c, [length, bh, 0.05], seat, rot)
        for sx in (-1, 1):
            b.box([sx * (length / 2 - 0.15), sh + bh / 2, -d / 2 + 0.03], [0.06, bh + 0.1, 0.06], frame)
    if rng.random() < 0.3:  # armrests
        for sx in (-1, 1):
            b.box([sx * (length / 2 - 0.05), sh + 0.2, 0], [0.06, 0.04, d * 0.9], frame)
            b.box([sx * (length / 2 - 0.05), sh + 0.1, d * 0.35], [0.04, 0.2, 0.04], frame)
    return b


def _vessel_color(rng):
    return _color(rng, val=(0.45, 0.95)) if rng.random() < 0.7 else _light(rng)


def _handle(b, r_side, h, y, color, rng, size=(0.18, 0.3)):
    hr = rng.uniform(*size) * h
    b.torus([r_side + hr * 0.55, y, 0], hr, rng.uniform(0.035, 0.06), color)


def _build_cup(rng):
    b = _Parts()
    h, r = rng.uniform(0.55, 0.95), rng.uniform(0.32, 0.48)
    flare = rng.uniform(1.1, 1.5)
    body = _vessel_color(rng)
    y0 = 0.0
    if rng.random() < 0.4:  # saucer
        b.cyl([0, 0, 0], [0, 0.04, 0], r * rng.uniform(1.6, 2.0), body if rng.random() < 0.5 else _light(rng))
        y0 = 0.04
    if rng.random() < 0.3:  # short foot
        b.flare([0, y0, 0], [0, y0 + 0.08, 0], r * 0.9, r * 0.6, body)
        y0 += 0.08
    b.flare([0, y0, 0], [0, y0 + h, 0], r, r * flare, body)
    b.cyl([0, y0 + h - 0.02, 0], [0, y0 + h + 0.004, 0], r * flare * 0.9, _color(rng, val=(0.1, 0.35)))
    if rng.random() < 0.55:  # handle: a cup with a handle is close to a mug
        _handle(b, r * (1 + flare) / 2, h, y0 + h * rng.uniform(0.45, 0.65), body, rng, (0.15, 0.25))
    return b


def _build_vase(rng):
    b = _Parts()
    c = _vessel_color(rng)
    r = rng.uniform(0.25, 0.45)
    if rng.random() < 0.55:  # bulb body
        hb = rng.uniform(0.6, 1.2)
        b.flare([0, 0, 0], [0, hb * 0.15, 0], r * 0.6, r * 0.9, c)
        b.ellipsoid([0, hb * 0.55, 0], [r, hb * 0.45, r], c)
        top = hb * 0.95
    else:  # tapered column
        hb = rng.uniform(0.9, 1.6)
        b.flare([0, 0, 0], [0, hb, 0], r * rng.uniform(0.6, 0.9), r * rng.uniform(0.9, 1.3), c)
        top = hb
    rn, hn = r * rng.uniform(0.3, 0.6), rng.uniform(0.15, 0.5)
    b.cyl([0, top - 0.02, 0], [0, top + hn, 0], rn, c)
    b.flare([0, top + hn - 0.01, 0], [0, top + hn + rng.uniform(0.05, 0.2), 0], rn, rn * rng.uniform(1.2, 2.2), c)
    if rng.random() < 0.25:  # two small handles
        for sx in (-1, 1):
            b.torus([sx * (rn + 0.1), top + hn * 0.5, 0], 0.1, 0.025, c)
    return b


def _build_jar(rng):
    b = _Parts()
    r, h = rng.uniform(0.35, 0.55), rng.uniform(0.6, 1.1)
    glass, lid = _vessel_color(rng), _color(rng)
    b.cyl([0, 0, 0], [0, h, 0], r, glass)
    sh = rng.uniform(0.05, 0.2)
    rn = r * rng.uniform(0.65, 0.9)
    b.flare([0, h - 0.01, 0], [0, h + sh, 0], r, rn, glass)
    lh = rng.uniform(0.08, 0.2)
    b.cyl([0, h + sh - 0.01, 0], [0, h + sh + lh, 0], rn * 1.05, lid)
    if rng.random() < 0.4:  # knob on the lid
        b.ellipsoid([0, h + sh + lh + 0.04, 0], [rn * 0.25, 0.06, rn * 0.25], lid)
    if rng.random() < 0.5:  # label band
        y = h * rng.uniform(0.35, 0.6)
        b.cyl([0, y - h * 0.15, 0], [0, y + h * 0.15, 0], r + 0.01, _light(rng))
    return b


def _build_can(rng):
    b = _Parts()
    r = rng.uniform(0.25, 0.4)
    h = r * rng.uniform(1.6, 3.2)
    c, metal = _color(rng, sat=(0.5, 1.0)), _color(rng, sat=(0.0, 0.1), val=(0.6, 0.85))
    rim = rng.uniform(0.02, 0.06)
    b.flare([0, 0, 0], [0, rim, 0], r * 0.9, r, metal)
    b.cyl([0, rim - 0.005, 0], [0, h - rim, 0], r, c)
    b.flare([0, h - rim - 0.005, 0], [0, h, 0], r, r * rng.uniform(0.82, 0.95), metal)
    if rng.random() < 0.4:  # ridges (food tin)
        for y in np.linspace(h * 0.25, h * 0.75, int(rng.integers(2, 4))):
            b.torus([0, y, 0], r, 0.012, c, _rot_axis('x', 90))
    if rng.random() < 0.3:  # ring pull
        b.torus([r * 0.3, h + 0.005, 0], r * 0.2, 0.01, metal, _rot_axis('x', 90))
    return b


def _build_bowl(rng):
    b = _Parts()
    rb, rt = rng.uniform(0.25, 0.45), rng.uniform(0.7, 1.0)
    h = rng.uniform(0.25, 0.5)
    c = _vessel_color(rng)
    y0 = 0.0
    if rng.random() < 0.6:  # foot ring
        y0 = rng.uniform(0.03, 0.08)
        b.cyl([0, 0, 0], [0, y0, 0], rb * 0.9, c)
    b.flare([0, y0, 0], [0, y0 + h, 0], rb, rt, c)
    b.cyl([0, y0 + h - 0.015, 0], [0, y0 + h + 0.004, 0], rt * 0.93, _color(rng, val=(0.1, 0.4)))
    if rng.random() < 0.2:  # two lug handles
        for sx in (-1, 1):
            b.box([sx * rt, y0 + h * 0.85, 0], [0.15, 0.04, 0.2], c)
    return b


def _build_pot(rng):
    b = _Parts()
    rb, h = rng.uniform(0.3, 0.45), rng.uniform(0.5, 1.0)
    rt = rb * rng.uniform(1.15, 1.5)
    c = _color(rng, hue=(0.02, 0.09), sat=(0.4, 0.8), val=(0.35, 0.8)) if rng.random() < 0.6 else _color(rng)
    y0 = 0.0
    if rng.random() < 0.4:  # saucer
        b.cyl([0, 0, 0], [0, 0.05, 0], rt * 1.05, c)
        y0 = 0.05
    b.flare([0, y0, 0], [0, y0 + h, 0], rb, rt, c)
    if rng.random() < 0.7:  # rim band
        b.cyl([0, y0 + h * 0.85, 0], [0, y0 + h + 0.01, 0], rt * 1.06, c)
    soil = _color(rng, hue=(0.05, 0.1), sat=(0.4, 0.8), val=(0.1, 0.25))
    b.cyl([0, y0 + h - 0.02, 0], [0, y0 + h + 0.012, 0], rt * 0.93, soil)
    if rng.random() < 0.55:  # a plant
        green = _color(rng, hue=(0.25, 0.4), sat=(0.5, 0.9), val=(0.25, 0.6))
        sh = rng.uniform(0.2, 0.7)
        b.cyl([0, y0 + h, 0], [0, y0 + h + sh, 0], 0.03, green)
        b.ellipsoid([0, y0 + h + sh + 0.15, 0], [rt * rng.uniform(0.6, 1.2), rng.uniform(0.2, 0.5),
                                                  rt * rng.uniform(0.6, 1.2)], green)
    return b


def _build_trash_bin(rng):
    b = _Parts()
    h = rng.uniform(1.0, 1.6)
    c = _color(rng, sat=(0.0, 0.6), val=(0.2, 0.8))
    if rng.random() < 0.55:  # round
        r = rng.uniform(0.35, 0.55)
        b.flare([0, 0, 0], [0, h, 0], r, r * rng.uniform(1.0, 1.2), c)
        top_r = r * 1.1
        if rng.random() < 0.6:  # lid
            if rng.random() < 0.5:
                b.ellipsoid([0, h, 0], [top_r * 1.02, rng.uniform(0.1, 0.3), top_r * 1.02], c)
            else:
                b.cyl([0, h - 0.02, 0], [0, h + 0.06, 0], top_r * 1.04, c)
        w = 2 * r
    else:  # square wheelie bin
        w, d = rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)
        b.box([0, h / 2, 0], [w, h, d], c)
        b.box([0, h + 0.03, 0.02], [w * 1.04, 0.06, d * 1.08], c)
        if rng.random() < 0.6:
            for sx in (-1, 1):
                b.cyl([sx * (w / 2 - 0.02), 0.1, -d / 2], [sx * (w / 2 + 0.06), 0.1, -d / 2], 0.1, _dark(rng))
    if rng.random() < 0.4:  # pedal
        b.box([0, 0.05, w / 2 + 0.05], [w * 0.4, 0.04, 0.15], _dark(rng))
    return b


def _wheels(b, xs, zs, r, y, color, tyre_w=0.08):
    for x in xs:
        for z in zs:
            c = np.array([x, y, z])
            b.cyl(c - [tyre_w, 0, 0], c + [tyre_w, 0, 0], r, color)


def _build_truck(rng):
    b = _Parts()
    length, width = rng.uniform(2.6, 3.8), rng.uniform(0.9, 1.1)
    wr, clear = rng.uniform(0.18, 0.26), rng.uniform(0.08, 0.15)
    cab_c, cargo_c, tyre = _color(rng, sat=(0.5, 0.95)), _color(rng, sat=(0.0, 0.6)), _dark(rng)
    y0 = wr + clear
    cab_l = length * rng.uniform(0.22, 0.32)
    cab_h = rng.uniform(0.6, 0.9)
    zc = length / 2 - cab_l / 2
    b.box([0, y0 + cab_h / 2, zc], [width, cab_h, cab_l], cab_c)
    b.box([0, y0 + cab_h * 0.75, length / 2 + 0.005], [width * 0.85, cab_h * 0.35, 0.02],
          _color(rng, hue=(0.5, 0.65), sat=(0.2, 0.5), val=(0.2, 0.45)))  # windscreen
    b.box([0, y0 - 0.05, 0], [width * 0.6, 0.1, length * 0.95], _dark(rng))  # chassis
    rest = length - cab_l - 0.05
    zr = -length / 2 + rest / 2
    if rng.random() < 0.6:  # box body (taller than the cab)
        bh = cab_h * rng.uniform(1.0, 1.5)
        b.box([0, y0 + bh / 2, zr], [width * 1.02, bh, rest], cargo_c)
    else:  # open bed (pickup / tipper)
        bh = cab_h * rng.uniform(0.35, 0.6)
        b.box([0, y0 + 0.03, zr], [width, 0.06, rest], cargo_c)
        for sx in (-1, 1):
            b.box([sx * (width / 2 - 0.02), y0 + bh / 2, zr], [0.04, bh, rest], cargo_c)
        b.box([0, y0 + bh / 2, zr - rest / 2 + 0.02], [width, bh, 0.04], cargo_c)
    zs = [zc - cab_l * 0.1, -length / 2 + rest * 0.2]
    if rng.random() < 0.5:
        zs.append(-length / 2 + rest * 0.2 + 2.2 * wr)
    _wheels(b, (-(width / 2 - 0.03), width / 2 - 0.03), zs, wr, wr, tyre)
    return b


def _build_bus(rng):
    b = _Parts()
    length, width = rng.uniform(3.2, 4.8), rng.uniform(0.9, 1.05)
    wr, clear = rng.uniform(0.14, 0.2), rng.uniform(0.06, 0.12)
    body, glass, tyre = _color(rng, sat=(0.4, 0.95)), _color(rng, hue=(0.5, 0.65), sat=(0.2, 0.5),
                                                              val=(0.15, 0.4)), _dark(rng)
    h = width * rng.uniform(1.0, 1.35)
    y0 = wr + clear
    b.box([0, y0 + h / 2, 0], [width, h, length], body)
    wy, wh = y0 + h * rng.uniform(0.6, 0.7), h * rng.uniform(0.25, 0.35)
    b.box([0, wy, 0], [width + 0.02, wh, length * 0.92], glass)  # window band
    b.box([0, wy - 0.05, length / 2 + 0.005], [width * 0.9, wh * 1.4, 0.02], glass)  # windscreen
    if rng.random() < 0.3:  # double decker: second band
        b.box([0, y0 + h * 0.3, 0], [width + 0.02, wh * 0.8, length * 0.85], glass)
    zs = [length / 2 - length * 0.18, -length / 2 + length * 0.22]
    if rng.random() < 0.4:
        zs.append(-length / 2 + length * 0.22 + 2.3 * wr)
    _wheels(b, (-(width / 2 - 0.03), width / 2 - 0.03), zs, wr, wr, tyre)
    return b


def _build_van(rng):
    b = _Parts()
    length, width = rng.uniform(1.9, 2.6), rng.uniform(0.85, 1.0)
    wr, clear = rng.uniform(0.15, 0.21), rng.uniform(0.06, 0.12)
    body, glass, tyre = _color(rng, sat=(0.0, 0.9)), _color(rng, hue=(0.5, 0.65), sat=(0.2, 0.5),
                                                             val=(0.15, 0.4)), _dark(rng)
    y0 = wr + clear
    h = width * rng.uniform(0.85, 1.15)
    hood = length * rng.uniform(0.08, 0.2)
    b.box([0, y0 + h / 2, -hood / 2], [width, h, length - hood], body)
    hh = h * rng.uniform(0.35, 0.5)
    b.box([0, y0 + hh / 2, length / 2 - hood / 2], [width * 0.98, hh, hood], body)  # hood
    b.box([0, y0 + hh + (h - hh) * 0.45, length / 2 - hood + 0.005], [width * 0.88, (h - hh) * 0.6, 0.02],
          glass, _rot_axis('x', -rng.uniform(0, 25)))
    if rng.random() < 0.6:  # side windows
        b.box([0, y0 + h * 0.75, 0], [width + 0.02, h * 0.22, length * rng.uniform(0.3, 0.7)], glass)
    wb = length * rng.uniform(0.3, 0.36)
    _wheels(b, (-(width / 2 - 0.03), width / 2 - 0.03), (wb, -wb), wr, wr, tyre)
    return b


def _build_desk(rng):
    b = _Parts()
    w, d = rng.uniform(1.3, 2.2), rng.uniform(0.6, 0.9)
    h, t = rng.uniform(0.7, 0.85), rng.uniform(0.03, 0.07)
    top_c, body_c = (_wood(rng), _wood(rng)) if rng.random() < 0.6 else (_color(rng), _color(rng, sat=(0.0, 0.2)))
    b.box([0, h - t / 2, 0], [w, t, d], top_c)
    n_ped = int(rng.choice([1, 1, 2]))
    pw = rng.uniform(0.35, 0.5)
    sides = [1] if n_ped == 1 else [-1, 1]
    for sx in sides:
        x = sx * (w / 2 - pw / 2 - 0.02)
        b.box([x, (h - t) / 2, 0], [pw, h - t, d * 0.95], body_c)
        n_dr = int(rng.integers(2, 5))
        for k in range(n_dr):
            y = (h - t) * (k + 0.5) / n_dr
            b.box([x, y, d * 0.475 + 0.01], [pw * 0.9, (h - t) / n_dr * 0.85, 0.02], top_c)
            b.box([x, y, d * 0.475 + 0.03], [pw * 0.3, 0.02, 0.02], _dark(rng))
    if n_ped == 1:  # legs or a side panel on the free side
        x = -(w / 2 - 0.05)
        if rng.random() < 0.5:
            b.box([x, (h - t) / 2, 0], [0.05, h - t, d * 0.95], body_c)
        else:
            for sz in (-1, 1):
                b.box([x, (h - t) / 2, sz * (d / 2 - 0.05)], [0.05, h - t, 0.05], body_c)
    if rng.random() < 0.5:  # modesty panel
        b.box([0, h * 0.55, -d / 2 + 0.03], [w * 0.9, h * 0.5, 0.03], body_c)
    if rng.random() < 0.25:  # hutch
        hh = rng.uniform(0.3, 0.6)
        b.box([0, h + hh / 2, -d / 2 + 0.12], [w, hh, 0.24], body_c)
    return b


def _build_bookshelf(rng):
    b = _Parts()
    w, d, h = rng.uniform(0.7, 1.6), rng.uniform(0.25, 0.45), rng.uniform(1.2, 2.2)
    c = _wood(rng) if rng.random() < 0.7 else _color(rng)
    t = rng.uniform(0.03, 0.06)
    for sx in (-1, 1):
        b.box([sx * (w / 2 - t / 2), h / 2, 0], [t, h, d], c)
    n = int(rng.integers(3, 7))
    for k in range(n + 1):
        y = t / 2 + (h - t) * k / n
        b.box([0, y, 0], [w - 2 * t + 0.005, t, d], c)
    if rng.random() < 0.6:  # back panel
        b.box([0, h / 2, -d / 2 + 0.01], [w, h, 0.02], c)
    if rng.random() < 0.6:  # books on some shelves
        for k in range(n):
            if rng.random() < 0.5:
                continue
            y0 = t + (h - t) * k / n
            sh = (h - t) / n - t
            x = -w / 2 + t
            while x < w / 2 - t - 0.1:
                bw = rng.uniform(0.03, 0.08)
                bh = sh * rng.uniform(0.6, 0.9)
                b.box([x + bw / 2, y0 + bh / 2, 0], [bw, bh, d * 0.8], _color(rng))
                x += bw + rng.uniform(0.0, 0.08)
    return b


def _build_cabinet(rng):
    b = _Parts()
    w, d, h = rng.uniform(0.8, 1.8), rng.uniform(0.4, 0.65), rng.uniform(0.7, 1.6)
    c, door = _color(rng) if rng.random() < 0.4 else _wood(rng), _color(rng) if rng.random() < 0.3 else _wood(rng)
    plinth = rng.uniform(0.03, 0.15)
    if rng.random() < 0.5:
        _legs4(b, w, d, plinth + 0.01, 0.03, 0.03, _dark(rng), True)
    else:
        b.box([0, plinth / 2, 0], [w * 0.95, plinth, d * 0.9], c)
    b.box([0, plinth + h / 2, 0], [w, h, d], c)
    n_doors = int(rng.integers(1, 4))
    dw = w / n_doors
    for k in range(n_doors):
        x = -w / 2 + dw * (k + 0.5)
        b.box([x, plinth + h / 2, d / 2 + 0.01], [dw * 0.94, h * 0.94, 0.02], door)
        hx = x + (dw * 0.35 if k % 2 == 0 else -dw * 0.35)
        b.cyl([hx, plinth + h * 0.5, d / 2 + 0.02], [hx, plinth + h * 0.5, d / 2 + 0.06], 0.02, _dark(rng))
    if rng.random() < 0.3:  # top drawer row
        b.box([0, plinth + h + 0.08, 0], [w, 0.16, d], c)
    return b


def _build_file_cabinet(rng):
    b = _Parts()
    w, d, h = rng.uniform(0.4, 0.6), rng.uniform(0.55, 0.75), rng.uniform(0.6, 1.5)
    c = _color(rng, sat=(0.0, 0.35), val=(0.3, 0.85))
    b.box([0, h / 2, 0], [w, h, d], c)
    n = int(rng.integers(2, 6))
    for k in range(n):
        y = h * (k + 0.5) / n
        b.box([0, y, d / 2 + 0.01], [w * 0.9, h / n * 0.88, 0.02], c)
        b.box([0, y + h / n * 0.25, d / 2 + 0.035], [w * rng.uniform(0.25, 0.4), 0.025, 0.03], _dark(rng))
    if rng.random() < 0.3:  # casters
        _legs4(b, w, d, 0.05, 0.03, 0.02, _dark(rng), True, y0=-0.05)
    return b


def _build_microwave(rng):
    b = _Parts()
    w, h, d = rng.uniform(0.9, 1.2), rng.uniform(0.5, 0.7), rng.uniform(0.6, 0.8)
    c, dark = _color(rng, sat=(0.0, 0.25)), _dark(rng)
    b.box([0, 0.03 + h / 2, 0], [w, h, d], c)
    pw = w * rng.uniform(0.2, 0.3)
    dx = -pw / 2
    b.box([dx, 0.03 + h / 2, d / 2 + 0.01], [(w - pw) * 0.92, h * 0.85, 0.02], c)
    b.box([dx - 0.03, 0.03 + h / 2, d / 2 + 0.025], [(w - pw) * 0.6, h * 0.6, 0.01], dark)  # window
    b.box([w / 2 - pw / 2, 0.03 + h / 2, d / 2 + 0.01], [pw * 0.85, h * 0.85, 0.02], dark)  # control panel
    if rng.random() < 0.6:
        b.cyl([w / 2 - pw / 2, 0.03 + h * 0.3, d / 2 + 0.02], [w / 2 - pw / 2, 0.03 + h * 0.3, d / 2 + 0.06],
              pw * 0.2, c)
    _legs4(b, w, d, 0.035, 0.03, 0.05, dark, True)
    return b


def _build_washer(rng):
    b = _Parts()
    w = rng.uniform(0.8, 0.95)
    h, d = w * rng.uniform(1.1, 1.35), w * rng.uniform(0.9, 1.1)
    c, dark = _light(rng) if rng.random() < 0.7 else _color(rng, sat=(0.0, 0.3)), _dark(rng)
    b.box([0, h / 2, 0], [w, h, d], c)
    r = w * rng.uniform(0.28, 0.36)
    cy = h * rng.uniform(0.4, 0.5)
    if rng.random() < 0.8:  # front-loading: round door
        b.cyl([0, cy, d / 2 - 0.01], [0, cy, d / 2 + 0.02], r, dark)
        b.torus([0, cy, d / 2 + 0.02], r, 0.04, c)
    else:  # top-loading lid
        b.box([0, h + 0.015, -0.05], [w * 0.8, 0.03, d * 0.6], c)
    b.box([0, h - 0.08, d / 2 + 0.01], [w * 0.95, 0.14, 0.02], dark if rng.random() < 0.5 else c)  # controls
    b.cyl([w * 0.3, h - 0.08, d / 2 + 0.02], [w * 0.3, h - 0.08, d / 2 + 0.06], 0.05, c)
    return b


def _build_stove(rng):
    b = _Parts()
    w, h, d = rng.uniform(0.8, 1.1), rng.uniform(0.8, 1.0), rng.uniform(0.6, 0.75)
    c, dark = _color(rng, sat=(0.0, 0.3)), _dark(rng)
    b.box([0, h / 2, 0], [w, h, d], c)
    n = int(rng.choice([2, 4, 4, 6]))
    cols = 2 if n <= 4 else 3
    rows = max(1, n // cols)
    for i in range(cols):
        for j in range(rows):
            x = -w / 2 + w * (i + 0.5) / cols
            z = -d / 2 + d * (j + 0.5) / rows
            b.cyl([x, h - 0.005, z], [x, h + 0.02, z], min(w / cols, d / rows) * 0.32, dark)
    b.box([0, h * 0.45, d / 2 + 0.01], [w * 0.85, h * 0.55, 0.02], dark)  # oven door
    b.cyl([-w * 0.35, h * 0.78, d / 2 + 0.05], [w * 0.35, h * 0.78, d / 2 + 0.05], 0.02, c)  # handle
    if rng.random() < 0.5:  # backsplash with knobs
        b.box([0, h + 0.12, -d / 2 + 0.04], [w, 0.24, 0.08], c)
    return b


def _build_loudspeaker(rng):
    b = _Parts()
    w = rng.uniform(0.5, 0.8)
    h, d = w * rng.uniform(1.2, 2.6), w * rng.uniform(0.8, 1.2)
    c, cone = _color(rng, sat=(0.0, 0.5), val=(0.1, 0.7)), _dark(rng)
    y0 = 0.0
    if rng.random() < 0.4:  # stand
        y0 = rng.uniform(0.3, 0.8)
        b.cyl([0, 0.03, 0], [0, y0, 0], 0.05, _dark(rng))
        b.box([0, 0.015, 0], [w * 0.8, 0.03, d * 0.8], _dark(rng))
    b.box([0, y0 + h / 2, 0], [w, h, d], c)
    n = int(rng.integers(1, 4))
    ys = np.linspace(y0 + h * 0.25, y0 + h * 0.8, n)
    for k, y in enumerate(ys):
        r = w * (0.38 if k == 0 else rng.uniform(0.12, 0.25))
        b.flare([0, y, d / 2 - 0.01], [0, y, d / 2 + 0.04], r, r * 0.5, cone)
    return b


_BUILDERS: Dict[str, Callable[[np.random.Generator], _Parts]] = {
    'airplane': _build_airplane, 'bed': _build_bed, 'bottle': _build_bottle, 'car': _build_car,
    'chair': _build_chair, 'guitar': _build_guitar, 'lamp': _build_lamp, 'laptop': _build_laptop,
    'monitor': _build_monitor, 'mug': _build_mug, 'sofa': _build_sofa, 'table': _build_table,
    'stool': _build_stool, 'bench': _build_bench, 'cup': _build_cup, 'vase': _build_vase, 'jar': _build_jar,
    'can': _build_can, 'bowl': _build_bowl, 'pot': _build_pot, 'trash_bin': _build_trash_bin,
    'truck': _build_truck, 'bus': _build_bus, 'van': _build_van, 'desk': _build_desk, 'bookshelf': _build_bookshelf,
    'cabinet': _build_cabinet, 'file_cabinet': _build_file_cabinet, 'microwave': _build_microwave,
    'washer': _build_washer, 'stove': _build_stove, 'loudspeaker': _build_loudspeaker,
}


def build_object(cls_name: str, rng: np.random.Generator) -> SyntheticObject:
    """Build one random instance of ``cls_name`` (y-up, front +z, normalised to the unit sphere)."""
    if cls_name not in _BUILDERS:
        raise KeyError(f'unknown object class {cls_name!r}; available: {sorted(_BUILDERS)}')
    return _finalise(cls_name, _BUILDERS[cls_name](rng))


# ---------------------------------------------------------------------------------------------- surface sampling
def sample_surface(obj: SyntheticObject, num_points: int,
                   rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Area-weighted surface samples of the object's outer surface.

    Points inside or on the boundary of another part (hidden contact areas of overlapping or touching
    primitives) are discarded.

    Returns:
        points (num_points, 3) float32 and unit normals (num_points, 3) float32, object frame.
    """
    v, f = obj.vertices, obj.faces
    tri = v[f]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    cdf = np.cumsum(areas)
    inv = [np.linalg.inv(p.A) for p in obj.parts]
    kept_p, kept_n, have, m = [], [], 0, 2 * num_points
    while have < num_points:
        fi = np.minimum(np.searchsorted(cdf, rng.random(m) * cdf[-1], side='right'), len(f) - 1)
        r1, r2 = np.sqrt(rng.random(m)), rng.random(m)
        w = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], 1)
        pts = np.einsum('nk,nkd->nd', w, tri[fi])
        nrm = np.einsum('nk,nkd->nd', w, obj.vertex_normals[f[fi]])
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-12
        hidden = np.zeros(m, bool)
        src = obj.face_part[fi]
        for k, part in enumerate(obj.parts):
            q = (pts - part.t) @ inv[k].T
            hidden |= (src != k) & _inside_canonical(part.kind, part.param, q, eps=-1e-6)
        kept_p.append(pts[~hidden])
        kept_n.append(nrm[~hidden])
        have += int((~hidden).sum())
    return (np.concatenate(kept_p)[:num_points].astype(np.float32),
            np.concatenate(kept_n)[:num_points].astype(np.float32))


# ------------------------------------------------------------------------------------------------- camera / render
@dataclass
class Camera:
    """Pinhole camera looking at the origin from a viewpoint on a sphere (ShapeNet y-up world).

    The centre is ``distance * (cos(el) sin(az), sin(el), cos(el) cos(az))`` (azimuth 0 looks at the +z front),
    the image y axis points down the world y axis, ``in_plane`` rotates about the optical axis. Camera frame is
    OpenCV's (x right, y down, z forward): ``x_cam = R @ x_world + t``; pixel centres at integer + 0.5.
    """
    azimuth: float
    elevation: float
    distance: float
    fov: float
    width: int
    height: int
    in_plane: float = 0.0

    @property
    def center(self) -> np.ndarray:
        az, el = np.deg2rad(self.azimuth), np.deg2rad(self.elevation)
        return self.distance * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])

    @property
    def R(self) -> np.ndarray:
        fwd = -self.center / np.linalg.norm(self.center)
        right = np.cross(fwd, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        return _rot_axis('z', self.in_plane) @ np.stack([right, down, fwd])

    @property
    def t(self) -> np.ndarray:
        return -self.R @ self.center

    @property
    def K(self) -> np.ndarray:
        f = 0.5 * self.width / np.tan(np.deg2rad(self.fov) / 2)
        return np.array([[f, 0, self.width / 2], [0, f, self.height / 2], [0, 0, 1.0]])

    def project(self, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) (u right, v down) and depth (N,)."""
        cam = points @ self.R.T + self.t
        uv = cam[:, :2] / cam[:, 2:3] * self.K[0, 0] + self.K[:2, 2]
        return uv, cam[:, 2]

    def metadata_line(self) -> str:
        """``azimuth elevation in_plane distance fov``, the columns of ShapeNetRendering's rendering_metadata.txt."""
        return f'{self.azimuth:.4f} {self.elevation:.4f} {self.in_plane:.4f} {self.distance:.4f} {self.fov:.4f}'

    @classmethod
    def from_metadata_line(cls, line: str, width: int, height: int) -> 'Camera':
        az, el, ip, dist, fov = (float(x) for x in line.split()[:5])
        return cls(az, el, dist, fov, width, height, ip)


def rasterize(vertices: np.ndarray, faces: np.ndarray,
              cam: Camera) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffer rasterisation of back-face-culled triangles, vectorised over (triangle, pixel) candidates.

    Args:
        vertices: (V, 3) world; faces: (F, 3) outward counter-clockwise.
    Returns:
        face_id (H, W) int64 (-1: background), perspective-correct barycentrics (H, W, 3), depth (H, W) (inf bg).
    """
    W, H = cam.width, cam.height
    uv, z = cam.project(vertices)
    tri = vertices[faces]
    geo_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    front = np.einsum('fd,fd->f', geo_n, cam.center - tri[:, 0]) > 0
    front &= np.all(z[faces] > 1e-3, axis=1)
    fidx = np.nonzero(front)[0]
    tuv = uv[faces[fidx]]  # (T, 3, 2)
    x0, y0 = tuv[:, 0, 0], tuv[:, 0, 1]
    x1, y1 = tuv[:, 1, 0], tuv[:, 1, 1]
    x2, y2 = tuv[:, 2, 0], tuv[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    ok = np.abs(area) > 1e-10
    lo = np.ceil(tuv.min(1) - 0.5).astype(np.int64)
    hi = np.floor(tuv.max(1) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [W - 1, H - 1])
    nx, ny = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0), np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    cnt = np.where(ok, nx * ny, 0)
    face_id = np.full(H * W, -1, np.int64)
    bary = np.zeros((H * W, 3))
    depth = np.full(H * W, np.inf)
    if cnt.sum() == 0:
        return face_id.reshape(H, W), bary.reshape(H, W, 3), depth.reshape(H, W)
    # edge-function coefficients: b_k(p) = a_k * px + b_k * py + c_k (already divided by the area)
    inv_a = np.where(ok, 1.0 / np.where(ok, area, 1.0), 0.0)
    ea = np.stack([y1 - y2, y2 - y0, y0 - y1], 1) * inv_a[:, None]
    eb = np.stack([x2 - x1, x0 - x2, x1 - x0], 1) * inv_a[:, None]
    ec = np.stack([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], 1) * inv_a[:, None]
    # scanline spans: per (triangle, row), the x-range where all three edge functions are >= 0
    rows = np.where(cnt > 0, ny, 0)
    r_t = np.repeat(np.arange(len(fidx)), rows)
    r_y = lo[r_t, 1] + np.arange(r_t.size) - np.repeat(np.cumsum(rows) - rows, rows)
    val = eb[r_t] * (r_y + 0.5)[:, None] + ec[r_t]  # (R, 3): b_k = ea_k * fx + val_k
    a = ea[r_t]
    with np.errstate(divide='ignore', invalid='ignore'):
        bound = -val / a
    xlo = np.max(np.where(a > 0, bound, -np.inf), axis=1)
    xhi = np.min(np.where(a < 0, bound, np.inf), axis=1)
    empty = np.any((a == 0) & (val < 0), axis=1)
    sx0 = np.maximum(np.ceil(np.maximum(xlo, -1.0) - 0.5 - 1e-7), lo[r_t, 0]).astype(np.int64)
    sx1 = np.minimum(np.floor(np.minimum(xhi, W + 1.0) - 0.5 + 1e-7), hi[r_t, 0]).astype(np.int64)
    span = np.where(empty, 0, np.maximum(sx1 - sx0 + 1, 0))
    c_r = np.repeat(np.arange(r_t.size), span)
    t_of = r_t[c_r]
    px = sx0[c_r] + np.arange(c_r.size) - np.repeat(np.cumsum(span) - span, span)
    py = r_y[c_r]
    fx, fy = px + 0.5, py + 0.5
    b = ea[t_of] * fx[:, None] + eb[t_of] * fy[:, None] + ec[t_of]
    inside = np.all(b >= -1e-9, axis=1)
    t_of, px, py, b = t_of[inside], px[inside], py[inside], b[inside]
    inv_z = 1.0 / z[faces[fidx[t_of]]]  # (M, 3)
    w = b * inv_z
    iz = w.sum(1)
    pix = py * W + px
    order = np.lexsort((-iz, pix))
    ps = pix[order]
    first = np.ones(ps.size, bool)
    first[1:] = ps[1:] != ps[:-1]
    sel = order[first]
    face_id[pix[sel]] = fidx[t_of[sel]]
    bary[pix[sel]] = w[sel] / iz[sel, None]
    depth[pix[sel]] = 1.0 / iz[sel]
    return face_id.reshape(H, W), bary.reshape(H, W, 3), depth.reshape(H, W)


_KEY_LIGHT = np.array([-0.45, -0.6, -0.65]) / np.linalg.norm([-0.45, -0.6, -0.65])  # camera frame, towards light
_FILL_LIGHT = np.array([0.6, -0.1, -0.8]) / np.linalg.norm([0.6, -0.1, -0.8])


def render(obj: SyntheticObject, cam: Camera, bg_top: Sequence[float] = (0.94, 0.95, 0.97),
           bg_bottom: Sequence[float] = (0.78, 0.8, 0.84), ssaa: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """Shaded RGB render: Phong-interpolated normals, Lambert key + fill light + ambient, vertical gradient bg.

    Args:
        ssaa: supersampling factor (rasterise at ``ssaa`` x resolution, area-downsample).
    Returns:
        rgb (H, W, 3) uint8 and object mask (H, W) bool (pixel coverage >= 0.5).
    """
    big = Camera(cam.azimuth, cam.elevation, cam.distance, cam.fov, cam.width * ssaa, cam.height * ssaa,
                 cam.in_plane)
    face_id, bary, _ = rasterize(obj.vertices, obj.faces, big)
    H, W = face_id.shape
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    grad = ((1 - t) * np.asarray(bg_top, np.float32) + t * np.asarray(bg_bottom, np.float32)) * 255.0
    img = np.empty((H, W, 3), np.float32)
    img[:] = grad[:, None, :]
    m = face_id >= 0
    fid = face_id[m]
    n = np.einsum('nk,nkd->nd', bary[m], obj.vertex_normals[obj.faces[fid]])
    n = n @ big.R.T
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    n *= np.where(n[:, 2:3] > 0, -1.0, 1.0)  # face the camera (z forward)
    shade = (0.3 + 0.6 * np.maximum(n @ _KEY_LIGHT, 0) + 0.25 * np.maximum(n @ _FILL_LIGHT, 0))
    img[m] = np.minimum(obj.part_colors[obj.face_part[fid]] * shade[:, None], 1.0) * 255.0
    mask = m.astype(np.float32)
    if ssaa > 1:
        img = cv2.resize(img, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), mask >= 0.5


def random_cameras(rng: np.random.Generator, num_views: int, image_size: int,
                   elevation: Tuple[float, float] = (5.0, 40.0), distance: Tuple[float, float] = (2.5, 2.9),
                   fov: float = 50.0) -> List[Camera]:
    """Random viewpoints; with fov 50 deg and distance >= 2.5 the whole unit sphere is in view."""
    az = rng.uniform(0, 360, num_views)
    el = rng.uniform(*elevation, num_views)
    dist = rng.uniform(*distance, num_views)
    return [Camera(float(a), float(e), float(d), fov, image_size, image_size) for a, e, d in zip(az, el, dist)]


def _random_background(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    tint = rng.uniform(-0.03, 0.03, 3)
    return (np.array([0.94, 0.95, 0.97]) + tint, np.array([0.76, 0.78, 0.82]) + tint + rng.uniform(-0.04, 0.04))


def partial_scan(obj: SyntheticObject, num_points: int, rng: np.random.Generator, noise: float = 0.005,
                 resolution: int = 96, occlusion: float = 0.0, background: float = 0.0) -> np.ndarray:
    """ScanObjectNN-like partial cloud: points visible from one random camera (z-buffer test) + Gaussian noise.

    Args:
        occlusion: up to this fraction of the visible points is hidden by an occluder in front of the object
            (the points on one side of a random image line; the fraction is drawn in [0, occlusion] per scan).
        background: this fraction of the returned points is background (a floor under the object and, for half
            of the scans, a wall behind it), as ScanObjectNN's variants with background.

    With ``occlusion == background == 0`` the random stream and the output are those of the plain scan.

    Returns:
        (num_points, 3) float32, object frame (resampled with replacement when fewer points are visible).
    """
    pts, _ = sample_surface(obj, 3 * num_points, rng)
    cam = random_cameras(rng, 1, resolution)[0]
    _, _, depth = rasterize(obj.vertices, obj.faces, cam)
    uv, z = cam.project(pts.astype(np.float64))
    ij = np.clip(np.floor(uv).astype(np.int64), 0, resolution - 1)
    visible = z <= depth[ij[:, 1], ij[:, 0]] + 0.02
    vis = pts[visible] if visible.sum() >= 16 else pts
    if occlusion > 0:
        a = rng.uniform(0, 2 * np.pi)
        side = cam.project(vis.astype(np.float64))[0] @ np.array([np.cos(a), np.sin(a)])
        keep = side >= np.quantile(side, rng.uniform(0, occlusion))
        if keep.sum() >= 16:
            vis = vis[keep]
    n_bg = int(round(background * num_points)) if background > 0 else 0
    idx = rng.choice(len(vis), num_points - n_bg, replace=len(vis) < num_points - n_bg)
    out = vis[idx]
    if n_bg:
        out = np.concatenate([out, _scan_background(obj, cam, n_bg, rng)])[rng.permutation(num_points)]
    return (out + rng.normal(0, noise, (num_points, 3))).astype(np.float32)


def _scan_background(obj: SyntheticObject, cam: 'Camera', n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) background points: a floor under the object and, for half of the scans, a wall behind it."""
    y0 = obj.vertices[:, 1].min()
    n_wall = int(rng.integers(n // 4, n // 2 + 1)) if rng.random() < 0.5 else 0
    ext = rng.uniform(1.1, 1.5)
    floor = np.stack([rng.uniform(-ext, ext, n - n_wall), np.full(n - n_wall, y0),
                      rng.uniform(-ext, ext, n - n_wall)], 1)
    back = -cam.center * np.array([1.0, 0.0, 1.0])
    back /= np.linalg.norm(back) + 1e-12
    tangent = np.array([-back[2], 0.0, back[0]])
    dist = rng.uniform(1.0, 1.3)
    wall = (back * dist + rng.uniform(-ext, ext, (n_wall, 1)) * tangent
            + np.outer(y0 + rng.uniform(0, 1.8, n_wall), [0.0, 1.0, 0.0]))
    return np.concatenate([floor, wall]).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------- writers
def write_ply(path: str, points: np.ndarray, normals: Optional[np.ndarray] = None, ascii: bool = False) -> None:
    """Write a vertex-only PLY with float x y z (+ nx ny nz); binary_little_endian unless ``ascii``."""
    data = points.astype(np.float32) if normals is None else np.concatenate([points, normals], 1).astype('<f4')
    names = ['x', 'y', 'z'] + ([] if normals is None else ['nx', 'ny', 'nz'])
    fmt = 'ascii' if ascii else 'binary_little_endian'
    header = ['ply', f'format {fmt} 1.0', f'element vertex {len(data)}']
    header += [f'property float {n}' for n in names] + ['end_header']
    with open(path, 'wb') as f:
        f.write(('\n'.join(header) + '\n').encode('ascii'))
        if ascii:
            f.write(''.join(' '.join(f'{x:.6f}' for x in row) + '\n' for row in data).encode('ascii'))
        else:
            f.write(np.ascontiguousarray(data, '<f4').tobytes())


def write_png(path: str, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (deterministic: fixed compression, no metadata chunks)."""
    if not cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError(f'could not write {path}')


def object_id(seed: int, stream: int, index: int) -> str:
    """32-hex-digit ShapeNet-like id, a pure function of (seed, stream, index)."""
    return hashlib.md5(f'mmxmodal-object/{seed}/{stream}/{index}'.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------- generation
def _write_views(obj: SyntheticObject, rng: np.random.Generator, folder: str, num_views: int, image_size: int,
                 ssaa: int) -> None:
    os.makedirs(folder, exist_ok=True)
    cams = random_cameras(rng, num_views, image_size)
    names = []
    for k, cam in enumerate(cams):
        top, bottom = _random_background(rng)
        rgb, _ = render(obj, cam, top, bottom, ssaa)
        names.append(f'{k:02d}.png')
        write_png(osp.join(folder, names[-1]), rgb)
    with open(osp.join(folder, 'renderings.txt'), 'w') as f:
        f.write(''.join(n + '\n' for n in names))
    with open(osp.join(folder, 'rendering_metadata.txt'), 'w') as f:
        f.write(''.join(c.metadata_line() + '\n' for c in cams))


def _generate_one(task: dict) -> dict:
    """Generate (and write the per-object files of) one object; returns arrays for the h5 sets."""
    ss = np.random.SeedSequence([task['seed'], task['stream'], task['index']])
    s_shape, s_pts, s_view, s_scan = (np.random.default_rng(s) for s in ss.spawn(4))
    obj = build_object(task['cls_name'], s_shape)
    pts, nrm = sample_surface(obj, task['num_points'], s_pts)
    out = {}
    if task['stream'] == _STREAM_SHAPENET:
        synset, oid = ALL_CLASS_SYNSETS[task['cls_name']], task['object_id']
        ply_dir = osp.join(task['out_dir'], 'ShapeNet', synset)
        os.makedirs(ply_dir, exist_ok=True)
        write_ply(osp.join(ply_dir, oid + '.ply'), pts, nrm)
        folder = osp.join(task['out_dir'], 'ShapeNetRendering', synset, oid, 'rendering')
    else:
        folder = task['views_dir']
        out = dict(points=pts, normals=nrm)
        if task['scan']:
            out['scan'] = partial_scan(obj, task['num_points'], s_scan, occlusion=task['scan_occlusion'],
                                       background=task['scan_background'])
    _write_views(obj, s_view, folder, task['num_views'], task['image_size'], task['ssaa'])
    return out


def _write_h5(path: str, arrays: Dict[str, np.ndarray]) -> None:
    import h5py
    with h5py.File(path, 'w', libver='earliest', track_order=False) as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v, track_times=False)


def generate_objects(out_dir: str, num_objects: int = 200, seed: int = 0, num_views: int = 8,
                     image_size: int = 144, num_points: int = 2048, classes: Optional[Sequence[str]] = None,
                     cls_train_per_class: int = 10, cls_test_per_class: int = 5, cls_views: Optional[int] = None,
                     scanobjectnn: bool = True, ssaa: int = 2, workers: int = 1, verbose: bool = False,
                     class_set: Optional[str] = None, scan_occlusion: float = 0.0,
                     scan_background: float = 0.0) -> dict:
    """Generate the ShapeNetRender pretraining set and the labelled ModelNet40/ScanObjectNN-layout sets.

    Object ``i`` of each set has class ``classes[i % len(classes)]``; every object is drawn from its own random
    stream ``(seed, set, i)``, so sets are disjoint instances and the output does not depend on ``workers``.

    Args:
        classes: the classes (label order); default: those of ``class_set``.
        class_set: ``'basic'`` (default: ``OBJECT_CLASSES``, 12 distinct classes) or ``'hard'``
            (``HARD_OBJECT_CLASSES``, 32 classes in confusable families); ignored when ``classes`` is given.
        scan_occlusion, scan_background: ScanObjectNN-layout scans with an occluder / background points, see
            :func:`partial_scan` (0: plain partial scans).

    Returns:
        The ``meta.json`` content (also written to ``out_dir``).
    """
    if class_set is not None and class_set not in CLASS_SETS:
        raise KeyError(f'unknown class set {class_set!r}; available: {sorted(CLASS_SETS)}')
    classes = list(CLASS_SETS[class_set or 'basic'] if classes is None else classes)
    if not 0.0 <= scan_occlusion < 1.0 or not 0.0 <= scan_background < 1.0:
        raise ValueError(f'scan_occlusion and scan_background must lie in [0, 1), got {scan_occlusion}, '
                         f'{scan_background}')
    for c in classes:
        if c not in _BUILDERS:
            raise KeyError(f'unknown object class {c!r}; available: {sorted(_BUILDERS)}')
    cls_views = num_views if cls_views is None else cls_views
    os.makedirs(out_dir, exist_ok=True)
    common = dict(seed=seed, out_dir=out_dir, num_points=num_points, image_size=image_size, ssaa=ssaa)
    tasks = []
    for i in range(num_objects):
        tasks.append(dict(common, stream=_STREAM_SHAPENET, index=i, cls_name=classes[i % len(classes)],
                          object_id=object_id(seed, _STREAM_SHAPENET, i), num_views=num_views))
    splits = {'train': (_STREAM_CLS_TRAIN, cls_train_per_class), 'test': (_STREAM_CLS_TEST, cls_test_per_class)}
    for split, (stream, per_class) in splits.items():
        for i in range(per_class * len(classes)):
            tasks.append(dict(common, stream=stream, index=i, cls_name=classes[i % len(classes)], split=split,
                              views_dir=osp.join(out_dir, 'modelnet40_views', split, f'{i:05d}'),
                              num_views=cls_views, scan=scanobjectnn, scan_occlusion=scan_occlusion,
                              scan_background=scan_background))
    t0 = time.perf_counter()
    if workers > 1:
        import multiprocessing as mp
        with mp.get_context('fork').Pool(workers) as pool:
            results = pool.map(_generate_one, tasks, chunksize=4)
    else:
        results = [_generate_one(t) for t in tasks]

    mn_dir = osp.join(out_dir, 'modelnet40_ply_hdf5_2048')
    so_dir = osp.join(out_dir, 'ScanObjectNN', 'main_split')
    os.makedirs(mn_dir, exist_ok=True)
    if scanobjectnn:
        os.makedirs(so_dir, exist_ok=True)
    counts = {}
    for split in splits:
        rows = [(t, r) for t, r in zip(tasks, results) if t.get('split') == split]
        counts[split] = len(rows)
        labels = np.array([classes.index(t['cls_name']) for t, _ in rows], np.int64)
        pts = np.stack([r['points'] for _, r in rows]) if rows else np.zeros((0, num_points, 3), np.float32)
        nrm = np.stack([r['normals'] for _, r in rows]) if rows else np.zeros((0, num_points, 3), np.float32)
        files = []
        for k, s in enumerate(range(0, max(len(rows), 1), _H5_CHUNK)):
            name = f'ply_data_{split}{k}.h5'
            _write_h5(osp.join(mn_dir, name), dict(data=pts[s:s + _H5_CHUNK], normal=nrm[s:s + _H5_CHUNK],
                                                    label=labels[s:s + _H5_CHUNK, None].astype(np.uint8)))
            files.append(f'data/modelnet40_ply_hdf5_2048/{name}\n')
        with open(osp.join(mn_dir, f'{split}_files.txt'), 'w') as f:
            f.write(''.join(files))
        if scanobjectnn:
            scans = np.stack([r['scan'] for _, r in rows]) if rows else np.zeros((0, num_points, 3), np.float32)
            name = 'training_objectdataset.h5' if split == 'train' else 'test_objectdataset.h5'
            _write_h5(osp.join(so_dir, name), dict(data=scans, label=labels))
    for d in [mn_dir] + ([so_dir] if scanobjectnn else []):
        with open(osp.join(d, 'shape_names.txt'), 'w') as f:
            f.write(''.join(c + '\n' for c in classes))
    # 'generator': the module's name when the embedded data were first written, kept so that they stay
    # byte-identical (the module is now mmxmodal_bench.synthetic.objects)
    meta = dict(generator='mmxmodal.datasets.synthetic.objects', seed=seed, classes=classes,
                synsets=[ALL_CLASS_SYNSETS[c] for c in classes], num_objects=num_objects, num_views=num_views,
                image_size=image_size, num_points=num_points, cls_views=cls_views,
                cls_counts=counts, scanobjectnn=scanobjectnn, ssaa=ssaa, class_set=class_set,
                scan_occlusion=scan_occlusion, scan_background=scan_background)
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write('\n')
    if verbose:
        print(f'[objects] {len(tasks)} objects ({num_objects} ShapeNetRender, {counts["train"]}+{counts["test"]} '
              f'labelled) in {time.perf_counter() - t0:.1f} s -> {out_dir}')
    return meta
