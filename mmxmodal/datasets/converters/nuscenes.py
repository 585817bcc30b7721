"""nuScenes roots (real or generated): a validator and the info writer (mmdet3d's ``create_data.py nuscenes``).

:func:`validate_nuscenes_root` checks a root before conversion and reports every problem with the table, token or
file it concerns; :func:`create_nuscenes_infos` runs mmdet3d's own converter (``create_nuscenes_infos`` for the v1
infos, then ``update_pkl_infos`` v1 -> v2) as ``python tools/create_data.py nuscenes`` does.

mmdet3d's ``update_nuscenes_infos`` opens the devkit at the hard-coded ``./data/nuscenes``, so the conversion runs in
a temporary working directory where ``data/nuscenes`` links to the root (this also gives the info pkls the relative
sweep paths ``data/nuscenes/sweeps/...`` that a stock ``create_data.py`` run produces). The v1 pkls are converted
from a temporary folder, so the converters' 5 s "overwriting" pauses never trigger; the v2 pkls are written to
``out_dir`` under the names ``create_data.py`` uses (``nuscenes_infos_{train,val}.pkl``).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional

import numpy as np

from .mmdet3d_tools import create_gt_database, load_converter, quiet, temporary_workdir

#: the tables of a nuScenes ``<version>/`` folder (``lidarseg.json`` is optional)
TABLES = ('category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor', 'ego_pose', 'log',
          'scene', 'sample', 'sample_data', 'sample_annotation', 'map')


class NuScenesRootError(ValueError):
    """A nuScenes root is unusable; ``problems`` lists every problem found (each names the file or token)."""

    def __init__(self, root: str, problems: List[str]):
        self.root, self.problems = root, problems
        shown = problems[:20]
        more = f'\n  ... and {len(problems) - 20} more' if len(problems) > 20 else ''
        super().__init__(f'invalid nuScenes root {root}: {len(problems)} problem(s):\n  ' + '\n  '.join(shown) + more)


# (table, field) -> referenced table; list fields hold lists of tokens; '' is "none" for optional links
_REFERENCES = {
    ('scene', 'log_token'): 'log', ('scene', 'first_sample_token'): 'sample',
    ('scene', 'last_sample_token'): 'sample', ('sample', 'scene_token'): 'scene', ('sample', 'prev'): 'sample',
    ('sample', 'next'): 'sample', ('sample_data', 'sample_token'): 'sample',
    ('sample_data', 'ego_pose_token'): 'ego_pose', ('sample_data', 'calibrated_sensor_token'): 'calibrated_sensor',
    ('sample_data', 'prev'): 'sample_data', ('sample_data', 'next'): 'sample_data',
    ('calibrated_sensor', 'sensor_token'): 'sensor', ('instance', 'category_token'): 'category',
    ('instance', 'first_annotation_token'): 'sample_annotation',
    ('instance', 'last_annotation_token'): 'sample_annotation', ('sample_annotation', 'sample_token'): 'sample',
    ('sample_annotation', 'instance_token'): 'instance', ('sample_annotation', 'visibility_token'): 'visibility',
    ('sample_annotation', 'attribute_tokens'): 'attribute', ('sample_annotation', 'prev'): 'sample_annotation',
    ('sample_annotation', 'next'): 'sample_annotation', ('map', 'log_tokens'): 'log',
}
_OPTIONAL = {('sample', 'prev'), ('sample', 'next'), ('sample_data', 'prev'), ('sample_data', 'next'),
             ('sample_annotation', 'prev'), ('sample_annotation', 'next'), ('sample_annotation', 'visibility_token')}
LIDAR_POINT_BYTES = 5 * 4  # nuScenes LiDAR .pcd.bin: float32 x y z intensity ring


def validate_nuscenes_root(root: str, version: str = 'v1.0-mini', check_files: bool = True) -> Dict[str, list]:
    """Check a nuScenes root (real or generated) before conversion.

    Checks that every table exists and parses, tokens are unique, every referenced token is defined (naming the
    table, record token, field and missing token), counts and first/last links agree, every file referenced by
    ``sample_data`` and ``map`` exists (naming the file and the sample_data token), every LiDAR ``.bin`` holds
    a whole number of 5-float points (naming the file), and every quaternion, translation and camera intrinsic
    matrix is well formed (naming the table and record token).

    Returns:
        The loaded tables (name -> records).

    Raises:
        NuScenesRootError: listing every problem found.
    """
    problems: List[str] = []
    table_dir = osp.join(root, version)
    if not osp.isdir(table_dir):
        raise NuScenesRootError(root, [f'table folder {table_dir} does not exist'])
    tables: Dict[str, list] = {}
    for name in TABLES:
        path = osp.join(table_dir, f'{name}.json')
        if not osp.isfile(path):
            problems.append(f'table file {path} is missing')
            continue
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            problems.append(f'table file {path} cannot be parsed: {e}')
            continue
        if not isinstance(data, list) or not all(isinstance(r, dict) and 'token' in r for r in data):
            problems.append(f'table file {path} is not a list of records with a "token"')
            continue
        tables[name] = data
    if problems:
        raise NuScenesRootError(root, problems)
    index = {}
    for name, recs in tables.items():
        index[name] = {}
        for r in recs:
            if r['token'] in index[name]:
                problems.append(f'{name}.json: duplicate token {r["token"]}')
            index[name][r['token']] = r
    for (name, fld), target in _REFERENCES.items():
        for r in tables[name]:
            if fld not in r:
                problems.append(f'{name}.json: record {r["token"]} has no field {fld!r}')
                continue
            vals = r[fld] if isinstance(r[fld], list) else [r[fld]]
            for v in vals:
                if v == '' and (name, fld) in _OPTIONAL:
                    continue
                if v not in index[target]:
                    problems.append(f'{name}.json: record {r["token"]} field {fld!r} references {target} token '
                                    f'{v!r}, which is not defined in {target}.json')
    if not problems:
        _check_counts(tables, index, problems)
    _check_geometry(tables, problems)
    if check_files:
        for r in tables['sample_data']:
            fn = r.get('filename', '')
            path = osp.join(root, fn)
            if not osp.isfile(path):
                problems.append(f'sample_data {r["token"]}: file {fn} is missing ({path})')
            elif fn.endswith('.bin') and 'LIDAR' in fn:
                size = osp.getsize(path)
                if size == 0 or size % LIDAR_POINT_BYTES:
                    problems.append(f'sample_data {r["token"]}: file {fn} is truncated ({size} bytes is not a '
                                    f'positive multiple of {LIDAR_POINT_BYTES} = 5 float32 per point)')
        for r in tables['map']:
            fn = r.get('filename', '')
            if not osp.isfile(osp.join(root, fn)):
                problems.append(f'map {r["token"]}: file {fn} is missing')
    if not problems and osp.isfile(osp.join(table_dir, 'lidarseg.json')):
        tables['lidarseg'] = _check_lidarseg(root, table_dir, index['sample_data'], check_files, problems)
    if problems:
        raise NuScenesRootError(root, problems)
    return tables


def _check_geometry(tables: Dict[str, list], problems: List[str], tol: float = 1e-2) -> None:
    """Quaternions (``rotation``: [w, x, y, z], unit norm within ``tol``), translations (3 finite values) and camera
    intrinsics (3x3, positive focal lengths) of ``calibrated_sensor``, ``ego_pose`` and ``sample_annotation``; a
    zero quaternion otherwise crashes the converter with a bare ``ZeroDivisionError``."""
    for name in ('calibrated_sensor', 'ego_pose', 'sample_annotation'):
        for r in tables.get(name, []):
            where = f'{name}.json: record {r["token"]}'
            q = r.get('rotation')
            try:
                qa = np.asarray(q, dtype=np.float64)
            except (TypeError, ValueError):
                qa = np.zeros(0)
            if qa.shape != (4, ) or not np.isfinite(qa).all() or abs(float(np.linalg.norm(qa)) - 1.0) > tol:
                norm = f'norm {float(np.linalg.norm(qa)):.4g}' if qa.shape == (4, ) and np.isfinite(qa).all() \
                    else 'not 4 finite numbers'
                problems.append(f'{where}: field "rotation" = {q!r} is not a unit quaternion ({norm}); expected '
                                '[w, x, y, z] with norm 1')
            t = r.get('translation')
            try:
                ta = np.asarray(t, dtype=np.float64)
            except (TypeError, ValueError):
                ta = np.zeros(0)
            if ta.shape != (3, ) or not np.isfinite(ta).all():
                problems.append(f'{where}: field "translation" = {t!r} is not 3 finite numbers (metres)')
            k = r.get('camera_intrinsic') if name == 'calibrated_sensor' else None
            if k:  # [] for LiDAR / radar
                try:
                    ka = np.asarray(k, dtype=np.float64)
                except (TypeError, ValueError):
                    ka = np.zeros(0)
                if ka.shape != (3, 3) or not np.isfinite(ka).all() or not (ka[0, 0] > 0 and ka[1, 1] > 0) or \
                        not np.allclose(ka[2], [0, 0, 1], atol=1e-6):
                    problems.append(f'{where}: field "camera_intrinsic" = {k!r} is not a 3x3 intrinsic matrix '
                                    '[[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0')


def _check_lidarseg(root: str, table_dir: str, sample_data: Dict[str, dict], check_files: bool,
                    problems: List[str]) -> list:
    """Check ``lidarseg.json``: records reference keyframe LiDAR sample_data, label files exist and hold one uint8 per
    point of their scan."""
    path = osp.join(table_dir, 'lidarseg.json')
    try:
        with open(path) as f:
            recs = json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f'table file {path} cannot be parsed: {e}')
        return []
    for r in recs:
        sd = sample_data.get(r.get('sample_data_token'))
        if sd is None:
            problems.append(f'lidarseg.json: record {r.get("token")} references sample_data token '
                            f'{r.get("sample_data_token")!r}, which is not defined in sample_data.json')
            continue
        if not check_files:
            continue
        label, scan = osp.join(root, r.get('filename', '')), osp.join(root, sd['filename'])
        if not osp.isfile(label):
            problems.append(f'lidarseg {r["token"]}: label file {r.get("filename")} is missing ({label})')
        elif osp.isfile(scan) and osp.getsize(label) * LIDAR_POINT_BYTES != osp.getsize(scan):
            problems.append(f'lidarseg {r["token"]}: label file {r.get("filename")} has {osp.getsize(label)} labels '
                            f'but its scan {sd["filename"]} has {osp.getsize(scan) // LIDAR_POINT_BYTES} points')
    return recs


def _check_counts(tables: Dict[str, list], index: Dict[str, dict], problems: List[str]) -> None:
    for sc in tables['scene']:
        tok, seen, count = sc['first_sample_token'], set(), 0
        last = tok
        while tok and tok not in seen:
            seen.add(tok)
            count += 1
            last = tok
            tok = index['sample'][tok]['next'] if tok in index['sample'] else ''
        if count != sc.get('nbr_samples'):
            problems.append(f'scene.json: scene {sc["token"]} nbr_samples={sc.get("nbr_samples")} but its sample '
                            f'chain has {count} samples')
        if last != sc['last_sample_token']:
            problems.append(f'scene.json: scene {sc["token"]} last_sample_token {sc["last_sample_token"]} is not the '
                            f'end of its sample chain ({last})')
    counts: Dict[str, int] = {}
    for a in tables['sample_annotation']:
        counts[a['instance_token']] = counts.get(a['instance_token'], 0) + 1
    for inst in tables['instance']:
        if counts.get(inst['token'], 0) != inst.get('nbr_annotations'):
            problems.append(f'instance.json: instance {inst["token"]} nbr_annotations={inst.get("nbr_annotations")} '
                            f'but sample_annotation.json has {counts.get(inst["token"], 0)}')
    for name, table in (('sample', 'sample'), ('sample_data', 'sample_data'), ('sample_annotation',
                                                                                'sample_annotation')):
        for r in tables[name]:
            if r['next'] and index[table][r['next']]['prev'] != r['token']:
                problems.append(f'{name}.json: record {r["token"]} next={r["next"]} but that record\'s prev is '
                                f'{index[table][r["next"]]["prev"]!r}')


def create_nuscenes_infos(root: str, out_dir: Optional[str] = None, version: str = 'v1.0-mini',
                          max_sweeps: int = 10, info_prefix: str = 'nuscenes', validate: bool = True,
                          gt_database: bool = False, verbose: bool = False) -> List[str]:
    """Run mmdet3d's nuScenes converter (``create_data.py nuscenes``) on ``root``.

    Args:
        root: nuScenes data root (real or generated).
        out_dir: folder for the v2 info pkls (default: ``root``, as ``create_data.py``).
        version: ``'v1.0-mini'``, ``'v1.0-trainval'`` or ``'v1.0-test'``.
        max_sweeps: previous LiDAR sweeps recorded per keyframe.
        info_prefix: pkl name prefix (``--extra-tag``).
        validate: check the root with :func:`validate_nuscenes_root` first.
        gt_database: also build mmdet3d's GT database from the train infos (written into ``root``).
        verbose: let the converters print.

    Returns:
        Paths of the v2 info pkls (train then val; test for ``v1.0-test``).
    """
    root = osp.abspath(root)
    out_dir = osp.abspath(out_dir or root)
    if validate:
        validate_nuscenes_root(root, version)
    os.makedirs(out_dir, exist_ok=True)
    conv = load_converter('nuscenes_converter')
    upd = load_converter('update_infos_to_v2')
    splits = ['test'] if version == 'v1.0-test' else ['train', 'val']
    outs = []
    with temporary_workdir({osp.join('data', 'nuscenes'): root}), quiet(verbose):
        conv.create_nuscenes_infos(osp.join('.', 'data', 'nuscenes'), info_prefix, version=version,
                                   max_sweeps=max_sweeps)
        os.makedirs('v1')
        for split in splits:
            name = f'{info_prefix}_infos_{split}.pkl'
            shutil.move(osp.join(root, name), osp.join('v1', name))
            upd.update_pkl_infos('nuscenes', out_dir=out_dir, pkl_path=osp.join('v1', name))
            outs.append(osp.join(out_dir, name))
    if gt_database and 'train' in splits:
        create_gt_database('NuScenesDataset', root, info_prefix, outs[0], verbose)
    return outs
