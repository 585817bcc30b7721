"""The stock CenterPoint nuScenes voxel model (SparseEncoder on spconv) trains on the CPU through `import mmxmodal`."""
import textwrap

import pytest
import torch
from mmengine.config import Config

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmengine.structures import InstanceData

CENTERPOINT = 'mmdet3d::centerpoint/centerpoint_voxel01_second_secfpn_head-circlenms_8xb4-cyclic-20e_nus-3d.py'


def _random_cloud(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xyz = (torch.rand(n, 3, generator=g) - 0.5) * torch.tensor([80.0, 80.0, 6.0])
    return torch.cat([xyz, torch.rand(n, 2, generator=g)], 1)  # x, y, z, intensity, time lag


def test_spconv_layers_choose_native_on_cpu_and_keep_default_algo():
    from spconv.core import ConvAlgo
    from spconv.pytorch import SparseConvTensor, SubMConv3d
    conv = SubMConv3d(4, 8, 3, indice_key='s')
    assert conv.algo != ConvAlgo.Native  # spconv's fast default is kept for CUDA
    coords = torch.tensor([[0, 1, 1, 1], [0, 1, 2, 1], [0, 3, 3, 3]], dtype=torch.int32)
    x = SparseConvTensor(torch.randn(3, 4, requires_grad=True), coords, [5, 5, 5], 1)
    out = conv(x)
    assert out.features.shape == (3, 8)
    assert conv.algo != ConvAlgo.Native  # restored after the CPU call
    out.features.sum().backward()
    assert conv.weight.grad is not None


@pytest.mark.parametrize('n_points', [3000])
def test_stock_centerpoint_forward_backward_on_cpu(tmp_path, n_points):
    cfg_file = tmp_path / 'cp.py'
    cfg_file.write_text(textwrap.dedent(f"""
        _base_ = ['{CENTERPOINT}']
        custom_imports = dict(imports=['mmxmodal'], allow_failed_imports=False)
    """))
    cfg = Config.fromfile(str(cfg_file))
    model = MODELS.build(cfg.model)
    model.train()
    samples = []
    for i in range(2):
        s = Det3DDataSample()
        s.gt_instances_3d = InstanceData(
            bboxes_3d=LiDARInstance3DBoxes(torch.tensor([[5.0, 3.0, -1.0, 4.2, 1.8, 1.6, 0.3, 0, 0],
                                                         [-10.0, 8.0, -1.0, 0.6, 0.6, 1.7, 0.0, 0, 0]]),
                                           box_dim=9),
            labels_3d=torch.tensor([0, 8]))
        s.set_metainfo(dict(box_type_3d=LiDARInstance3DBoxes))
        samples.append(s)
    data = model.data_preprocessor(
        dict(inputs=dict(points=[_random_cloud(n_points, i) for i in range(2)]), data_samples=samples), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    enc = model.pts_middle_encoder
    assert type(enc).__name__ == 'SparseEncoder'
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
