"""SemanticKITTI roots (real or generated): a validator and info writers with cameras.

:func:`validate_semantickitti_root` checks every frame of the listed sequences (velodyne, labels, image, calib) and
reports every problem with the file it concerns. :func:`create_semantickitti_infos` writes mmdet3d info pkls for
explicit sequence lists, with the stock converter's entries plus ``token`` and the camera (``images['CAM2']``:
``img_path``, ``cam2img`` = P2, ``lidar2cam`` = Tr, ``lidar2img`` = P2 Tr; KITTI's convention, as in mmdet3d's KITTI
infos), and *with labels for the test split* when asked, so that the same pkls serve
:class:`~mmxmodal.datasets.PairedSceneDataset` pretraining and the stock ``SemanticKittiDataset``.
:func:`stock_semantickitti_infos` runs mmdet3d's own ``create_data.py semantickitti`` converter, which hard-codes the
splits train 00-07, 09, 10 / val 08 / test 11-21 (:data:`STOCK_SPLITS`) and the frame count of every real sequence,
and keeps the listed frames that exist.

The label tables are SemanticKITTI's (``semantic-kitti.yaml``) and mmdet3d's (``configs/_base_/datasets/
semantickitti.py``).
"""
from __future__ import annotations

import json
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .mmdet3d_tools import load_converter, quiet, temporary_workdir

#: the sequences of each split that mmdet3d's ``create_data.py semantickitti`` lists
STOCK_SPLITS = {'train': (0, 1, 2, 3, 4, 5, 6, 7, 9, 10), 'val': (8,), 'test': tuple(range(11, 22))}
#: SemanticKITTI raw class ids (semantic-kitti.yaml ``labels``).
RAW_CLASSES = {
    0: 'unlabeled', 1: 'outlier', 10: 'car', 11: 'bicycle', 13: 'bus', 15: 'motorcycle', 16: 'on-rails',
    18: 'truck', 20: 'other-vehicle', 30: 'person', 31: 'bicyclist', 32: 'motorcyclist', 40: 'road',
    44: 'parking', 48: 'sidewalk', 49: 'other-ground', 50: 'building', 51: 'fence', 52: 'other-structure',
    60: 'lane-marking', 70: 'vegetation', 71: 'trunk', 72: 'terrain', 80: 'pole', 81: 'traffic-sign',
    99: 'other-object', 252: 'moving-car', 253: 'moving-bicyclist', 254: 'moving-person',
    255: 'moving-motorcyclist', 256: 'moving-on-rails', 257: 'moving-bus', 258: 'moving-truck',
    259: 'moving-other-vehicle'}
#: raw id -> learning id (19 = ignore), exactly mmdet3d's ``configs/_base_/datasets/semantickitti.py`` labels_map.
LEARNING_MAP = {0: 19, 1: 19, 10: 0, 11: 1, 13: 4, 15: 2, 16: 4, 18: 3, 20: 4, 30: 5, 31: 6, 32: 7, 40: 8, 44: 9,
                48: 10, 49: 11, 50: 12, 51: 13, 52: 19, 60: 8, 70: 14, 71: 15, 72: 16, 80: 17, 81: 18, 99: 19,
                252: 0, 253: 6, 254: 5, 255: 7, 256: 4, 257: 4, 258: 3, 259: 4}
#: learning classes of mmdet3d's SemanticKITTI config (its spelling); learning id 19 is ignored.
LEARNING_CLASSES = ('car', 'bicycle', 'motorcycle', 'truck', 'bus', 'person', 'bicyclist', 'motorcyclist', 'road',
                    'parking', 'sidewalk', 'other-ground', 'building', 'fence', 'vegetation', 'trunck', 'terrian',
                    'pole', 'traffic-sign')
IGNORE_INDEX = 19
CALIB_KEYS = ('P0', 'P1', 'P2', 'P3', 'Tr')


def check_sequences(seqs: Dict[str, Sequence[int]]) -> None:
    """Raise ``ValueError`` unless ``seqs`` maps split names to disjoint lists of sequence numbers in [0, 99]."""
    seen: Dict[int, str] = {}
    for split, lst in seqs.items():
        for s in lst:
            if not 0 <= int(s) <= 99:
                raise ValueError(f'sequence number {s} of split {split!r} is not in [0, 99]')
            if int(s) in seen:
                raise ValueError(f'sequence {int(s):02d} is in both the {seen[int(s)]!r} and the {split!r} split: '
                                 'train / val / test must be different sequences')
            seen[int(s)] = split


class SemanticKittiRootError(ValueError):
    """A SemanticKITTI root is unusable; ``problems`` lists every problem found (each names the file)."""

    def __init__(self, root: str, problems: List[str]):
        self.root, self.problems = root, problems
        more = f'\n  ... and {len(problems) - 20} more' if len(problems) > 20 else ''
        super().__init__(f'invalid SemanticKITTI root {root}: {len(problems)} problem(s):\n  '
                         + '\n  '.join(problems[:20]) + more)


