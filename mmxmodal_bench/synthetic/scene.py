"""Synthetic street scenes seen by a spinning LiDAR and pinhole cameras (one geometry, exact ray casting).

A scene is a straight street (ground plane, lane markings, sidewalks) lined with buildings and lamp poles, with
parked and moving vehicles (cars, trucks, buses), cyclists, parked bicycles, pedestrians, traffic cones and
barriers. Every object is a union of oriented boxes ("parts") that move with constant velocity. The ego vehicle
drives along the street at constant speed.

Sensors are simulated from the same parts:

* the LiDAR casts one ray per (beam, azimuth column); columns are fired in time over one revolution (clockwise
  from the ego's back, like a Velodyne), every ray sees the objects and the ego at its own firing time, and the
  points are motion-compensated into the sensor frame at a reference time (as nuScenes and KITTI ship them);
* a camera casts one ray through each pixel centre at its trigger time (global shutter) and shades the first hit.

Rays meet parts with the slab method in each part's frame and the ground analytically, so a LiDAR point and the
pixel it projects to see the same surface, up to parallax occlusion and the motion of an object between the
LiDAR's firing time and the camera's trigger time.

Frames (all right-handed, metres, radians):

* street: x along the street, y to the left, z up; origin on the centre line, on the ground;
* global: the map frame of the data set (nuScenes ``global``); ``p_global = R_gs @ p_street + t_gs``;
* ego: x forward, y left, z up, origin on the ground below the rear axle; ``ego_pose(t)`` maps ego to global;
* sensor (lidar / camera): given by ``rotation`` (ego-from-sensor) and ``translation`` (in ego); cameras are
  x right, y down, z forward;
* image pixels: u right, v down; pixel (i, j) covers [i, i+1) x [j, j+1), so the ray of pixel (i, j) passes
  through (i + 0.5, j + 0.5) and a projected point (u, v) lies on pixel (floor(u), floor(v)).

Instance ids: 0 = nothing (sky, no return), 1 = ground, >= 2 = objects (``SceneObject.inst_id``).

Semantic labels (``scan_lidar(..., semantic=True)``): every point gets the index in :data:`SEMANTIC_CLASSES` of what
its ray hit: the ground region under the hit (road, lane marking, parking strip, sidewalk, terrain beyond the
sidewalks) or the hit part's class (a part's class is its object's, except tree trunks, traffic-sign plates and
sign posts). ``generate_street_scene(..., extras=True)`` adds trees, hedges, fences and traffic signs (drawn from a
child generator after everything else, so the other objects are the same as without extras).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# ----------------------------------------------------------------------------------------------------- street layout
ROAD_HALF_WIDTH = 9.6  # |y| < this: road (4 lanes, bike lanes, parking strips)
LANES = (1.75, 5.25)  # |y| of lane centres; y < 0 drives +x (right-hand traffic), y > 0 drives -x
BIKE_LANE = 6.85
PARKING = 8.4
POLE_Y = 9.85
SIDEWALK_LANES = (10.35, 11.05, 11.75)
BIKE_RACK_Y = 12.55
SIDEWALK_OUTER = 13.1  # buildings start beyond this
EGO_LANE_Y = -LANES[0]
GRASS_STRIP = 10.05  # with extras: grass between the curb and this |y| (trees and poles stand in it)

GROUND_ID = 1
FIRST_OBJECT_ID = 2

# nuScenes category and attribute of each object kind (None: not annotated)
NUSCENES_CATEGORY = {
    'car': 'vehicle.car',
    'truck': 'vehicle.truck',
    'bus': 'vehicle.bus.rigid',
    'pedestrian': 'human.pedestrian.adult',
    'cyclist': 'vehicle.bicycle',
    'bicycle': 'vehicle.bicycle',
    'traffic_cone': 'movable_object.trafficcone',
    'barrier': 'movable_object.barrier',
    'building': None,
    'pole': None,
    'tree': None,
    'hedge': None,
    'fence': None,
    'traffic_sign': None,
}

# per-point semantic classes of the generator (index = label); data-set writers map them to their taxonomies
SEMANTIC_CLASSES = ('unlabeled', 'road', 'lane_marking', 'parking', 'sidewalk', 'terrain', 'building', 'fence',
                    'vegetation', 'trunk', 'pole', 'traffic_sign', 'car', 'truck', 'bus', 'person', 'bicyclist',
                    'bicycle', 'traffic_cone', 'barrier')
SEMANTIC_INDEX = {name: i for i, name in enumerate(SEMANTIC_CLASSES)}
# class of an object kind's parts; materials in ``_MATERIAL_SEMANTIC`` override it
KIND_SEMANTIC = {'car': 'car', 'truck': 'truck', 'bus': 'bus', 'pedestrian': 'person', 'cyclist': 'bicyclist',
                 'bicycle': 'bicycle', 'traffic_cone': 'traffic_cone', 'barrier': 'barrier', 'building': 'building',
                 'pole': 'pole', 'tree': 'vegetation', 'hedge': 'vegetation', 'fence': 'fence',
                 'traffic_sign': 'pole'}
_MATERIAL_SEMANTIC = {'bark': 'trunk', 'leaves': 'vegetation', 'sign': 'traffic_sign'}
# KITTI label class of each object kind (None: not labelled)
KITTI_CLASS = {'car': 'Car', 'truck': 'Truck', 'bus': 'Misc', 'pedestrian': 'Pedestrian', 'cyclist': 'Cyclist'}

# material: (reflectivity in [0, 1], shading pattern); pattern 1 = building windows, 2 = bus window band
_MATERIALS = {
    'paint': (0.35, 0),
    'glass': (0.08, 0),
    'tyre': (0.05, 0),
    'cloth': (0.3, 0),
    'skin': (0.35, 0),
    'facade': (0.22, 1),
    'bus': (0.35, 2),
    'metal': (0.5, 0),
    'cone': (0.8, 0),
    'barrier': (0.6, 0),
    'bark': (0.2, 0),
    'leaves': (0.3, 0),
    'fence': (0.4, 0),
    'sign': (0.9, 0),
}
_CAR_COLOURS = np.array([[0.92, 0.92, 0.9], [0.08, 0.08, 0.09], [0.62, 0.63, 0.65], [0.7, 0.08, 0.07],
                         [0.1, 0.2, 0.55], [0.12, 0.32, 0.18], [0.9, 0.72, 0.1], [0.38, 0.39, 0.4],
                         [0.45, 0.05, 0.1], [0.3, 0.55, 0.75]])
_FACADE_COLOURS = np.array([[0.82, 0.74, 0.6], [0.6, 0.3, 0.22], [0.7, 0.7, 0.68], [0.55, 0.6, 0.66],
                            [0.85, 0.8, 0.7], [0.92, 0.9, 0.86], [0.5, 0.45, 0.4], [0.74, 0.55, 0.42]])
_SKIN_COLOURS = np.array([[0.87, 0.72, 0.6], [0.65, 0.47, 0.35], [0.42, 0.3, 0.22], [0.95, 0.8, 0.7]])
_SUN = np.array([0.35, -0.45, 0.82])
# corner i of a box has signs (sx, sy, sz) = bits of i (x: 4, y: 2, z: 1); the 12 edges join corners one bit apart
_EDGES = np.array([(i, i | b) for i in range(8) for b in (1, 2, 4) if not i & b])


# ------------------------------------------------------------------------------------------------------ rotations
def yaw_matrix(yaw: float) -> np.ndarray:
    """(3, 3) rotation about +z by ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_quaternion(yaw: float) -> List[float]:
    """Quaternion [w, x, y, z] of a rotation about +z by ``yaw`` (w >= 0)."""
    yaw = wrap_angle(yaw)
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def quaternion_matrix(q: Sequence[float]) -> np.ndarray:
    """(3, 3) rotation matrix of the (normalised) quaternion [w, x, y, z]."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def wrap_angle(a):
    """Wrap angles (rad, scalar or array) to [-pi, pi)."""
    if np.isscalar(a):
        return (a + math.pi) % (2 * math.pi) - math.pi
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


# -------------------------------------------------------------------------------------------------------- sensors
@dataclass
class CameraModel:
    """Pinhole camera rigidly mounted on the ego vehicle.

    Attributes:
        channel: sensor name, e.g. ``'CAM_FRONT'``.
        intrinsic: (3, 3) K; camera frame (x right, y down, z forward) to image pixels.
        width, height: image size in pixels.
        rotation: (3, 3) ego-from-camera rotation.
        translation: (3,) camera centre in the ego frame (m).
    """
    channel: str
    intrinsic: np.ndarray
    width: int
    height: int
    rotation: np.ndarray
    translation: np.ndarray

    @property
    def yaw(self) -> float:
        """Azimuth of the optical axis in the ego frame (rad, 0 = forward, counter-clockwise)."""
        f = self.rotation[:, 2]
        return math.atan2(f[1], f[0])


@dataclass
class LidarModel:
    """Spinning multi-beam LiDAR (one return per ray).

    Attributes:
        channel: sensor name, e.g. ``'LIDAR_TOP'``.
        elevations: (B,) beam elevations in the lidar frame (deg); the ring index of a point is its beam's index.
        num_azimuths: columns per revolution.
        rotation: (3, 3) ego-from-lidar rotation. translation: (3,) lidar origin in the ego frame (m).
        max_range, min_range: returns outside are dropped (m). period: one revolution (s).
        range_noise: std of the Gaussian range noise (m). intensity_noise: std of the intensity noise (0..255).
    """
    channel: str
    elevations: np.ndarray
    num_azimuths: int
    rotation: np.ndarray
    translation: np.ndarray
    max_range: float = 70.0
    min_range: float = 1.0
    period: float = 0.05
    range_noise: float = 0.01
    intensity_noise: float = 2.0

    @property
    def yaw(self) -> float:
        return math.atan2(self.rotation[1, 0], self.rotation[0, 0])

    def column_times(self, t_end: float) -> np.ndarray:
        """(A,) firing time of each azimuth column for a revolution that ends at ``t_end`` (s)."""
        return t_end - self.period + self.period * (np.arange(self.num_azimuths) + 0.5) / self.num_azimuths

    def column_azimuths(self) -> np.ndarray:
        """(A,) ego-frame azimuth of each column: clockwise from the back (pi) round to the back again."""
        return np.pi - 2 * np.pi * (np.arange(self.num_azimuths) + 0.5) / self.num_azimuths

    def trigger_time(self, yaw: float, t_end: float) -> float:
        """Time (s) at which the spinning beam passes the ego-frame azimuth ``yaw``."""
        frac = (math.pi - wrap_angle(yaw)) / (2 * math.pi)  # in (0, 1]
        return t_end - self.period + self.period * min(max(frac, 0.0), 1.0)


# ----------------------------------------------------------------------------------------------------- objects
@dataclass
class SceneObject:
    """One rigid object: a union of parts inside an oriented 3D box.

    Attributes:
        inst_id: instance id (>= 2) used in instance masks and per-point ids.
        kind: 'car', 'truck', 'bus', 'pedestrian', 'cyclist', 'bicycle', 'traffic_cone', 'barrier', 'building',
            'pole'.
        center: (3,) box centre in the global frame at scene time 0 (m).
        size: (3,) l, w, h: box extents along its x (heading), y, z axes (m).
        yaw: heading in the global frame (rad).
        velocity: (3,) global velocity (m/s).
        attribute: nuScenes attribute name or None.
    """
    inst_id: int
    kind: str
    center: np.ndarray
    size: np.ndarray
    yaw: float
    velocity: np.ndarray
    attribute: Optional[str] = None

    @property
    def category(self) -> Optional[str]:
        """nuScenes category name (None: structure that is not annotated)."""
        return NUSCENES_CATEGORY[self.kind]

    @property
    def kitti_class(self) -> Optional[str]:
        return KITTI_CLASS.get(self.kind)

    def center_at(self, t: float) -> np.ndarray:
        """(3,) global box centre at scene time ``t`` (s)."""
        return self.center + self.velocity * t

    def corners_at(self, t: float) -> np.ndarray:
        """(8, 3) global box corners at time ``t``."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        return self.center_at(t) + (signs * self.size / 2) @ yaw_matrix(self.yaw).T


