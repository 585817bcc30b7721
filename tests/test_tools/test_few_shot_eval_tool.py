"""tools/few_shot_eval.py: features from a config's labelled dataloader, K-way M-shot episodes, JSON output."""
import json
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))


@pytest.fixture(scope='module')
def labelled_objects(tmp_path_factory) -> str:
    from mmxmodal_bench.synthetic.objects import generate_objects
    root = tmp_path_factory.mktemp('fewshot_objects')
    generate_objects(str(root), num_objects=0, seed=3, num_views=1, image_size=32, num_points=256,
                     cls_train_per_class=8, cls_test_per_class=4, scanobjectnn=False)
    return str(root)


def test_few_shot_tool_random_weights(tmp_path, labelled_objects):
    import few_shot_eval
    mn = osp.join(labelled_objects, 'modelnet40_ply_hdf5_2048')
    out = tmp_path / 'fs.json'
    opts = ['val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
            f'val_dataloader.dataset.datasets.0.data_root={mn}', f'val_dataloader.dataset.datasets.1.data_root={mn}']
    res = few_shot_eval.main([
        osp.join(ROOT, 'configs/crosspoint/crosspoint_dgcnn_1xb16-10e_synthetic-objects.py'), 'random',
        '--ways', '3', '5', '--shots', '2', '--queries', '4', '--runs', '3', '--out', str(out), '--cfg-options',
        *opts])
    assert [(r['ways'], r['shots']) for r in res['results']] == [(3, 2), (5, 2)]
    for r in res['results']:
        assert len(r['accs']) == 3 and 0 <= r['mean'] <= 100 and r['pool'] == 'train'
    assert json.loads(out.read_text())['checkpoint'] == 'random'
    res = few_shot_eval.main([
        osp.join(ROOT, 'configs/crosspoint/crosspoint_dgcnn_1xb16-10e_synthetic-objects.py'), 'random',
        '--ways', '4', '--shots', '3', '--queries', '4', '--runs', '2', '--pool', 'train-test', '--cfg-options',
        *opts])
    assert res['results'][0]['pool'] == 'train-test'
    with pytest.raises(FileNotFoundError):
        few_shot_eval.main([osp.join(ROOT, 'configs/crosspoint/crosspoint_dgcnn_1xb16-10e_synthetic-objects.py'),
                            str(tmp_path / 'missing.pth')])
