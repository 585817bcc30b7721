"""The dataset converters that ship inside the installed mmdet3d (``tools/dataset_converters/``), loaded as modules.

mmdet3d 1.4 ships ``tools/create_data.py`` and ``tools/dataset_converters/`` inside its wheel under
``mmdet3d/.mim/tools/``. ``create_data.py`` parses ``sys.argv`` at import time, so the info writers of this package
import the converter modules it calls (``nuscenes_converter``, ``kitti_converter``, ``semantickitti_converter``,
``update_infos_to_v2``, ``create_gt_database``) with :func:`load_converter` and run the same steps.

The converter package is loaded under a private name so that it cannot clash with a project's own ``tools``
package. :func:`temporary_workdir` runs a converter in a fresh working directory (some open hard-coded relative
paths such as ``./data/nuscenes``); :func:`quiet` silences their prints.
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
from typing import Dict

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
def quiet(verbose: bool):
    if verbose:
        yield
    else:
        with contextlib.redirect_stdout(io.StringIO()):
            yield


@contextlib.contextmanager
def temporary_workdir(links: Dict[str, str]):
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


def create_gt_database(dataset: str, root: str, info_prefix: str, info_path: str, verbose: bool, **kwargs) -> None:
    """Run mmdet3d's ``create_groundtruth_database`` (``<prefix>_gt_database/`` + ``<prefix>_dbinfos_train.pkl``)."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    gtdb = load_converter('create_gt_database')
    with quiet(verbose):
        gtdb.create_groundtruth_database(dataset, root, info_prefix, info_path, **kwargs)