@dataclass
class LidarFrame:
    """One LiDAR revolution.

    Attributes:
        points: (N, 5) float32 x, y, z (lidar frame at the reference time, m), intensity (0..255, integers),
            ring index (beam).
        instance_ids: (N,) int32 instance hit by each point's ray.
        times: (N,) float64 firing time of each point (s, scene time).
        semantic: (N,) uint8 index in :data:`SEMANTIC_CLASSES` of what each ray hit (only with
            ``scan_lidar(..., semantic=True)``, else None).
    """
    points: np.ndarray
    instance_ids: np.ndarray
    times: np.ndarray
    semantic: Optional[np.ndarray] = None


@dataclass
class CameraFrame:
    """One rendered camera image.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        instance_mask: (H, W) int32 instance id seen at each pixel.
        depth: (H, W) float32 camera-frame z of the hit (m), inf for sky.
        silhouettes: inst_id -> int array [pixels, u0, v0, u1, v1]: pixels the instance covers inside the image
            ignoring occluders (amodal), and their bounding box (inclusive pixel indices).
    """
    image: np.ndarray
    instance_mask: np.ndarray
    depth: np.ndarray
    silhouettes: Dict[int, np.ndarray]

    def visible_pixels(self, num_instances: int) -> np.ndarray:
        """(num_instances,) pixels where each instance is the first hit."""
        return np.bincount(self.instance_mask.ravel(), minlength=num_instances)[:num_instances]


