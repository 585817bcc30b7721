"""``import mmxmodal`` registers modules and changes no upstream object (checked in fresh interpreters)."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# The named objects of issue 16 (what the import used to replace), read in the child as expressions.
NAMED = {
    'local checkpoint loader': "__import__('mmengine.runner.checkpoint', fromlist=['x']).CheckpointLoader"
                               "._schemes.get('')",
    '_load_checkpoint_with_prefix': "__import__('mmengine.runner.checkpoint', fromlist=['x'])"
                                    "._load_checkpoint_with_prefix",
    '_init_dist_pytorch': "__import__('mmengine.dist.utils', fromlist=['x'])._init_dist_pytorch",
    '_init_dist_slurm': "__import__('mmengine.dist.utils', fromlist=['x'])._init_dist_slurm",
    'HistoryBuffer.__getstate__': "__import__('mmengine.logging.history_buffer', fromlist=['x'])"
                                  ".HistoryBuffer.__dict__.get('__getstate__')",
    'MMDistributedDataParallel.__init__': "__import__('mmengine.model.wrappers.distributed', fromlist=['x'])"
                                          ".MMDistributedDataParallel.__dict__['__init__']",
    'SparseConvolution.forward': "__import__('spconv.pytorch.conv', fromlist=['x']).SparseConvolution"
                                 ".__dict__['forward']",
}
for _mod in ('mmcv.ops.sparse_ops', 'mmcv.ops.scatter_points', 'mmdet3d.models.data_preprocessors.voxelize'):
    NAMED[f'{_mod}.ext_module'] = f"__import__('{_mod}', fromlist=['x']).ext_module"
for _mod, _cls in (('ball_query', 'BallQuery'), ('furthest_point_sample', 'FurthestPointSampling'),
                   ('furthest_point_sample', 'FurthestPointSamplingWithDist'), ('gather_points', 'GatherPoints'),
                   ('group_points', 'GroupingOperation'), ('knn', 'KNN'), ('three_interpolate', 'ThreeInterpolate'),
                   ('three_nn', 'ThreeNN')):
    for _m in ('forward', 'backward'):
        NAMED[f'{_cls}.{_m}'] = f"__import__('mmcv.ops.{_mod}', fromlist=['x']).{_cls}.__dict__.get('{_m}')"

CHILD = textwrap.dedent('''
    import sys, types, warnings
    warnings.simplefilter('ignore')
    import spconv.pytorch, mmcv.ops, mmengine.runner, mmengine.dist, mmengine.model, mmdet3d.models  # noqa
    NAMED = {named!r}
    PKGS = ('mmengine', 'mmcv', 'mmdet', 'mmdet3d', 'spconv', 'torch')
    ALLOWED = {{('mmengine.runner.checkpoint', 'CheckpointLoader', '_schemes')}}  # register_scheme re-sorts it

    def snapshot():
        """id of every module attribute and class-dict entry of the upstream packages."""
        out = {{}}
        for name, mod in list(sys.modules.items()):
            if not isinstance(mod, types.ModuleType) or name.split('.')[0] not in PKGS:
                continue
            for attr, val in list(vars(mod).items()):
                out[(name, attr)] = id(val)
                if isinstance(val, type) and getattr(val, '__module__', None) == name:
                    for k, v in list(vars(val).items()):
                        if (name, attr, k) not in ALLOWED and k not in ('__dict__', '__weakref__', '_abc_impl'):
                            out[(name, attr, k)] = id(v)
        return out

    before_named = {{k: eval(v) for k, v in NAMED.items()}}
    before = snapshot()
    import mmxmodal
    assert mmxmodal.__file__.startswith({root!r}), mmxmodal.__file__
    {action}
    after_named = {{k: eval(v) for k, v in NAMED.items()}}
    after = snapshot()
    changed_named = sorted(k for k in NAMED if after_named[k] is not before_named[k])
    changed = sorted(str(k) for k in before if k in after and after[k] != before[k])
    print('NAMED_CHANGED', changed_named)
    print('CHANGED', changed)
    print('CPU_IMPORTED', 'mmxmodal.cpu' in sys.modules)
''')


def _run(action: str = 'pass') -> dict:
    code = CHILD.format(named=NAMED, root=ROOT, action=action)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = {}
    for line in r.stdout.splitlines():
        key, _, val = line.partition(' ')
        if key in ('NAMED_CHANGED', 'CHANGED', 'CPU_IMPORTED'):
            out[key] = eval(val)
    return out


def test_import_mmxmodal_changes_no_upstream_object():
    out = _run()
    assert out['NAMED_CHANGED'] == [], out['NAMED_CHANGED']
    assert out['CHANGED'] == [], out['CHANGED'][:20]
    assert out['CPU_IMPORTED'] is False


def test_opt_in_cpu_support_is_the_only_change_and_reverts():
    """``import mmxmodal.cpu`` changes exactly the documented objects (on a machine without CUDA all five
    groups), and ``uninstall()`` restores every one of them."""
    import torch
    out = _run('import mmxmodal.cpu')
    expected = {f'{c}.{m}' for c in ('FurthestPointSampling', 'FurthestPointSamplingWithDist', 'BallQuery', 'KNN',
                                     'ThreeNN', 'GroupingOperation', 'GatherPoints', 'ThreeInterpolate')
                for m in ('forward', )}
    expected |= {'GroupingOperation.backward', 'GatherPoints.backward', 'ThreeInterpolate.backward',
                 'SparseConvolution.forward', 'mmcv.ops.sparse_ops.ext_module', 'mmcv.ops.scatter_points.ext_module',
                 'mmdet3d.models.data_preprocessors.voxelize.ext_module'}
    if not torch.cuda.is_available():
        expected |= {'_init_dist_pytorch', '_init_dist_slurm', 'MMDistributedDataParallel.__init__'}
    assert set(out['NAMED_CHANGED']) == expected
    assert out['CPU_IMPORTED'] is True
    reverted = _run('import mmxmodal.cpu; mmxmodal.cpu.uninstall()')
    assert reverted['NAMED_CHANGED'] == [] and reverted['CHANGED'] == [], reverted
