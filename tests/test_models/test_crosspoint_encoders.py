"""DGCNN / PointNet encoders and the projection / classification heads: shapes, and the fast EdgeConv equals
CrossPoint's reference formulation (dense kNN + (B, 2C, N, k) edge tensor) in values, gradients and BN state."""
import copy

import pytest
import torch

import mmxmodal  # noqa: F401
from mmdet3d.registry import MODELS
from mmxmodal.models.encoders.dgcnn import DGCNNEncoder, knn_indices, reference_forward
from mmxmodal.models.heads.point_cls_head import smooth_cross_entropy


def test_dgcnn_shapes_and_out_types():
    x = torch.rand(2, 128, 3)
    enc = MODELS.build(dict(type='DGCNNEncoder', k=8))
    assert enc(x).shape == (2, 2048) and enc.out_channels == 2048
    enc = DGCNNEncoder(k=8, emb_dims=64, out_type='both')
    g, p = enc(torch.rand(2, 128, 6))  # extra channels (normals) are ignored with in_channels=3
    assert g.shape == (2, 128) and p.shape == (2, 128, 64)
    assert DGCNNEncoder(k=8, emb_dims=64, out_type='point')(x).shape == (2, 128, 64)
    enc6 = DGCNNEncoder(in_channels=6, k=8, emb_dims=32)
    assert enc6.edge_convs[0].conv.weight.shape == (64, 12, 1, 1)
    assert enc6(torch.rand(2, 64, 6)).shape == (2, 64)


def test_dgcnn_parameter_layout_matches_crosspoint():
    sd = DGCNNEncoder().state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items() if k.endswith('weight')}
    assert shapes['edge_convs.0.conv.weight'] == (64, 6, 1, 1)
    assert shapes['edge_convs.1.conv.weight'] == (64, 128, 1, 1)
    assert shapes['edge_convs.2.conv.weight'] == (128, 128, 1, 1)
    assert shapes['edge_convs.3.conv.weight'] == (256, 256, 1, 1)
    assert shapes['conv5.weight'] == (1024, 512, 1)
    assert shapes['bn5.weight'] == (1024, )


def test_knn_indices_match_brute_force():
    torch.manual_seed(0)
    x = torch.randn(3, 200, 16, dtype=torch.float64)
    idx = knn_indices(x, 7)
    d = torch.cdist(x, x)
    ref = d.topk(7, dim=-1, largest=False)[1]
    assert torch.equal(idx.sort(-1)[0], ref.sort(-1)[0])
    assert (idx == torch.arange(200).view(1, -1, 1)).any(-1).all()  # the point itself is a neighbour


@pytest.mark.parametrize('fuse_max', [True, False])
def test_edgeconv_equals_reference_values_grads_and_bn_state(fuse_max):
    torch.manual_seed(0)
    x = torch.rand(3, 256, 3, dtype=torch.float64)
    enc = DGCNNEncoder(k=10, emb_dims=64, fuse_max=fuse_max).double()
    with torch.no_grad():  # exercise the min branch of the fused max: some BN scales negative
        enc.edge_convs[2].bn.weight[:7] *= -1
        for m in enc.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.bias.uniform_(-0.5, 0.5)
    ref = copy.deepcopy(enc)
    for mode in ('train', 'eval'):
        enc.train(mode == 'train')
        ref.train(mode == 'train')
        out, out_ref = enc(x), reference_forward(ref, x)
        torch.testing.assert_close(out, out_ref, rtol=1e-9, atol=1e-9)
        g = torch.autograd.grad(out.square().sum(), list(enc.parameters()))
        g_ref = torch.autograd.grad(out_ref.square().sum(), list(ref.parameters()))
        for a, b in zip(g, g_ref):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    for (k, a), b in zip(enc.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=k)  # running stats, num_batches_tracked


def test_pointnet_shapes():
    enc = MODELS.build(dict(type='PointNetEncoder', emb_dims=128))
    x = torch.rand(4, 100, 3)
    assert enc(x).shape == (4, 128) and enc.out_channels == 128
    enc = MODELS.build(dict(type='PointNetEncoder', emb_dims=128, out_type='both'))
    g, p = enc(x)
    assert g.shape == (4, 128) and p.shape == (4, 100, 128)
    torch.testing.assert_close(g, p.amax(1))
    # permutation invariance of the global feature (eval mode: BN uses running statistics)
    enc.eval()
    perm = torch.randperm(100)
    torch.testing.assert_close(enc(x)[0], enc(x[:, perm])[0])


def test_projection_and_cls_heads():
    head = MODELS.build(dict(type='ProjectionHead', in_channels=2048, hidden_channels=1024, out_channels=256))
    assert head(torch.rand(4, 2048)).shape == (4, 256)
    img_head = MODELS.build(dict(type='ProjectionHead', in_channels=2048, hidden_channels=512, out_channels=256,
                                 bias=False))
    assert img_head.fc1.bias is None and img_head.fc2.bias is None
    cls = MODELS.build(dict(type='PointClsHead', in_channels=2048, num_classes=40))
    assert cls.mlp[0].bias is None and cls.mlp[4].bias is not None  # DGCNN: linear1 bias-free, linear2 biased
    logits = cls(torch.rand(5, 2048))
    assert logits.shape == (5, 40)
    out = cls.loss(logits, torch.tensor([0, 1, 2, 3, 4]))
    assert set(out) == {'loss_cls', 'acc'}


def test_smooth_cross_entropy_matches_dgcnn_cal_loss():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 2])
    eps = 0.2
    logp = logits.log_softmax(1)
    # DGCNN cal_loss: one_hot * (1 - eps) + (1 - one_hot) * eps / (C - 1)
    t = torch.full((2, 3), eps / 2)
    t[0, 0] = t[1, 2] = 1 - eps
    expected = -(t * logp).sum(1).mean()
    torch.testing.assert_close(smooth_cross_entropy(logits, labels, eps), expected)
    torch.testing.assert_close(smooth_cross_entropy(logits, labels, 0.0),
                               torch.nn.functional.cross_entropy(logits, labels))