# ------------------------------------------------------------------------------------------------- part builders
def _box(x0, x1, y0, y1, z0, z1, mat):
    return ((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2), ((x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2), mat


def _car(rng, l, w, h):
    return [_box(-l / 2, l / 2, -w / 2, w / 2, 0.3, 0.6 * h, 'paint'),
            _box(-0.38 * l, 0.18 * l, -0.44 * w, 0.44 * w, 0.6 * h, 0.94 * h, 'glass'),
            _box(-0.37 * l, 0.16 * l, -0.43 * w, 0.43 * w, 0.94 * h, h, 'paint'),
            _box(0.3 * l - 0.33, 0.3 * l + 0.33, -w / 2 + 0.02, w / 2 - 0.02, 0.0, 0.64, 'tyre'),
            _box(-0.3 * l - 0.33, -0.3 * l + 0.33, -w / 2 + 0.02, w / 2 - 0.02, 0.0, 0.64, 'tyre')]


def _truck(rng, l, w, h):
    lc = min(2.3, 0.3 * l)
    return [_box(l / 2 - lc, l / 2, -w / 2, w / 2, 0.5, 0.8 * h, 'paint'),
            _box(l / 2 - lc + 0.2, l / 2 - 0.1, -w / 2 + 0.05, w / 2 - 0.05, 0.8 * h, 0.85 * h + 0.2, 'glass'),
            _box(-l / 2, l / 2 - lc - 0.15, -w / 2, w / 2, 0.95, h, 'metal'),
            _box(l / 2 - lc / 2 - 0.5, l / 2 - lc / 2 + 0.5, -w / 2 + 0.05, w / 2 - 0.05, 0.0, 1.0, 'tyre'),
            _box(-l / 2 + 0.6, -l / 2 + 2.2, -w / 2 + 0.05, w / 2 - 0.05, 0.0, 1.0, 'tyre')]


def _bus(rng, l, w, h):
    return [_box(-l / 2, l / 2, -w / 2, w / 2, 0.35, h, 'bus'),
            _box(l / 2 - 3.0, l / 2 - 2.0, -w / 2 + 0.05, w / 2 - 0.05, 0.0, 1.0, 'tyre'),
            _box(-l / 2 + 2.0, -l / 2 + 3.0, -w / 2 + 0.05, w / 2 - 0.05, 0.0, 1.0, 'tyre')]


def _pedestrian(rng, h, walking):
    s = rng.uniform(0.9, 1.1)
    legs = ([_box(0.02, 0.3, -0.17 * s, -0.01, 0, 0.48 * h, 'cloth2'),
             _box(-0.3, -0.02, 0.01, 0.17 * s, 0, 0.48 * h, 'cloth2')] if walking else
            [_box(-0.1, 0.1, -0.17 * s, 0.17 * s, 0, 0.48 * h, 'cloth2')])
    return legs + [_box(-0.14, 0.14, -0.27 * s, 0.27 * s, 0.48 * h, 0.83 * h, 'cloth'),
                   _box(-0.1, 0.1, -0.09, 0.09, 0.85 * h, h, 'skin')]


def _cyclist(rng, h):
    return [_box(-0.88, -0.22, -0.04, 0.04, 0, 0.66, 'tyre'), _box(0.22, 0.88, -0.04, 0.04, 0, 0.66, 'tyre'),
            _box(-0.5, 0.55, -0.05, 0.05, 0.35, 0.95, 'paint'),
            _box(-0.2, 0.15, -0.16, 0.16, 0.6, 1.0, 'cloth2'),
            _box(-0.32, 0.08, -0.25, 0.25, 1.0, h - 0.25, 'cloth'),
            _box(-0.2, 0.0, -0.1, 0.1, h - 0.23, h, 'skin')]


def _bicycle(rng):
    return [_box(-0.88, -0.22, -0.04, 0.04, 0, 0.66, 'tyre'), _box(0.22, 0.88, -0.04, 0.04, 0, 0.66, 'tyre'),
            _box(-0.5, 0.55, -0.05, 0.05, 0.35, 0.9, 'paint'), _box(0.42, 0.52, -0.3, 0.3, 0.9, 1.02, 'tyre')]


def _cone(rng):
    return [_box(-0.2, 0.2, -0.2, 0.2, 0, 0.04, 'cone'), _box(-0.13, 0.13, -0.13, 0.13, 0.04, 0.38, 'cone'),
            _box(-0.07, 0.07, -0.07, 0.07, 0.38, 0.72, 'cone')]


def _barrier(rng):
    return [_box(-0.12, 0.12, -1.25, 1.25, 0.45, 1.0, 'barrier'), _box(-0.3, 0.3, -1.1, -0.9, 0, 0.45, 'metal'),
            _box(-0.3, 0.3, 0.9, 1.1, 0, 0.45, 'metal')]


def _pole(rng, h):
    return [_box(-0.12, 0.12, -0.12, 0.12, 0, h, 'metal'), _box(0.12, 2.0, -0.08, 0.08, h - 0.25, h, 'metal')]


def _tree(rng, h, r):
    z0 = max(3.9, h - 2 * r)
    return [_box(-0.17, 0.17, -0.17, 0.17, 0, z0 + 0.3, 'bark'), _box(-r, r, -r, r, z0, h, 'leaves'),
            _box(-0.7 * r, 0.7 * r, -0.7 * r, 0.7 * r, h, h + 0.5, 'leaves')]


def _traffic_sign(rng, h):
    return [_box(-0.04, 0.04, -0.04, 0.04, 0, h, 'metal'), _box(-0.04, 0.04, -0.35, 0.35, h - 0.05, h + 0.6, 'sign')]


# --------------------------------------------------------------------------------------------------------- scene
class StreetScene:
    """A street scene: objects, their parts as arrays, the street placement and the ego trajectory.

    Use :func:`generate_street_scene` to build one. Times are scene times in seconds.
    """

    def __init__(self, heading: float, origin: np.ndarray, ego_speed: float, ego_x0: float = 0.0):
        self.R_gs = yaw_matrix(heading)  # global-from-street rotation
        self.t_gs = np.asarray(origin, dtype=np.float64)
        self.heading = heading
        self.ego_speed = ego_speed
        self.ego_x0 = ego_x0
        self.green = False  # grass strips (terrain) along the curbs and between the buildings (extras)
        self.objects: List[SceneObject] = []
        self._parts: List[tuple] = []
        self.sun = self.R_gs @ (_SUN / np.linalg.norm(_SUN))

    # ------------------------------------------------------------------ construction
    def street_to_global(self, p: np.ndarray) -> np.ndarray:
        """(..., 3) street-frame points to the global frame."""
        return p @ self.R_gs.T + self.t_gs

    def add_object(self, kind: str, parts: list, street_xy: Tuple[float, float], yaw_street: float,
                   speed: float = 0.0, colour: Optional[np.ndarray] = None, colour2: Optional[np.ndarray] = None,
                   skin: Optional[np.ndarray] = None, attribute: Optional[str] = None) -> SceneObject:
        """Add an object built from ``parts`` (object frame: x forward, z = 0 on the ground).

        ``street_xy`` is where the object frame's origin stands; the annotation box is the union of the parts;
        ``speed`` (m/s) is along the street's +x.
        """
        centres = np.array([p[0] for p in parts], dtype=np.float64)
        halves = np.array([p[1] for p in parts], dtype=np.float64)
        lo, hi = (centres - halves).min(0), (centres + halves).max(0)
        mid = (lo + hi) / 2  # box centre in the object frame
        R_local = yaw_matrix(yaw_street)
        R_obj = self.R_gs @ R_local  # global-from-object
        box_centre_street = np.array([street_xy[0], street_xy[1], 0.0]) + R_local @ mid
        obj = SceneObject(inst_id=FIRST_OBJECT_ID + len(self.objects), kind=kind,
                          center=self.street_to_global(box_centre_street), size=hi - lo,
                          yaw=float(wrap_angle(self.heading + yaw_street)),
                          velocity=self.R_gs @ np.array([speed, 0.0, 0.0]), attribute=attribute)
        shift = mid  # parts relative to the box centre
        for (c, h, mat) in parts:
            c_obj = np.asarray(c, dtype=np.float64) - shift
            albedo = {'cloth': colour, 'cloth2': colour2, 'skin': skin, 'paint': colour, 'bus': colour,
                      'facade': colour, 'leaves': colour, 'fence': colour}.get(mat)
            if albedo is None:
                albedo = {'glass': (0.1, 0.12, 0.15), 'tyre': (0.06, 0.06, 0.06), 'metal': (0.55, 0.56, 0.58),
                          'cone': (0.95, 0.4, 0.05), 'barrier': (0.9, 0.2, 0.15), 'bark': (0.3, 0.22, 0.15),
                          'leaves': (0.2, 0.42, 0.15), 'fence': (0.45, 0.45, 0.42),
                          'sign': (0.85, 0.85, 0.9)}.get(mat, (0.5, 0.5, 0.5))
            refl, pattern = _MATERIALS['cloth' if mat == 'cloth2' else mat]
            sem = SEMANTIC_INDEX[_MATERIAL_SEMANTIC.get(mat) or KIND_SEMANTIC[kind]]
            self._parts.append((obj.center + R_obj @ c_obj, R_obj, np.asarray(h, dtype=np.float64),
                                obj.velocity, obj.inst_id, np.asarray(albedo, dtype=np.float64), refl, pattern,
                                sem))
        self.objects.append(obj)
        return obj

    def finalize(self) -> 'StreetScene':
        """Stack objects and parts into arrays (call once after the last :meth:`add_object`)."""
        p = self._parts
        self.part_center = np.array([q[0] for q in p])  # (P, 3) global, t = 0
        self.part_half = np.array([q[2] for q in p])  # (P, 3)
        self.part_vel = np.array([q[3] for q in p])  # (P, 3)
        self.part_inst = np.array([q[4] for q in p], dtype=np.int32)  # (P,)
        self.part_albedo = np.array([q[5] for q in p])  # (P, 3)
        self.part_refl = np.array([q[6] for q in p])  # (P,)
        self.part_pattern = np.array([q[7] for q in p], dtype=np.int8)  # (P,)
        self.part_sem = np.array([q[8] for q in p], dtype=np.uint8)  # (P,) index in SEMANTIC_CLASSES
        self.part_obj = self.part_inst - FIRST_OBJECT_ID
        objs = self.objects
        self.obj_center = np.array([o.center for o in objs])  # (O, 3)
        self.obj_half = np.array([o.size / 2 for o in objs])  # (O, 3)
        self.obj_vel = np.array([o.velocity for o in objs])  # (O, 3)
        self.obj_cos = np.cos([o.yaw for o in objs])  # (O,) every part shares its object's yaw
        self.obj_sin = np.sin([o.yaw for o in objs])
        counts = np.bincount(self.part_obj, minlength=len(objs))
        self.obj_parts = np.concatenate([[0], np.cumsum(counts)])  # parts of object i: [obj_parts[i], obj_parts[i+1])
        self.num_instances = FIRST_OBJECT_ID + len(objs)
        self._parts = []
        return self

    # ------------------------------------------------------------------ ego
    def ego_poses(self, t) -> Tuple[np.ndarray, np.ndarray]:
        """Global-from-ego poses at times ``t`` (s): rotations (..., 3, 3) and translations (..., 3)."""
        t = np.asarray(t, dtype=np.float64)
        x = self.ego_x0 + self.ego_speed * t
        p_street = np.stack([x, np.full_like(x, EGO_LANE_Y), np.zeros_like(x)], -1)
        R = np.broadcast_to(self.R_gs, t.shape + (3, 3))
        return R, self.street_to_global(p_street)

    def ego_pose(self, t: float) -> Tuple[np.ndarray, np.ndarray]:
        """Global-from-ego pose at time ``t``: rotation (3, 3), translation (3,)."""
        R, T = self.ego_poses(t)
        return np.array(R), np.array(T)

    # ------------------------------------------------------------------ ground
    def _ground(self, p_global: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Albedo (N, 3) and LiDAR reflectivity (N,) of the ground at global points (N, 3)."""
        s = (p_global - self.t_gs) @ self.R_gs  # street frame
        x, y = s[:, 0], s[:, 1]
        ay = np.abs(y)
        albedo = np.empty((len(s), 3))
        refl = np.full(len(s), 0.1)
        road = ay < ROAD_HALF_WIDTH
        albedo[road] = (0.27, 0.27, 0.28)
        walk = ~road & (ay < SIDEWALK_OUTER + 20)
        if self.green:
            walk &= (ay >= GRASS_STRIP) & (ay < SIDEWALK_OUTER + 0.3)
        albedo[walk] = (0.62, 0.6, 0.57)
        refl[walk] = 0.25
        seams = walk & ((np.mod(x, 2.0) < 0.05) | (np.mod(ay, 1.5) < 0.05))
        albedo[seams] = (0.45, 0.44, 0.42)
        far = ~road & ~walk
        albedo[far] = (0.35, 0.42, 0.25)
        refl[far] = 0.15
        centre = ay < 0.2
        albedo[centre] = (0.85, 0.7, 0.15)
        dashed = (np.abs(ay - (LANES[0] + LANES[1]) / 2) < 0.08) & (np.mod(x, 9.0) < 3.0)
        edge = np.abs(ay - (BIKE_LANE + PARKING) / 2 + 0.35) < 0.08
        stripe = np.abs(ay - (LANES[1] + BIKE_LANE) / 2 - 0.15) < 0.06
        paint = dashed | edge | stripe
        albedo[paint] = (0.9, 0.9, 0.88)
        refl[centre | paint] = 0.7
        # deterministic fine texture
        g = np.floor(s[:, :2] * 6.0)
        noise = np.mod(np.sin(g[:, 0] * 12.9898 + g[:, 1] * 78.233) * 43758.5453, 1.0)
        albedo *= (0.94 + 0.12 * noise)[:, None]
        return albedo, refl

    def ground_classes(self, p_global: np.ndarray) -> np.ndarray:
        """(N,) uint8 index in :data:`SEMANTIC_CLASSES` of the ground region at global points (N, 3); the regions are
        those :meth:`_ground` paints (lane markings, the parking strips beyond the edge line, sidewalks, terrain)."""
        s = (p_global - self.t_gs) @ self.R_gs
        x, ay = s[:, 0], np.abs(s[:, 1])
        road = ay < ROAD_HALF_WIDTH
        out = np.full(len(s), SEMANTIC_INDEX['terrain'], dtype=np.uint8)
        walk = ~road & (ay < SIDEWALK_OUTER + 20)
        if self.green:
            walk &= (ay >= GRASS_STRIP) & (ay < SIDEWALK_OUTER + 0.3)
        out[walk] = SEMANTIC_INDEX['sidewalk']
        edge_y = (BIKE_LANE + PARKING) / 2 - 0.35
        out[road] = SEMANTIC_INDEX['road']
        out[road & (ay >= edge_y + 0.08)] = SEMANTIC_INDEX['parking']
        dashed = (np.abs(ay - (LANES[0] + LANES[1]) / 2) < 0.08) & (np.mod(x, 9.0) < 3.0)
        paint = (ay < 0.2) | dashed | (np.abs(ay - edge_y) < 0.08) | (np.abs(ay - (LANES[1] + BIKE_LANE) / 2 - 0.15)
                                                                      < 0.06)
        out[road & paint] = SEMANTIC_INDEX['lane_marking']
        return out

    # ------------------------------------------------------------------ geometry helpers
    def _obj_corners(self, t: float, pad=0.0) -> np.ndarray:
        """(O, 8, 3) global corners of all object boxes at time ``t`` (half sizes padded by ``pad``)."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        local = signs[None] * (self.obj_half + np.reshape(pad, (-1, 1)))[:, None, :]  # (O, 8, 3)
        c, s = self.obj_cos[:, None], self.obj_sin[:, None]
        gx = c * local[..., 0] - s * local[..., 1]
        gy = s * local[..., 0] + c * local[..., 1]
        return (self.obj_center + self.obj_vel * t)[:, None, :] + np.stack([gx, gy, local[..., 2]], -1)

    def _part_normals(self, pidx: np.ndarray, axis: np.ndarray, d: np.ndarray) -> np.ndarray:
        """(N, 3) global normals of the faces ``axis`` (N,) of parts ``pidx`` (N,) facing against rays d (N, 3)."""
        o = self.part_obj[pidx]
        c, s = self.obj_cos[o], self.obj_sin[o]
        n = np.zeros((len(pidx), 3))
        a0, a1 = axis == 0, axis == 1
        n[a0, 0], n[a0, 1] = c[a0], s[a0]
        n[a1, 0], n[a1, 1] = -s[a1], c[a1]
        n[(axis == 2), 2] = 1.0
        return n * -np.sign(np.einsum('ni,ni->n', n, d))[:, None]

    # ------------------------------------------------------------------ camera
    def render_camera(self, cam: CameraModel, t: float) -> CameraFrame:
        """Render ``cam`` at time ``t`` (s): ego and objects where they are at ``t``."""
        R_ge, t_ge = self.ego_pose(t)
        R_gc = R_ge @ cam.rotation  # global-from-camera
        origin = R_ge @ cam.translation + t_ge
        H, W = cam.height, cam.width
        K = cam.intrinsic
        u = (np.arange(W) + 0.5 - K[0, 2]) / K[0, 0]
        v = (np.arange(H) + 0.5 - K[1, 2]) / K[1, 1]
        # global ray directions with unit camera z (ray parameter == depth), one (H, W) array per component
        dcx = u[None, :] - v[:, None] * (K[0, 1] / K[0, 0])
        dcy = np.broadcast_to(v[:, None], (H, W))
        D = [R_gc[i, 0] * dcx + R_gc[i, 1] * dcy + R_gc[i, 2] for i in range(3)]
        with np.errstate(divide='ignore'):
            inv_dz = 1.0 / D[2]

        depth = np.full((H, W), np.inf)
        part = np.full((H, W), -1, dtype=np.int32)  # -1 sky, -2 ground, >= 0 part index
        axis = np.zeros((H, W), dtype=np.int8)
        ground = D[2] < -1e-9
        depth[ground] = -origin[2] * inv_dz[ground]
        part[ground] = -2

        # screen-space bounds of each object box clipped to the near plane
        pc = (self._obj_corners(t) - origin) @ R_gc  # (O, 8, 3) camera frame
        near = 0.05
        ea, eb = pc[:, _EDGES[:, 0]], pc[:, _EDGES[:, 1]]  # (O, 12, 3)
        za, zb = ea[..., 2], eb[..., 2]
        cross = (za > near) != (zb > near)
        with np.errstate(divide='ignore', invalid='ignore'):
            f = np.where(cross, (near - za) / (zb - za), 0.0)
        cut = ea + f[..., None] * (eb - ea)  # (O, 12, 3) edge / near-plane intersections
        cand = np.concatenate([pc, cut], 1)  # (O, 20, 3)
        ok = np.concatenate([pc[..., 2] > near, cross], 1)
        zc = np.maximum(cand[..., 2], near)
        uv = (cand[..., :2] / zc[..., None]) @ K[:2, :2].T + K[:2, 2]
        big = 1e9
        u0 = np.floor(np.where(ok, uv[..., 0], big).min(1).clip(-1, W + 1)).astype(np.int64) - 1
        u1 = np.ceil(np.where(ok, uv[..., 0], -big).max(1).clip(-1, W + 1)).astype(np.int64) + 1
        v0 = np.floor(np.where(ok, uv[..., 1], big).min(1).clip(-1, H + 1)).astype(np.int64) - 1
        v1 = np.ceil(np.where(ok, uv[..., 1], -big).max(1).clip(-1, H + 1)).astype(np.int64) + 1
        u0, v0 = np.clip(u0, 0, W), np.clip(v0, 0, H)
        u1, v1 = np.clip(u1, 0, W), np.clip(v1, 0, H)
        todo = np.nonzero(ok.any(1) & (u1 > u0) & (v1 > v0))[0]

        sil: Dict[int, np.ndarray] = {}
        for i in todo:
            blk = (slice(v0[i], v1[i]), slice(u0[i], u1[i]))
            p0, p1 = self.obj_parts[i], self.obj_parts[i + 1]
            tn, kk, ax = self._hit_object(i, origin - (self.part_center[p0:p1] + self.part_vel[p0:p1] * t),
                                          D[0][blk], D[1][blk], inv_dz[blk])
            hit = tn < np.inf
            if not hit.any():
                continue
            rows, cols = np.nonzero(hit.any(1))[0], np.nonzero(hit.any(0))[0]
            sil[FIRST_OBJECT_ID + int(i)] = np.array(
                [hit.sum(), u0[i] + cols[0], v0[i] + rows[0], u0[i] + cols[-1], v0[i] + rows[-1]])
            db = depth[blk]
            closer = tn < db
            db[closer] = tn[closer]
            part[blk][closer] = p0 + kk[closer]
            axis[blk][closer] = ax[closer]

        inst = np.where(part >= 0, self.part_inst[np.maximum(part, 0)], np.where(part == -2, GROUND_ID, 0))
        image = self._shade(origin, D, depth, part, axis, t)
        return CameraFrame(image=image, instance_mask=inst.astype(np.int32), depth=depth.astype(np.float32),
                           silhouettes=sil)

    def _hit_object(self, i: int, o_rel: np.ndarray, dx: np.ndarray, dy: np.ndarray, inv_dz: np.ndarray):
        """First hit of rays with the parts of object ``i`` (slab method in the object frame).

        Args:
            o_rel: (k, 3) or (k, ..., 3) ray origins minus the k part centres (global), broadcastable to ``dx``.
            dx, dy: (...) global ray direction components; inv_dz: (...) 1 / global z component.

        Returns:
            t (...): ray parameter of the first hit (inf: none); part (...): index in [0, k); axis (...): face axis.
        """
        c, s = self.obj_cos[i], self.obj_sin[i]
        p0, p1 = self.obj_parts[i], self.obj_parts[i + 1]
        k = p1 - p0
        extra = (1,) * dx.ndim
        half = self.part_half[p0:p1]
        hx, hy, hz = (half[:, j].reshape((k,) + extra) for j in range(3))
        ox, oy, oz = o_rel[..., 0], o_rel[..., 1], o_rel[..., 2]
        if ox.ndim == 1:
            ox, oy, oz = (a.reshape((k,) + extra) for a in (ox, oy, oz))
        olx, oly = ox * c + oy * s, oy * c - ox * s
        with np.errstate(divide='ignore', invalid='ignore'):
            ix = 1.0 / (dx * c + dy * s)
            iy = 1.0 / (dy * c - dx * s)
            a, b = (-hx - olx) * ix, (hx - olx) * ix
            tnx, tf = np.minimum(a, b), np.maximum(a, b)
            a, b = (-hy - oly) * iy, (hy - oly) * iy
            tny = np.minimum(a, b)
            tf = np.minimum(tf, np.maximum(a, b))
            a, b = (-hz - oz) * inv_dz, (hz - oz) * inv_dz
            tnz = np.minimum(a, b)
            tf = np.minimum(tf, np.maximum(a, b))
        tn = np.maximum(np.maximum(tnx, tny), tnz)
        ax = np.where((tnx >= tny) & (tnx >= tnz), 0, np.where(tny >= tnz, 1, 2)).astype(np.int8)
        tn = np.where((tf >= tn) & (tn > 1e-6), tn, np.inf)
        if k == 1:
            return tn[0], np.zeros(tn.shape[1:], dtype=np.int64), ax[0]
        best = tn.argmin(0)
        pick = best[None]
        return (np.take_along_axis(tn, pick, 0)[0], best,
                np.take_along_axis(np.broadcast_to(ax, tn.shape), pick, 0)[0])

    def _shade(self, origin, D, depth, part, axis, t) -> np.ndarray:
        """(H, W, 3) uint8 RGB: Lambert + ambient shading, window patterns, haze and a sky gradient."""
        Dx, Dy, Dz = D
        sky = part == -1
        grd = part == -2
        tt = np.where(sky, 0.0, depth)
        px, py = origin[0] + tt * Dx, origin[1] + tt * Dy
        pp = np.maximum(part, 0)
        # albedo (H, W, 3): parts, then ground and window patterns on their pixels only
        albedo = self.part_albedo[pp]
        gi = np.nonzero(grd.ravel())[0]
        if len(gi):
            pts = np.stack([px.ravel()[gi], py.ravel()[gi], np.zeros(len(gi))], -1)
            albedo.reshape(-1, 3)[gi] = self._ground(pts)[0]
        wi = np.nonzero(((self.part_pattern[pp] > 0) & ~sky & ~grd).ravel())[0]
        if len(wi):
            pw, aw = pp.ravel()[wi], axis.ravel()[wi]
            o = self.part_obj[pw]
            c = self.part_center[pw] + self.part_vel[pw] * t
            rx, ry = px.ravel()[wi] - c[:, 0], py.ravel()[wi] - c[:, 1]
            rz = origin[2] + tt.ravel()[wi] * Dz.ravel()[wi] - c[:, 2]
            lx = rx * self.obj_cos[o] + ry * self.obj_sin[o]
            ly = ry * self.obj_cos[o] - rx * self.obj_sin[o]
            zb = rz + self.part_half[pw, 2]
            hor = np.where(aw == 0, ly, lx)
            floors = ((np.mod(zb, 3.2) > 1.0) & (np.mod(zb, 3.2) < 2.3) & (zb > 3.0)) | ((zb > 0.4) & (zb < 2.6))
            cols = (np.mod(hor, 3.0) > 0.7) & (np.mod(hor, 3.0) < 2.3)
            rel_z = zb / (2 * self.part_half[pw, 2])
            glass = (aw != 2) & np.where(self.part_pattern[pw] == 1, floors & cols, (rel_z > 0.5) & (rel_z < 0.85))
            albedo.reshape(-1, 3)[wi[glass]] = (0.16, 0.2, 0.27)
        # normals: box faces of parts, +z on the ground
        ob = self.part_obj[pp]
        c, s = self.obj_cos[ob], self.obj_sin[ob]
        nx = np.where(axis == 0, c, np.where(axis == 1, -s, 0.0))
        ny = np.where(axis == 0, s, np.where(axis == 1, c, 0.0))
        nz = np.where((axis == 2) | grd, 1.0, 0.0)
        nx, ny = np.where(grd, 0.0, nx), np.where(grd, 0.0, ny)
        facing = -np.sign(nx * Dx + ny * Dy + nz * Dz)
        lam = np.clip((nx * self.sun[0] + ny * self.sun[1] + nz * self.sun[2]) * facing, 0, 1)
        norm = np.sqrt(Dx * Dx + Dy * Dy + Dz * Dz)
        haze = 1 - np.exp(-tt * norm / 400.0)
        shade = 0.45 + 0.6 * lam
        g = np.clip(Dz / norm * 3.0, 0, 1)
        out = np.empty(depth.shape + (3,), dtype=np.uint8)
        for ch, (sun, hz, s0, s1) in enumerate(zip((1.0, 0.98, 0.94), (0.78, 0.84, 0.9), (0.78, 0.85, 0.93),
                                                   (0.35, 0.55, 0.85))):
            col = albedo[..., ch] * (shade * sun)
            col += haze * (hz - col)
            col = np.where(sky, s0 + g * (s1 - s0), col)
            out[..., ch] = np.clip(col * 255 + 0.5, 0, 255)
        return out

    # ------------------------------------------------------------------ lidar
    def scan_lidar(self, lidar: LidarModel, t_end: float, t_ref: float,
                   rng: Optional[np.random.Generator] = None, semantic: bool = False) -> LidarFrame:
        """Simulate one revolution ending at ``t_end`` (s); points in the lidar frame of the ego pose at ``t_ref``.

        Every column is fired at its own time (ego and objects move during the revolution); the points are then
        motion-compensated into the lidar frame at ``t_ref`` (exact for static objects). With ``semantic`` the
        frame also carries each point's class (``LidarFrame.semantic``); the points are the same either way.
        """
        B, A = len(lidar.elevations), lidar.num_azimuths
        tau = lidar.column_times(t_end)  # (A,)
        beta = lidar.column_azimuths() - lidar.yaw  # lidar-frame azimuths
        el = np.radians(np.asarray(lidar.elevations, dtype=np.float64))
        d_l = np.stack([np.cos(el)[:, None] * np.cos(beta)[None], np.cos(el)[:, None] * np.sin(beta)[None],
                        np.broadcast_to(np.sin(el)[:, None], (B, A))], -1)  # (B, A, 3)
        R_ge, t_ge = self.ego_poses(tau)  # (A, 3, 3), (A, 3)
        R_gl = R_ge @ lidar.rotation
        d = np.einsum('aij,baj->bai', R_gl, d_l)  # (B, A, 3) global unit directions
        o = np.einsum('aij,j->ai', R_ge, lidar.translation) + t_ge  # (A, 3)
        dx, dy = np.ascontiguousarray(d[..., 0]), np.ascontiguousarray(d[..., 1])
        with np.errstate(divide='ignore'):
            inv_dz = 1.0 / d[..., 2]

        best = np.full((B, A), np.inf)
        part = np.full((B, A), -1, dtype=np.int32)
        axis = np.zeros((B, A), dtype=np.int8)
        ground = d[..., 2] < -1e-9
        tg = -o[None, :, 2] * inv_dz
        best[ground] = tg[ground]
        part[ground] = -2

        # cull objects by azimuth and elevation as seen from the lidar at mid-revolution
        t_mid = t_end - lidar.period / 2
        R_mid, T_mid = self.ego_pose(t_mid)
        o_mid = R_mid @ lidar.translation + T_mid
        pad = (np.linalg.norm(self.obj_vel, axis=1) + abs(self.ego_speed)) * lidar.period / 2 + 0.05  # (O,)
        centres = self.obj_center + self.obj_vel * t_mid
        rel = o_mid - centres
        c, s = self.obj_cos, self.obj_sin
        rx, ry = rel[:, 0] * c + rel[:, 1] * s, rel[:, 1] * c - rel[:, 0] * s  # sensor in the object frame
        dxy_x = np.maximum(np.abs(rx) - self.obj_half[:, 0] - pad, 0)
        dxy_y = np.maximum(np.abs(ry) - self.obj_half[:, 1] - pad, 0)
        d_min = np.hypot(dxy_x, dxy_y)
        inside = d_min <= 0
        ce = (self._obj_corners(t_mid, pad) - o_mid) @ R_mid  # (O, 8, 3) ego-frame offsets
        d_max = np.hypot(ce[..., 0], ce[..., 1]).max(1)
        cen = (centres - o_mid) @ R_mid
        a_c = np.arctan2(cen[:, 1], cen[:, 0])
        da = wrap_angle(np.arctan2(ce[..., 1], ce[..., 0]) - a_c[:, None])
        a_lo, a_hi = a_c + da.min(1), a_c + da.max(1)
        z_top, z_bot = ce[..., 2].max(1), ce[..., 2].min(1)
        e_hi = np.arctan2(z_top, np.where(z_top >= 0, d_min, d_max))
        e_lo = np.arctan2(z_bot, np.where(z_bot >= 0, d_max, d_min))
        tilt = math.acos(min(1.0, lidar.rotation[2, 2])) + math.radians(0.5)
        step = 2 * math.pi / A
        for i in np.nonzero(d_min < lidar.max_range + 1.0)[0]:
            if inside[i]:
                cols, beams = np.arange(A), np.arange(B)
            else:
                j0 = int(math.floor((math.pi - a_hi[i]) / step - 0.5)) - 1
                j1 = int(math.ceil((math.pi - a_lo[i]) / step - 0.5)) + 1
                cols = np.arange(A) if j1 - j0 + 1 >= A else np.arange(j0, j1 + 1) % A
                beams = np.nonzero((el >= e_lo[i] - tilt) & (el <= e_hi[i] + tilt))[0]
                if len(beams) == 0:
                    continue
            ix = np.ix_(beams, cols)
            p0, p1 = self.obj_parts[i], self.obj_parts[i + 1]
            pc = self.part_center[p0:p1, None, :] + self.part_vel[p0:p1, None, :] * tau[None, cols, None]
            o_rel = (o[cols][None] - pc)[:, None]  # (k, 1, a, 3)
            tn, kk, ax = self._hit_object(i, o_rel, dx[ix], dy[ix], inv_dz[ix])
            cur = best[ix]
            closer = tn < cur
            if not closer.any():
                continue
            best[ix] = np.where(closer, tn, cur)
            part[ix] = np.where(closer, p0 + kk, part[ix])
            axis[ix] = np.where(closer, ax, axis[ix])

        if rng is None:
            rng = np.random.default_rng(0)
        noise = rng.standard_normal((B, A)) * lidar.range_noise
        inoise = rng.standard_normal((B, A)) * lidar.intensity_noise
        valid = (part != -1) & (best >= lidar.min_range) & (best <= lidar.max_range)
        ai, bi = np.nonzero(valid.T)  # scan order: column by column, beams within a column
        r = best[bi, ai] + noise[bi, ai]
        dd = d[bi, ai]
        pts = o[ai] + r[:, None] * dd
        pidx = part[bi, ai]
        obj = pidx >= 0
        normal = np.zeros_like(pts)
        normal[:, 2] = 1.0
        refl = np.empty(len(pts))
        if (~obj).any():
            _, refl[~obj] = self._ground(pts[~obj])
        po = pidx[obj]
        normal[obj] = self._part_normals(po, axis[bi, ai][obj], dd[obj])
        refl[obj] = self.part_refl[po]
        cos_inc = np.abs(np.einsum('ni,ni->n', normal, dd))
        intensity = refl * (0.25 + 0.75 * cos_inc) * 255 * np.clip(1.2 - r / 150, 0.5, 1.0) + inoise[bi, ai]
        intensity = np.clip(np.round(intensity), 0, 255)
        # global -> ego(t_ref) -> lidar
        R_ref, T_ref = self.ego_pose(t_ref)
        p_lidar = ((pts - T_ref) @ R_ref - lidar.translation) @ lidar.rotation
        inst = np.where(obj, self.part_inst[np.maximum(pidx, 0)], GROUND_ID).astype(np.int32)
        out = np.concatenate([p_lidar, intensity[:, None], bi[:, None].astype(np.float64)], 1).astype(np.float32)
        sem = None
        if semantic:  # ground class at the noise-free hit, else the class of the part hit
            sem = np.empty(len(pts), dtype=np.uint8)
            sem[obj] = self.part_sem[po]
            if (~obj).any():
                sem[~obj] = self.ground_classes(o[ai[~obj]] + best[bi[~obj], ai[~obj]][:, None] * dd[~obj])
        return LidarFrame(points=out, instance_ids=inst, times=tau[ai], semantic=sem)


# ------------------------------------------------------------------------------------------------------- layout
def _fill_line(rng, x0, x1, gap, length_fn, place):
    """Walk from x0 to x1 placing objects of random length separated by random gaps."""
    x = x0 + rng.uniform(*gap)
    while x < x1:
        length = length_fn()
        place(x + length / 2, length)
        x += length + rng.uniform(*gap)


def generate_street_scene(rng: np.random.Generator, t_min: float, t_max: float,
                          ego_speed: Optional[float] = None, extras: bool = False) -> StreetScene:
    """Build a random street scene populated for scene times in [t_min, t_max] (s).

    The street sits at a random heading and offset in the global frame (nuScenes-like map coordinates). The ego
    drives along the street's +x in the lane at y = -1.75 m starting at x = 0 at t = 0. ``extras`` adds street
    trees, traffic signs and hedges / fences / trees in the gaps between buildings (see :func:`_add_extras`);
    every other object is the same as without it.
    """
    heading = float(rng.uniform(-math.pi, math.pi))
    origin = np.array([rng.uniform(300, 2000), rng.uniform(300, 2000), 0.0])
    if ego_speed is None:
        ego_speed = 0.0 if rng.random() < 0.1 else float(rng.uniform(3.0, 11.0))
    scene = StreetScene(heading, origin, ego_speed)
    ex0, ex1 = ego_speed * t_min, ego_speed * t_max
    X0, X1 = min(ex0, ex1) - 130.0, max(ex0, ex1) + 130.0
    span = t_max - t_min

    def car_colour():
        return _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))] * rng.uniform(0.85, 1.1)

    def vehicle(kind):
        if kind == 'car':
            l, w, h = rng.uniform(3.9, 4.9), rng.uniform(1.75, 2.0), rng.uniform(1.45, 1.8)
            return _car(rng, l, w, h), l
        if kind == 'truck':
            l, w, h = rng.uniform(6.0, 9.5), rng.uniform(2.3, 2.5), rng.uniform(2.8, 3.6)
            return _truck(rng, l, w, h), l
        l, w, h = rng.uniform(10.0, 12.5), 2.5, rng.uniform(3.0, 3.4)
        return _bus(rng, l, w, h), l

    # buildings
    for side in (-1, 1):
        def place_building(xc, length, side=side):
            depth, height = rng.uniform(8, 20), rng.uniform(6, 30)
            y_front = SIDEWALK_OUTER + 0.2 + rng.uniform(0, 2.5)
            parts = [_box(-length / 2, length / 2, -depth / 2, depth / 2, 0, height, 'facade')]
            scene.add_object('building', parts, (xc, side * (y_front + depth / 2)), 0.0,
                             colour=_FACADE_COLOURS[rng.integers(len(_FACADE_COLOURS))] * rng.uniform(0.9, 1.05))

        _fill_line(rng, X0 - 40, X1 + 40, (0.0, 0.0) if rng.random() < 0.3 else (0.0, 7.0),
                   lambda: rng.uniform(10, 35), place_building)
    # lamp poles (arm over the road)
    for side in (-1, 1):
        x = X0 + rng.uniform(0, 20)
        while x < X1:
            scene.add_object('pole', _pole(rng, rng.uniform(6.5, 8.0)), (x, side * POLE_Y),
                             -side * math.pi / 2)
            x += rng.uniform(18, 32)
    # parking strips: parked vehicles, cone clusters, barriers
    for side in (-1, 1):
        x = X0 + rng.uniform(0, 5)
        while x < X1:
            r = rng.random()
            if r < 0.55:
                kind = 'car' if rng.random() < 0.85 else 'truck'
                parts, l = vehicle(kind)
                yaw = (0.0 if rng.random() < 0.5 else math.pi) + rng.normal(0, 0.03)
                scene.add_object(kind, parts, (x + l / 2, side * PARKING), yaw, colour=car_colour(),
                                 attribute='vehicle.parked')
                x += l + rng.uniform(0.8, 3.0)
            elif r < 0.63:
                n = int(rng.integers(1, 4))
                for i in range(n):
                    scene.add_object('traffic_cone', _cone(rng), (x + 0.4 + 1.2 * i, side * (PARKING - 0.6)),
                                     rng.uniform(-math.pi, math.pi))
                x += 1.2 * n + rng.uniform(1.0, 3.0)
            elif r < 0.68:
                scene.add_object('barrier', _barrier(rng), (x + 1.3, side * PARKING), math.pi / 2,
                                 colour=np.array([0.9, 0.2, 0.15]))
                x += 2.6 + rng.uniform(1.0, 3.0)
            else:
                x += rng.uniform(2.0, 9.0)
    # moving traffic in four lanes; every lane moves at one speed so that vehicles never collide
    for side in (-1, 1):
        for lane in LANES:
            y = side * lane
            direction = 1.0 if y < 0 else -1.0
            if y == EGO_LANE_Y:
                speed = ego_speed
            else:
                speed = 0.0 if rng.random() < 0.15 else float(rng.uniform(3.0, 13.0))
            v = direction * speed
            lo, hi = X0 - abs(v) * span - 20, X1 + abs(v) * span + 20
            x = lo + rng.uniform(0, 20)
            while x < hi:
                kind = rng.choice(['car', 'truck', 'bus'], p=[0.75, 0.15, 0.1])
                parts, l = vehicle(kind)
                xc = x + l / 2
                if y == EGO_LANE_Y and -1.0 - 9.0 - l / 2 < xc - scene.ego_x0 < 3.7 + 9.0 + l / 2:
                    x += rng.uniform(4, 8)  # keep clear of the ego vehicle
                    continue
                # positions are given at t = 0
                scene.add_object(kind, parts, (xc, y), 0.0 if direction > 0 else math.pi, speed=v,
                                 colour=car_colour(),
                                 attribute='vehicle.moving' if speed > 0.2 else 'vehicle.stopped')
                x += l + rng.uniform(6.0, 35.0)
    # cyclists in the bike lanes
    for side in (-1, 1):
        direction = 1.0 if side < 0 else -1.0
        v = direction * rng.uniform(3.0, 6.0)
        lo, hi = X0 - abs(v) * span - 10, X1 + abs(v) * span + 10
        x = lo + rng.uniform(0, 40)
        while x < hi:
            scene.add_object('cyclist', _cyclist(rng, rng.uniform(1.65, 1.85)), (x, side * BIKE_LANE),
                             0.0 if direction > 0 else math.pi, speed=v, colour=rng.uniform(0.1, 0.9, 3),
                             colour2=rng.uniform(0.05, 0.4, 3), skin=_SKIN_COLOURS[rng.integers(4)],
                             attribute='cycle.with_rider')
            x += rng.uniform(25, 90)
    # pedestrians on the sidewalks: one direction and speed per sidewalk lane (or standing)
    for side in (-1, 1):
        for lane in SIDEWALK_LANES:
            standing = rng.random() < 0.3
            v = 0.0 if standing else float(rng.choice([-1, 1]) * rng.uniform(0.8, 1.6))
            lo, hi = X0 - abs(v) * span - 5, X1 + abs(v) * span + 5
            x = lo + rng.uniform(0, 10)
            while x < hi:
                yaw = rng.uniform(-math.pi, math.pi) if standing else (0.0 if v > 0 else math.pi)
                scene.add_object('pedestrian', _pedestrian(rng, rng.uniform(1.5, 1.9), not standing),
                                 (x, side * lane), yaw, speed=v, colour=rng.uniform(0.05, 0.95, 3),
                                 colour2=rng.uniform(0.05, 0.5, 3), skin=_SKIN_COLOURS[rng.integers(4)],
                                 attribute='pedestrian.standing' if standing else 'pedestrian.moving')
                x += rng.uniform(3.0, 25.0)
    # parked bicycles along the building line
    for side in (-1, 1):
        x = X0 + rng.uniform(0, 30)
        while x < X1:
            scene.add_object('bicycle', _bicycle(rng), (x, side * BIKE_RACK_Y), 0.0 if rng.random() < 0.5 else
                             math.pi, colour=rng.uniform(0.1, 0.9, 3), attribute='cycle.without_rider')
            x += rng.uniform(2.0, 60.0)
    if extras:
        _add_extras(scene, np.random.default_rng(int(rng.integers(2 ** 62))), X0, X1)
    return scene.finalize()