def read_calib(path: str) -> Dict[str, np.ndarray]:
    """``calib.txt`` of a sequence -> {'P0'..'P3': (3, 4), 'Tr': (4, 4)}; errors name the file and the key."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'calibration file {path} is missing')
    out: Dict[str, np.ndarray] = {}
    with open(path) as f:
        for n, line in enumerate(f.read().splitlines(), 1):
            if not line.strip():
                continue
            key, _, vals = line.partition(':')
            try:
                out[key.strip()] = np.array([float(v) for v in vals.split()], dtype=np.float64)
            except ValueError:
                raise ValueError(f'calibration file {path} line {n}: {key.strip()!r} holds a non-number')
    for key in CALIB_KEYS:
        if key not in out:
            raise ValueError(f'calibration file {path} has no {key!r} line (found {sorted(out)})')
        if out[key].size != 12:
            raise ValueError(f'calibration file {path}: {key!r} has {out[key].size} values, expected 12 (3x4)')
    res = {k: out[k].reshape(3, 4) for k in ('P0', 'P1', 'P2', 'P3')}
    Tr = np.eye(4)
    Tr[:3] = out['Tr'].reshape(3, 4)
    res['Tr'] = Tr
    return res


def check_frame(velo: str, label: Optional[str], image: Optional[str]) -> List[str]:
    """Problems of one frame's files: missing / truncated velodyne ``.bin``, missing label or a label whose length
    differs from the scan's point count, raw class ids outside :data:`RAW_CLASSES`, missing image."""
    problems = []
    n = None
    if not osp.isfile(velo):
        problems.append(f'velodyne file {velo} is missing')
    elif osp.getsize(velo) % 16:
        problems.append(f'velodyne file {velo} is truncated ({osp.getsize(velo)} bytes is not a multiple of 16 = 4 '
                        f'float32 per point)')
    else:
        n = osp.getsize(velo) // 16
    if label is not None:
        if not osp.isfile(label):
            problems.append(f'label file {label} is missing')
        else:
            size = osp.getsize(label)
            if size % 4:
                problems.append(f'label file {label} is truncated ({size} bytes is not a multiple of 4 = uint32)')
            elif n is not None and size // 4 != n:
                problems.append(f'label file {label} has {size // 4} labels but its scan {velo} has {n} points')
            else:
                raw = np.fromfile(label, dtype='<u4') & 0xFFFF
                bad = np.setdiff1d(np.unique(raw), np.array(sorted(RAW_CLASSES)))
                if len(bad):
                    problems.append(f'label file {label} holds unknown raw class id(s) {bad[:10].tolist()} '
                                    f'(SemanticKITTI ids: {sorted(RAW_CLASSES)})')
    if image is not None and not osp.isfile(image):
        problems.append(f'image file {image} is missing')
    return problems


def list_frames(root: str, seq: int) -> List[str]:
    """Frame ids (``'NNNNNN'``) of the velodyne scans of sequence ``seq``, sorted."""
    d = osp.join(root, 'sequences', f'{seq:02d}', 'velodyne')
    if not osp.isdir(d):
        raise FileNotFoundError(f'sequence folder {d} does not exist')
    return sorted(osp.splitext(n)[0] for n in os.listdir(d) if n.endswith('.bin'))


def read_splits(root: str) -> Dict[str, List[int]]:
    """``splits.json`` of a generated root (split -> sequence numbers)."""
    path = osp.join(root, 'splits.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} is missing: pass the sequences of each split explicitly')
    with open(path) as f:
        return {k: [int(s) for s in v] for k, v in json.load(f).items()}


