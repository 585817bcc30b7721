"""Early checks of the files a config names, so that a run fails in seconds with the file in the message
instead of minutes later inside a worker."""
import os.path as osp
import re
from typing import Any, List, Sequence, Tuple

from mmengine.config import Config

_REMOTE = ('http://', 'https://', 's3://', 'open-mmlab://', 'torchvision://', 'modelzoo://', 'mmcls://',
           'mmdet::', 'mmdet3d::')


def _walk(node: Any, path: str):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f'{path}.{k}' if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f'{path}[{i}]')


def _local(p: Any) -> bool:
    return isinstance(p, str) and bool(p) and not p.startswith(_REMOTE)


def missing_config_paths(cfg: Config, ignore: Sequence[str] = ()) -> List[Tuple[str, str]]:
    """Return ``(config key, path)`` for every local file the config needs that does not exist.

    Checked: ``load_from`` (unless resuming automatically), ``init_cfg.checkpoint`` of type Pretrained,
    and ``data_root`` / ``ann_file`` of every dataset (``ann_file`` relative to ``data_root`` as mmengine
    resolves it). Top-level keys in ``ignore`` (e.g. ``test_dataloader`` for a training run, which never builds
    it) are not checked.
    """
    missing = []
    ignore = set(ignore)
    load_from = cfg.get('load_from')
    if _local(load_from) and not osp.exists(load_from):
        missing.append(('load_from', load_from))
    for key, node in _walk(cfg.to_dict(), ''):
        if re.split(r'[.\[]', key, 1)[0] in ignore:
            continue
        if node.get('type') == 'Pretrained' and _local(node.get('checkpoint')):
            if not osp.exists(node['checkpoint']):
                missing.append((f'{key}.checkpoint', node['checkpoint']))
        if not key.endswith('dataset') and 'dataset' not in key.rsplit('.', 1)[-1]:
            continue
        root = node.get('data_root')
        if _local(root) and not osp.isdir(root):
            missing.append((f'{key}.data_root', root))
            continue
        ann = node.get('ann_file')
        if _local(ann):
            full = ann if (osp.isabs(ann) or not _local(root)) else osp.join(root, ann)
            if not osp.exists(full):
                missing.append((f'{key}.ann_file', full))
    return missing


def check_config_paths(cfg: Config, ignore: Sequence[str] = ()) -> None:
    """Raise ``FileNotFoundError`` listing every missing file with the config key that names it.

    ``ignore``: top-level keys the caller does not build (see :func:`missing_config_paths`).
    """
    missing = missing_config_paths(cfg, ignore)
    if missing:
        lines = '\n'.join(f'  {k}: {p}' for k, p in missing)
        raise FileNotFoundError(f'the config names files that do not exist:\n{lines}\n'
                                'Create the data (see README "Data preparation") or fix the paths with '
                                '--cfg-options.')