def _street_x(scene: StreetScene, obj: SceneObject) -> Tuple[float, float]:
    s = (obj.center - scene.t_gs) @ scene.R_gs
    return float(s[0]), float(s[1])


def _street_extent(scene: StreetScene, obj: SceneObject) -> Tuple[float, float]:
    x = ((obj.corners_at(0.0) - scene.t_gs) @ scene.R_gs)[:, 0]
    return float(x.min()), float(x.max())


def _add_extras(scene: StreetScene, rng: np.random.Generator, X0: float, X1: float) -> None:
    """Grass strips along the curbs and between the buildings, trees between the lamp poles (trunk on the pole
    line, crown above the parking strip and the sidewalk), traffic signs, planters in free parking spaces, and a
    hedge or fence (sometimes with a tree behind it) in each gap between buildings."""
    scene.green = True
    for side in (-1, 1):
        parked = sorted(_street_extent(scene, o) for o in scene.objects
                        if np.linalg.norm(o.velocity) == 0 and abs(_street_x(scene, o)[1] - side * PARKING) < 1.0)
        prev = X0
        for a, b in parked + [(X1, X1)]:
            if a - prev > 3.0 and rng.random() < 0.6:
                length = min(a - prev - 1.0, rng.uniform(1.5, 4.0))
                h = rng.uniform(0.5, 1.3)
                scene.add_object('hedge', [_box(-length / 2, length / 2, -0.5, 0.5, 0, h, 'leaves')],
                                 ((prev + a) / 2, side * (PARKING + 0.4)), 0.0,
                                 colour=np.array([0.18, 0.38, 0.13]) * rng.uniform(0.8, 1.2))
            prev = max(prev, b)
        poles = sorted(_street_x(scene, o)[0] for o in scene.objects
                       if o.kind == 'pole' and _street_x(scene, o)[1] * side > 0)
        for a, b in zip(poles[:-1], poles[1:]):
            if rng.random() < 0.75:
                scene.add_object('tree', _tree(rng, rng.uniform(6.5, 9.0), rng.uniform(1.1, 1.6)),
                                 ((a + b) / 2 + rng.uniform(-2, 2), side * POLE_Y), rng.uniform(-math.pi, math.pi),
                                 colour=np.array([0.2, 0.42, 0.15]) * rng.uniform(0.7, 1.2))
            if rng.random() < 0.4:
                scene.add_object('traffic_sign', _traffic_sign(rng, rng.uniform(2.0, 2.6)),
                                 (a + (b - a) * rng.choice([0.25, 0.75]), side * POLE_Y), 0.0 if side < 0 else math.pi)
        fronts = []
        for o in scene.objects:
            if o.kind == 'building':
                x, y = _street_x(scene, o)
                if y * side > 0:
                    fronts.append((x - o.size[0] / 2, x + o.size[0] / 2))
        fronts.sort()
        for (a0, a1), (b0, b1) in zip(fronts[:-1], fronts[1:]):
            gap = b0 - a1
            if gap < 1.5 or b0 < X0 - 20 or a1 > X1 + 20:
                continue
            y_front = SIDEWALK_OUTER + 0.4
            if rng.random() < 0.5:
                h = rng.uniform(1.0, 1.8)
                parts = [_box(-gap / 2, gap / 2, -0.04, 0.04, 0, h, 'fence')]
                scene.add_object('fence', parts, ((a1 + b0) / 2, side * y_front), 0.0,
                                 colour=np.array([0.45, 0.45, 0.42]) * rng.uniform(0.8, 1.2))
            else:
                h, d = rng.uniform(0.8, 2.0), rng.uniform(0.6, 1.2)
                parts = [_box(-gap / 2, gap / 2, -d / 2, d / 2, 0, h, 'leaves')]
                scene.add_object('hedge', parts, ((a1 + b0) / 2, side * (y_front + d / 2)), 0.0,
                                 colour=np.array([0.16, 0.36, 0.12]) * rng.uniform(0.8, 1.2))
            if gap > 4.0 and rng.random() < 0.7:
                r = min(rng.uniform(1.2, 2.2), gap / 2 - 0.2)
                scene.add_object('tree', _tree(rng, rng.uniform(5.5, 10.0), r),
                                 ((a1 + b0) / 2, side * (y_front + 3.0 + r)), rng.uniform(-math.pi, math.pi),
                                 colour=np.array([0.2, 0.42, 0.15]) * rng.uniform(0.7, 1.2))