def validate_semantickitti_root(root: str, sequences: Optional[Dict[str, Sequence[int]]] = None,
                                labels: Sequence[str] = ('train', 'val', 'test'), camera: bool = True) -> dict:
    """Check a SemanticKITTI root (real or generated) before conversion.

    For every frame of every listed sequence: velodyne ``.bin`` whole 4-float points; (splits in ``labels``) a
    ``.label`` with one uint32 per point and known raw class ids; (``camera``) its ``image_2`` png; per sequence a
    ``calib.txt`` with P0-P3 and Tr, and ``poses.txt`` / ``times.txt`` with one line per frame when present.

    Returns:
        split -> list of (sequence, frame id).

    Raises:
        SemanticKittiRootError: listing every problem found (each names the file).
    """
    seqs = {k: list(v) for k, v in (sequences or read_splits(root)).items()}
    check_sequences(seqs)
    problems: List[str] = []
    out: Dict[str, list] = {}
    for split, lst in seqs.items():
        out[split] = []
        for seq in lst:
            base = osp.join(root, 'sequences', f'{seq:02d}')
            try:
                frames = list_frames(root, seq)
            except FileNotFoundError as e:
                problems.append(str(e))
                continue
            if not frames:
                problems.append(f'sequence folder {osp.join(base, "velodyne")} holds no .bin scan')
            try:
                read_calib(osp.join(base, 'calib.txt'))
            except (OSError, ValueError) as e:
                problems.append(str(e))
            for name in ('poses.txt', 'times.txt'):
                path = osp.join(base, name)
                if osp.isfile(path):
                    with open(path) as f:
                        count = len([ln for ln in f.read().splitlines() if ln.strip()])
                    if count != len(frames):
                        problems.append(f'{path} has {count} lines but the sequence has {len(frames)} scans')
            for fid in frames:
                problems += check_frame(osp.join(base, 'velodyne', f'{fid}.bin'),
                                        osp.join(base, 'labels', f'{fid}.label') if split in labels else None,
                                        osp.join(base, 'image_2', f'{fid}.png') if camera else None)
                out[split].append((seq, fid))
    if problems:
        raise SemanticKittiRootError(root, problems)
    return out


# ------------------------------------------------------------------------------------------------------ infos
def _info(root: str, seq: int, fid: str, calib: Optional[Dict[str, np.ndarray]], with_label: bool,
          image_size: Optional[Tuple[int, int]]) -> dict:
    s = f'{seq:02d}'
    info = dict(lidar_points=dict(lidar_path=osp.join('sequences', s, 'velodyne', f'{fid}.bin'), num_pts_feats=4),
                sample_id=str(seq) + str(int(fid)), token=f'{s}/{fid}')
    if with_label:
        info['pts_semantic_mask_path'] = osp.join('sequences', s, 'labels', f'{fid}.label')
    if calib is not None:
        cam2img = np.eye(4)
        cam2img[:3] = calib['P2']
        lidar2cam = calib['Tr']
        img = dict(img_path=osp.join('sequences', s, 'image_2', f'{fid}.png'), cam2img=cam2img.tolist(),
                   lidar2cam=lidar2cam.tolist(), lidar2img=(cam2img @ lidar2cam).tolist())
        if image_size is not None:
            img['width'], img['height'] = int(image_size[0]), int(image_size[1])
        info['images'] = dict(CAM2=img)
    return info


def create_semantickitti_infos(root: str, out_dir: Optional[str] = None,
                               sequences: Optional[Dict[str, Sequence[int]]] = None,
                               info_prefix: str = 'semantickitti', labels: Sequence[str] = ('train', 'val', 'test'),
                               camera: bool = True, on_error: str = 'raise') -> dict:
    """Write mmdet3d info pkls (``<prefix>_infos_<split>.pkl``) for explicit sequence lists.

    Each ``data_list`` entry has the keys of mmdet3d's ``create_data.py semantickitti`` (``lidar_points.lidar_path``,
    ``lidar_points.num_pts_feats``, ``pts_semantic_mask_path``, ``sample_id`` = str(sequence) + str(frame)) plus
    ``token`` ('NN/NNNNNN', unique, unlike ``sample_id``) and (``camera``) ``images['CAM2']`` with ``img_path``,
    ``cam2img`` (P2, 4x4), ``lidar2cam`` (Tr, 4x4), ``lidar2img``, ``width``, ``height``. Unlike the stock converter, the test split keeps
    its labels (splits in ``labels``), so a held-out sequence can be evaluated.

    Args:
        root: SemanticKITTI root. out_dir: folder of the pkls (default ``root``).
        sequences: split -> sequence numbers (default: ``splits.json`` of a generated root).
        labels: splits whose infos reference their ``.label`` files.
        camera: add ``images['CAM2']`` from each sequence's ``calib.txt``.
        on_error: ``'raise'``: any bad frame (see :func:`validate_semantickitti_root`) raises
            :class:`SemanticKittiRootError` naming every file; ``'skip'``: bad frames (or every frame of a sequence
            whose ``calib.txt`` is missing or bad) are left out, logged and counted.

    Returns:
        dict(pkls (split -> path), counts (split -> frames written), skipped (split -> frames left out),
        problems (list of messages of the frames left out)).
    """
    import mmengine
    from mmengine.logging import print_log

    from ..robust import check_on_error
    check_on_error(on_error)
    root = osp.abspath(root)
    out_dir = osp.abspath(out_dir or root)
    seqs = {k: [int(s) for s in v] for k, v in (sequences or read_splits(root)).items()}
    check_sequences(seqs)
    problems: List[str] = []
    result = dict(pkls={}, counts={}, skipped={}, problems=problems)
    lists: Dict[str, list] = {}
    for split, lst in seqs.items():
        data_list, skipped = [], 0
        for seq in lst:
            base = osp.join(root, 'sequences', f'{seq:02d}')
            try:
                frames = list_frames(root, seq)
            except FileNotFoundError as e:
                problems.append(str(e))
                continue
            calib, size = None, None
            if camera:
                try:
                    calib = read_calib(osp.join(base, 'calib.txt'))
                except (OSError, ValueError) as e:
                    problems.append(f'{e} (all {len(frames)} frames of sequence {seq:02d} left out)')
                    skipped += len(frames)
                    continue
            for fid in frames:
                img = osp.join(base, 'image_2', f'{fid}.png') if camera else None
                bad = check_frame(osp.join(base, 'velodyne', f'{fid}.bin'),
                                  osp.join(base, 'labels', f'{fid}.label') if split in labels else None, img)
                if bad:
                    problems.extend(bad)
                    skipped += 1
                    continue
                if camera and size is None:
                    size = _png_size(img)
                data_list.append(_info(root, seq, fid, calib, split in labels, size))
        lists[split] = data_list
        result['counts'][split] = len(data_list)
        result['skipped'][split] = skipped
    if problems and on_error == 'raise':
        raise SemanticKittiRootError(root, problems)
    for msg in problems:
        print_log(f'create_semantickitti_infos: skipping: {msg}', logger='current', level=logging.WARNING)
    os.makedirs(out_dir, exist_ok=True)
    for split, data_list in lists.items():
        path = osp.join(out_dir, f'{info_prefix}_infos_{split}.pkl')
        meta = dict(DATASET='SemanticKITTI', info_version='mmxmodal-1', split=split, sequences=seqs[split],
                    skipped_frames=result['skipped'][split])
        mmengine.dump(dict(metainfo=meta, data_list=data_list), path)
        result['pkls'][split] = path
    return result


