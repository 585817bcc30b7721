"""Create mmdet3d v2 info pkls for nuScenes and KITTI roots with mmdet3d's own converters.

mmdet3d 1.4 ships ``tools/create_data.py`` and ``tools/dataset_converters/`` inside its wheel under
``mmdet3d/.mim/tools/``. ``create_data.py`` parses ``sys.argv`` at import time, so this module imports the converter
modules it calls (``nuscenes_converter``, ``kitti_converter``, ``update_infos_to_v2``, ``create_gt_database``) and
runs the same steps as ``python tools/create_data.py nuscenes|kitti``:

* nuScenes: ``create_nuscenes_infos`` (v1 infos, mini_train / mini_val split) then ``update_pkl_infos`` (v1 -> v2);
* KITTI: ``create_kitti_info_file`` + ``create_reduced_point_cloud`` (``training/velodyne_reduced``) then
  ``update_pkl_infos`` for train / val / trainval / test;
* optionally ``create_groundtruth_database`` (``<prefix>_gt_database/`` + ``<prefix>_dbinfos_train.pkl``).

The converter package is loaded under a private name so that it cannot clash with a project's own ``tools``
package. mmdet3d's ``update_nuscenes_infos`` opens the devkit at the hard-coded ``./data/nuscenes``, so the
nuScenes steps run in a temporary working directory where ``data/nuscenes`` links to the root (this also gives the
info pkls the relative sweep paths ``data/nuscenes/sweeps/...`` that a stock ``create_data.py`` run produces). The
v1 pkls are converted from a temporary folder, so the converters' 5 s "overwriting" pauses never trigger; the v2
pkls are written to ``out_dir`` under the names ``create_data.py`` uses (``nuscenes_infos_{train,val}.pkl``,
``kitti_infos_{train,val,trainval,test}.pkl``).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import os
import os.path as osp
import shutil
import sys
import tempfile
import types
from typing import Dict, List, Optional

_PKG = '_mmxmodal_mmdet3d_dataset_converters'


def mmdet3d_tools_dir() -> str:
    """Folder of the ``tools`` shipped with the installed mmdet3d (``mmdet3d/.mim/tools`` in the wheel, or the
    ``tools`` folder next to an editable source checkout)."""
    import mmdet3d
    pkg = osp.dirname(mmdet3d.__file__)
    for cand in (osp.join(pkg, '.mim', 'tools'), osp.join(osp.dirname(pkg), 'tools')):
        if osp.isfile(osp.join(cand, 'create_data.py')) and osp.isdir(osp.join(cand, 'dataset_converters')):
            return cand
    raise FileNotFoundError(f'mmdet3d at {pkg} ships no tools/create_data.py (looked in mmdet3d/.mim/tools and '
                            f'{osp.join(osp.dirname(pkg), "tools")})')


def load_converter(name: str) -> types.ModuleType:
    """Import ``tools/dataset_converters/<name>.py`` of the installed mmdet3d (e.g. ``'nuscenes_converter'``)."""
    if _PKG not in sys.modules:
        path = osp.join(mmdet3d_tools_dir(), 'dataset_converters')
        pkg = types.ModuleType(_PKG)
        pkg.__path__ = [path]  # namespace-like package: the converters' relative imports resolve inside it
        pkg.__package__ = _PKG
        sys.modules[_PKG] = pkg
    return importlib.import_module(f'{_PKG}.{name}')


@contextlib.contextmanager
def _quiet(verbose: bool):
    if verbose:
        yield
    else:
        with contextlib.redirect_stdout(io.StringIO()):
            yield


@contextlib.contextmanager
def _workdir(links: Dict[str, str]):
    """chdir into a fresh temporary folder holding symlinks ``links`` (relative path -> target); restore after."""
    tmp = tempfile.mkdtemp(prefix='mmxmodal_infos_')
    cwd = os.getcwd()
    try:
        for rel, target in links.items():
            os.makedirs(osp.dirname(osp.join(tmp, rel)) or tmp, exist_ok=True)
            os.symlink(osp.abspath(target), osp.join(tmp, rel))
        os.chdir(tmp)
        yield tmp
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


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
    from .nuscenes import validate_nuscenes_root
    root = osp.abspath(root)
    out_dir = osp.abspath(out_dir or root)
    if validate:
        validate_nuscenes_root(root, version)
    os.makedirs(out_dir, exist_ok=True)
    conv = load_converter('nuscenes_converter')
    upd = load_converter('update_infos_to_v2')
    splits = ['test'] if version == 'v1.0-test' else ['train', 'val']
    outs = []
    with _workdir({osp.join('data', 'nuscenes'): root}) as tmp, _quiet(verbose):
        conv.create_nuscenes_infos(osp.join('.', 'data', 'nuscenes'), info_prefix, version=version,
                                   max_sweeps=max_sweeps)
        os.makedirs('v1')
        for split in splits:
            name = f'{info_prefix}_infos_{split}.pkl'
            shutil.move(osp.join(root, name), osp.join('v1', name))
            upd.update_pkl_infos('nuscenes', out_dir=out_dir, pkl_path=osp.join('v1', name))
            outs.append(osp.join(out_dir, name))
    if gt_database and 'train' in splits:
        _gt_database('NuScenesDataset', root, info_prefix, outs[0], verbose)
    return outs


def create_kitti_infos(root: str, out_dir: Optional[str] = None, info_prefix: str = 'kitti',
                       with_plane: bool = False, validate: bool = True, gt_database: bool = False,
                       verbose: bool = False) -> List[str]:
    """Run mmdet3d's KITTI converter (``create_data.py kitti``) on ``root``.

    Writes ``training/velodyne_reduced`` (and ``testing/velodyne_reduced``) into ``root`` like the converter.

    Returns:
        Paths of the v2 info pkls: train, val, trainval, test.
    """
    from .kitti import validate_kitti_root
    root = osp.abspath(root)
    out_dir = osp.abspath(out_dir or root)
    if validate:
        validate_kitti_root(root)
    os.makedirs(out_dir, exist_ok=True)
    kitti = load_converter('kitti_converter')
    upd = load_converter('update_infos_to_v2')
    outs = []
    with _workdir({}) as tmp, _quiet(verbose):
        os.makedirs('v1')
        v1 = osp.join(tmp, 'v1')
        kitti.create_kitti_info_file(root, info_prefix, with_plane, save_path=v1)
        kitti.create_reduced_point_cloud(root, info_prefix, *(osp.join(v1, f'{info_prefix}_infos_{s}.pkl')
                                                              for s in ('train', 'val', 'test')))
        for split in ('train', 'val', 'trainval', 'test'):
            name = f'{info_prefix}_infos_{split}.pkl'
            upd.update_pkl_infos('kitti', out_dir=out_dir, pkl_path=osp.join('v1', name))
            outs.append(osp.join(out_dir, name))
    if gt_database:
        _gt_database('KittiDataset', root, info_prefix, outs[0], verbose, relative_path=False,
                     mask_anno_path='instances_train.json', with_mask=False)
    return outs


def _gt_database(dataset: str, root: str, info_prefix: str, info_path: str, verbose: bool, **kwargs) -> None:
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    gtdb = load_converter('create_gt_database')
    with _quiet(verbose):
        gtdb.create_groundtruth_database(dataset, root, info_prefix, info_path, **kwargs)