# -------------------------------------------------------------------------------------------------------- rigs
# nuScenes calibration (vehicle n015, as in v1.0-mini): ego-from-sensor rotation [w, x, y, z], translation (m),
# and the 1600 x 900 intrinsics (fx, cx, cy).
NUSCENES_CAMERAS = {
    'CAM_FRONT': ([0.4998015430569128, -0.5030316162024876, 0.4997798114386805, -0.49737083824542755],
                  [1.70079118954, 0.0159456324149, 1.51095763913], (1266.417203046554, 816.2670197447984,
                                                                     491.50706579294757)),
    'CAM_FRONT_RIGHT': ([0.2060347966337182, -0.2026940577919598, 0.6824507824531167, -0.6713610884174485],
                        [1.5508477543, -0.493404796419, 1.49574800619], (1260.8474446004698, 807.968244525554,
                                                                         495.3344268742088)),
    'CAM_FRONT_LEFT': ([0.6757265034669446, -0.6736266522251881, 0.21214015046209478, -0.21122827103904068],
                       [1.52387798135, 0.494631336551, 1.50932822144], (1272.5979470598488, 826.6154927353808,
                                                                        479.75165386361925)),
    'CAM_BACK': ([0.5037872666382278, -0.49740249788611096, -0.4941850223835201, 0.5045496097725578],
                 [0.0283260309358, 0.00345136761476, 1.57910346144], (809.2209905677063, 829.2196003259838,
                                                                      481.77842384512485)),
    'CAM_BACK_LEFT': ([0.6924185592174665, -0.7031619420114925, -0.11648342771943819, 0.11203317912370753],
                      [1.03569100218, 0.484795032713, 1.59097014818], (1256.7414812095406, 792.1125740759628,
                                                                       492.7757465151356)),
    'CAM_BACK_RIGHT': ([0.12280980120078765, -0.132400842670559, -0.7004305821388234, 0.690496031265798],
                       [1.0148780988, -0.480568219723, 1.56239545128], (1259.5137405846733, 807.2529053838625,
                                                                        501.19579884916527)),
}
NUSCENES_LIDAR = ([0.7077955119163518, -0.006492242056004365, 0.010646214713995808, -0.7063073142877817],
                  [0.943713, 0.0, 1.84023])