def _png_size(path: str) -> Tuple[int, int]:
    """(W, H) from a PNG header."""
    with open(path, 'rb') as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError(f'image file {path} is not a PNG')
    return int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')


def stock_semantickitti_infos(root: str, out_dir: Optional[str] = None, info_prefix: str = 'semantickitti',
                              verbose: bool = False) -> dict:
    """Run mmdet3d's own ``create_data.py semantickitti`` converter, keeping the frames that exist in ``root``.

    The stock converter lists every frame of the real sequences (train 00-07, 09, 10; val 08; test 11-21, with
    their real frame counts, e.g. 4541 for sequence 00) without looking at the disk; the entries whose velodyne
    file is absent from ``root`` are dropped, the others are written unchanged to ``out_dir`` under the stock names.

    Returns:
        dict(pkls (split -> path), counts (split -> kept entries), listed (split -> entries of the stock converter)).
    """
    import mmengine

    root = osp.abspath(root)
    out_dir = osp.abspath(out_dir or root)
    conv = load_converter('semantickitti_converter')
    out = dict(pkls={}, counts={}, listed={})
    with temporary_workdir({}) as tmp, quiet(verbose):
        conv.create_semantickitti_info_file(info_prefix, tmp)
        os.makedirs(out_dir, exist_ok=True)
        for split in ('train', 'val', 'test'):
            name = f'{info_prefix}_infos_{split}.pkl'
            data = mmengine.load(osp.join(tmp, name))
            out['listed'][split] = len(data['data_list'])
            data['data_list'] = [d for d in data['data_list']
                                 if osp.isfile(osp.join(root, d['lidar_points']['lidar_path']))]
            mmengine.dump(data, osp.join(out_dir, name))
            out['pkls'][split] = osp.join(out_dir, name)
            out['counts'][split] = len(data['data_list'])
    return out


def class_histogram(root: str, sequences: Optional[Dict[str, Sequence[int]]] = None) -> Dict[str, Dict[str, int]]:
    """Points per learning class (``LEARNING_CLASSES`` + 'ignore') in each split of a root."""
    seqs = sequences or read_splits(root)
    lut = np.full(1 << 16, IGNORE_INDEX, dtype=np.int64)
    for raw, learn in LEARNING_MAP.items():
        lut[raw] = learn
    out = {}
    for split, lst in seqs.items():
        counts = np.zeros(IGNORE_INDEX + 1, dtype=np.int64)
        for seq in lst:
            for fid in list_frames(root, seq):
                lab = np.fromfile(osp.join(root, 'sequences', f'{seq:02d}', 'labels', f'{fid}.label'), '<u4')
                counts += np.bincount(lut[lab & 0xFFFF], minlength=IGNORE_INDEX + 1)
        out[split] = {name: int(c) for name, c in zip(LEARNING_CLASSES + ('ignore',), counts)}
    return out
