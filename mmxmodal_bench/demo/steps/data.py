"""Step ``data``: generate (or reuse) the embedded nuScenes-format root and the object sets."""
from __future__ import annotations

import os.path as osp
from functools import partial
from typing import TYPE_CHECKING, Dict, List

from ..runner import PY, StepFailed, cmd_text, load_json, rel, run_in_threads, run_logged, say

if TYPE_CHECKING:
    from ..demo import Demo


def objects_cmd(demo: Demo, name: str) -> List[str]:
    a = demo.data_cfg[name]['args']
    cmd = [PY, 'tools/create_synthetic_data.py', 'objects', '--out-dir', rel(demo.root(name))]
    for k in ('num_objects', 'num_points', 'image_size', 'num_views', 'cls_train_per_class',
              'cls_test_per_class', 'cls_views', 'seed'):
        if k in a:
            cmd += ['--' + k.replace('_', '-'), str(a[k])]
    if not a.get('scanobjectnn', True):
        cmd.append('--no-scanobjectnn')
    return cmd


def objects_ok(demo: Demo, name: str) -> bool:
    """meta.json (written last by the generator) matches the arguments and the h5 lists exist."""
    root, a = demo.root(name), demo.data_cfg[name]['args']
    meta = load_json(osp.join(root, 'meta.json'))
    if not meta:
        return False
    want = dict(num_objects=a['num_objects'], num_points=a['num_points'], image_size=a['image_size'],
                num_views=a['num_views'], seed=a['seed'], scanobjectnn=a['scanobjectnn'],
                cls_views=a.get('cls_views', a['num_views']))
    if any(meta.get(k) != v for k, v in want.items()):
        return False
    n_cls = len(meta.get('classes', []))
    counts = meta.get('cls_counts', {})
    if counts.get('train') != a['cls_train_per_class'] * n_cls or \
            counts.get('test') != a['cls_test_per_class'] * n_cls:
        return False
    mn = osp.join(root, 'modelnet40_ply_hdf5_2048')
    return all(osp.isfile(osp.join(mn, f)) for f in ('shape_names.txt', 'train_files.txt', 'test_files.txt'))


def nuscenes_cmd(demo: Demo) -> List[str]:
    a = demo.data_cfg['nuscenes']['args']
    cmd = [PY, 'tools/create_synthetic_data.py', 'nuscenes', '--out-dir', rel(demo.root('nuscenes'))]
    for k in ('num_scenes', 'samples_per_scene', 'sweeps', 'image_size', 'seed', 'workers'):
        if k in a:
            cmd += ['--' + k.replace('_', '-'), str(a[k])]
    return cmd


def nuscenes_ok(demo: Demo) -> bool:
    """Tables with the expected number of samples, and both info pkls written after them (they come last)."""
    root, a = demo.root('nuscenes'), demo.data_cfg['nuscenes']['args']
    sample_json = osp.join(root, 'v1.0-mini', 'sample.json')
    pkls = [osp.join(root, f'nuscenes_infos_{s}.pkl') for s in ('train', 'val')]
    if not osp.isfile(sample_json) or not all(osp.isfile(p) for p in pkls):
        return False
    if min(osp.getmtime(p) for p in pkls) < osp.getmtime(sample_json):
        return False
    samples = load_json(sample_json)
    scenes = load_json(osp.join(root, 'v1.0-mini', 'scene.json'))
    if not (isinstance(samples, list) and isinstance(scenes, list) and len(scenes) == a['num_scenes']
            and len(samples) == a['num_scenes'] * a['samples_per_scene']):
        return False
    width, height = map(int, str(a.get('image_size', '640x360')).split('x'))
    sample_data = load_json(osp.join(root, 'v1.0-mini', 'sample_data.json'))
    cams = [sd for sd in sample_data if sd.get('width')] if isinstance(sample_data, list) else []
    return bool(cams) and (cams[0]['width'], cams[0]['height']) == (width, height)


def run(demo: Demo) -> bool:
    """Generate the missing roots side by side (the generators are CPU-bound; each also uses 2 workers)."""
    jobs = [('nuscenes', nuscenes_cmd(demo), partial(nuscenes_ok, demo)),
            ('objects', objects_cmd(demo, 'objects'), partial(objects_ok, demo, 'objects')),
            ('crossmost', objects_cmd(demo, 'crossmost'), partial(objects_ok, demo, 'crossmost'))]
    cmds = {name: cmd_text(cmd) for name, cmd, _ in jobs}
    todo = []
    for name, cmd, ok in jobs:
        if ok():
            say('data', f'reusing {rel(demo.root(name))} (complete, same generator arguments)')
        else:
            demo.may_run('data', rel(demo.root(name)))
            todo.append((name, cmd, ok))
    errors: List[StepFailed] = []

    def generate(name, cmd, ok):
        log = osp.join(demo.logs, f'data_{name}.log')
        try:
            run_logged(cmd, log, f'generating {rel(demo.root(name))}', tag=f'data:{name}', env=demo.env)
            if not ok():
                raise StepFailed(f'{rel(demo.root(name))} is incomplete after generation', rel(log))
        except StepFailed as e:
            errors.append(e)

    if todo:
        run_in_threads([partial(generate, *job) for job in todo])
    if errors:
        raise StepFailed('; '.join(str(e) for e in errors), ', '.join(e.log for e in errors))
    demo.results['data'] = cmds
    add_numbers(demo, cmds)
    return not todo


def add_numbers(demo: Demo, cmds: Dict[str, str]) -> None:
    import pickle
    for split in ('train', 'val'):
        with open(osp.join(demo.root('nuscenes'), f'nuscenes_infos_{split}.pkl'), 'rb') as f:
            n = len(pickle.load(f)['data_list'])
        demo.add('data', 'data', f'nuScenes-format samples, {split} split (LiDAR + 6 cameras each)', n,
                 command=cmds['nuscenes'])
    for name, what in (('objects', 'CrossPoint'), ('crossmost', 'Cross-MoST')):
        meta = load_json(osp.join(demo.root(name), 'meta.json'))
        if name == 'objects':
            demo.add('data', 'data', f'{what}: unlabelled pretraining objects (ShapeNetRender layout)',
                     meta['num_objects'], command=cmds[name])
        demo.add('data', 'data', f'{what}: labelled objects, train split ({len(meta["classes"])} classes)',
                 meta['cls_counts']['train'], command=cmds[name])
        demo.add('data', 'data', f'{what}: labelled objects, held-out test split', meta['cls_counts']['test'],
                 command=cmds[name])