NUSCENES_IMAGE_SIZE = (1600, 900)
CAMERA_ORDER = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')


def nuscenes_rig(image_size: Tuple[int, int] = (640, 360), num_azimuths: int = 1080,
                 max_range: float = 70.0) -> Tuple[LidarModel, List[CameraModel]]:
    """nuScenes-like sensors: HDL-32E ``LIDAR_TOP`` and six cameras (K scaled to ``image_size`` = (W, H))."""
    W, H = image_size
    sx, sy = W / NUSCENES_IMAGE_SIZE[0], H / NUSCENES_IMAGE_SIZE[1]
    cams = []
    for name in CAMERA_ORDER:
        q, t, (f, cx, cy) = NUSCENES_CAMERAS[name]
        K = np.array([[f * sx, 0.0, cx * sx], [0.0, f * sy, cy * sy], [0.0, 0.0, 1.0]])
        cams.append(CameraModel(name, K, W, H, quaternion_matrix(q), np.array(t)))
    q, t = NUSCENES_LIDAR
    lidar = LidarModel('LIDAR_TOP', np.linspace(-30.67, 10.67, 32), num_azimuths, quaternion_matrix(q),
                       np.array(t), max_range=max_range)
    return lidar, cams


# KITTI calibration: rectified camera 0 intrinsics for 1242 x 375, velodyne-to-camera, camera offsets (m) along
# the rectified x axis (P_i = K [I | (t_i, 0, 0)]).
KITTI_IMAGE_SIZE = (1242, 375)
KITTI_K = (721.5377, 609.5593, 172.854)
KITTI_CAM_OFFSETS = (0.0, -0.537, 0.06, -0.475)
KITTI_VELO_TO_CAM = np.array([[0.0, -1.0, 0.0, -0.004], [0.0, 0.0, -1.0, -0.0763], [1.0, 0.0, 0.0, -0.2718]])
KITTI_IMU_TO_VELO = np.array([[1.0, 0.0, 0.0, -0.8087], [0.0, 1.0, 0.0, 0.3196], [0.0, 0.0, 1.0, -0.7997]])
KITTI_VELO_IN_EGO = np.array([0.8, 0.0, 1.73])


def kitti_rig(image_size: Tuple[int, int] = KITTI_IMAGE_SIZE,
              num_azimuths: int = 1800) -> Tuple[LidarModel, CameraModel, np.ndarray]:
    """KITTI-like sensors: HDL-64E velodyne and the left colour camera (image_2).

    Returns:
        lidar, camera 2 and K (3, 3) of the rectified cameras at ``image_size`` (the velodyne frame is x forward,
        y left, z up, at ``KITTI_VELO_IN_EGO`` in the ego frame; R0_rect = I).
    """
    W, H = image_size
    sx, sy = W / KITTI_IMAGE_SIZE[0], H / KITTI_IMAGE_SIZE[1]
    f, cx, cy = KITTI_K
    K = np.array([[f * sx, 0.0, cx * sx], [0.0, f * sy, cy * sy], [0.0, 0.0, 1.0]])
    elev = np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.33, 32)])
    lidar = LidarModel('LIDAR_TOP', elev, num_azimuths, np.eye(3), KITTI_VELO_IN_EGO.copy(), max_range=120.0)
    R_cv, t_cv = KITTI_VELO_TO_CAM[:, :3], KITTI_VELO_TO_CAM[:, 3]
    # camera 2: x_cam2 = x_rect + (t2, 0, 0) = R_cv x_velo + t_cv + (t2, 0, 0)
    centre_velo = R_cv.T @ (-np.array([KITTI_CAM_OFFSETS[2], 0.0, 0.0]) - t_cv)
    cam = CameraModel('CAM2', K, W, H, R_cv.T.copy(), centre_velo + KITTI_VELO_IN_EGO)
    return lidar, cam, K
