"""Released weights in their original layout -> this project's keys: CrossPoint's DGCNN (numerically identical to
the official network, float64), SimIPU's ``backbone.*`` image encoder, ULIP's Point-BERT (identical features)."""
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

import mmxmodal  # noqa: F401
from mmdet3d.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'model_converters')
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')


def _convert(tool, *args):
    r = subprocess.run([sys.executable, osp.join(TOOLS, tool), *map(str, args)], capture_output=True, text=True,
                       env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def _randomise(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) * 0.5 + 0.5 if 'running_var' in name
                        else torch.randn(t.shape, generator=g, dtype=t.dtype) * 0.3)


# ----------------------------------------------------------------------------------------------- CrossPoint
# The official model code (CrossPoint, models/dgcnn.py: knn, get_graph_feature, DGCNN with cls=-1), re-typed here
# with the device taken from the input instead of a hard-coded 'cuda'.
def official_knn(x, k):
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x**2, dim=1, keepdim=True)
    pairwise_distance = -xx - inner - xx.transpose(2, 1)
    return pairwise_distance.topk(k=k, dim=-1)[1]


def official_get_graph_feature(x, k=20, idx=None):
    batch_size, num_points = x.size(0), x.size(2)
    x = x.view(batch_size, -1, num_points)
    if idx is None:
        idx = official_knn(x, k=k)
    idx_base = torch.arange(0, batch_size, device=x.device).view(-1, 1, 1) * num_points
    idx = (idx + idx_base).view(-1)
    _, num_dims, _ = x.size()
    x = x.transpose(2, 1).contiguous()
    feature = x.view(batch_size * num_points, -1)[idx, :].view(batch_size, num_points, k, num_dims)
    x = x.view(batch_size, num_points, 1, num_dims).repeat(1, 1, k, 1)
    return torch.cat((feature - x, x), dim=3).permute(0, 3, 1, 2).contiguous()


class OfficialDGCNN(nn.Module):

    def __init__(self, k, emb_dims):
        super().__init__()
        self.k = k
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(64), nn.BatchNorm2d(64), nn.BatchNorm2d(128)
        self.bn4, self.bn5 = nn.BatchNorm2d(256), nn.BatchNorm1d(emb_dims)
        self.conv1 = nn.Sequential(nn.Conv2d(6, 64, kernel_size=1, bias=False), self.bn1, nn.LeakyReLU(0.2))
        self.conv2 = nn.Sequential(nn.Conv2d(64 * 2, 64, kernel_size=1, bias=False), self.bn2, nn.LeakyReLU(0.2))
        self.conv3 = nn.Sequential(nn.Conv2d(64 * 2, 128, kernel_size=1, bias=False), self.bn3, nn.LeakyReLU(0.2))
        self.conv4 = nn.Sequential(nn.Conv2d(128 * 2, 256, kernel_size=1, bias=False), self.bn4, nn.LeakyReLU(0.2))
        self.conv5 = nn.Sequential(nn.Conv1d(512, emb_dims, kernel_size=1, bias=False), self.bn5, nn.LeakyReLU(0.2))
        self.inv_head = nn.Sequential(nn.Linear(emb_dims * 2, emb_dims), nn.BatchNorm1d(emb_dims),
                                      nn.ReLU(inplace=True), nn.Linear(emb_dims, 256))

    def forward(self, x):
        batch_size = x.size(0)
        x1 = self.conv1(official_get_graph_feature(x, k=self.k)).max(dim=-1, keepdim=False)[0]
        x2 = self.conv2(official_get_graph_feature(x1, k=self.k)).max(dim=-1, keepdim=False)[0]
        x3 = self.conv3(official_get_graph_feature(x2, k=self.k)).max(dim=-1, keepdim=False)[0]
        x4 = self.conv4(official_get_graph_feature(x3, k=self.k)).max(dim=-1, keepdim=False)[0]
        x = self.conv5(torch.cat((x1, x2, x3, x4), dim=1))
        x = torch.cat((F.adaptive_max_pool1d(x, 1).view(batch_size, -1),
                       F.adaptive_avg_pool1d(x, 1).view(batch_size, -1)), 1)
        feat = x
        inv_feat = self.inv_head(feat)
        return x, inv_feat, feat


def test_crosspoint_official_dgcnn_converts_to_identical_features(tmp_path):
    k, emb = 10, 128
    official = OfficialDGCNN(k, emb).double()
    _randomise(official, 0)
    official.eval()
    # the released file: DataParallel's state dict (bn{i} appear twice: as bn{i}.* and conv{i}.1.*)
    sd = OrderedDict(('module.' + key, v) for key, v in official.state_dict().items())
    assert 'module.conv1.0.weight' in sd and 'module.bn1.weight' in sd and 'module.conv1.1.weight' in sd
    torch.save(sd, tmp_path / 'best_model.pth')
    _convert('crosspoint_to_mmxmodal.py', tmp_path / 'best_model.pth', tmp_path / 'cp.pth')
    enc = MODELS.build(dict(type='DGCNNEncoder', k=k, emb_dims=emb,
                            init_cfg=dict(type='CheckedPretrained', checkpoint=str(tmp_path / 'cp.pth'),
                                          prefix='point_encoder.')))
    head = MODELS.build(dict(type='ProjectionHead', in_channels=2 * emb, hidden_channels=emb, out_channels=256,
                             init_cfg=dict(type='CheckedPretrained', checkpoint=str(tmp_path / 'cp.pth'),
                                           prefix='point_head.')))
    enc, head = enc.double(), head.double()  # load the float64 weights without rounding
    enc.init_weights()
    head.init_weights()
    enc, head = enc.eval(), head.eval()
    pts = torch.randn(3, 256, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        _, inv_ref, feat_ref = official(pts.transpose(1, 2).contiguous())
        feat = enc(pts)
        inv = head(feat)
    assert feat.shape == feat_ref.shape == (3, 2 * emb)
    torch.testing.assert_close(feat, feat_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inv, inv_ref, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------------------------- SimIPU
def test_simipu_released_backbone_loads_into_the_fcos3d_config(tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/finetune/fcos3d_r50-caffe-dcn_fpn_head-gn_8xb2-1x_nus-mono3d_'
                                   'simipu.py'))
    bb_cfg = dict(cfg.model.backbone)
    bb_cfg.pop('init_cfg')
    released = MODELS.build(bb_cfg)
    _randomise(released, 2)
    sd = OrderedDict(('backbone.' + k, v) for k, v in released.state_dict().items())
    sd['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    sd['bbox_head.conv_cls.weight'] = torch.zeros(1)
    torch.save(dict(meta=dict(epoch=50), state_dict=sd), tmp_path / 'simipu_released.pth')
    out = _convert('simipu_to_mmxmodal.py', tmp_path / 'simipu_released.pth', tmp_path / 'simipu_img.pth')
    assert 'dropped 2 keys' in out
    converted = torch.load(tmp_path / 'simipu_img.pth', weights_only=True)['state_dict']
    assert all(k.startswith('img_backbone.') for k in converted)
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'simipu_img.pth')
    model = MODELS.build(cfg.model)
    model.init_weights()
    for k, v in released.state_dict().items():  # ResNet's zero-init of the last BN does not overwrite them
        assert torch.equal(model.backbone.state_dict()[k], v), k


# ----------------------------------------------------------------------------------------------- ULIP Point-BERT
# The official model code (ULIP, models/pointbert/point_encoder.py and dvae.py: Encoder, Attention, Mlp, Block,
# TransformerEncoder, PointTransformer.forward after grouping; dropout / drop-path are identities in eval).
class UEncoder(nn.Module):

    def __init__(self, encoder_channel):
        super().__init__()
        self.encoder_channel = encoder_channel
        self.first_conv = nn.Sequential(nn.Conv1d(3, 128, 1), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
                                        nn.Conv1d(128, 256, 1))
        self.second_conv = nn.Sequential(nn.Conv1d(512, 512, 1), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
                                         nn.Conv1d(512, self.encoder_channel, 1))

    def forward(self, point_groups):
        bs, g, n, _ = point_groups.shape
        point_groups = point_groups.reshape(bs * g, n, 3)
        feature = self.first_conv(point_groups.transpose(2, 1))
        feature_global = torch.max(feature, dim=2, keepdim=True)[0]
        feature = torch.cat([feature_global.expand(-1, -1, n), feature], dim=1)
        feature = self.second_conv(feature)
        feature_global = torch.max(feature, dim=2, keepdim=False)[0]
        return feature_global.reshape(bs, g, self.encoder_channel)


class UMlp(nn.Module):

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class UAttention(nn.Module):

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads)**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class UBlock(nn.Module):

    def __init__(self, dim, num_heads, mlp_ratio=4.):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), UAttention(dim, num_heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), UMlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class UTransformerEncoder(nn.Module):

    def __init__(self, embed_dim, depth, num_heads):
        super().__init__()
        self.blocks = nn.ModuleList([UBlock(embed_dim, num_heads) for _ in range(depth)])

    def forward(self, x, pos):
        for block in self.blocks:
            x = block(x + pos)
        return x


class UPointTransformer(nn.Module):

    def __init__(self, trans_dim, depth, num_heads, encoder_dims):
        super().__init__()
        self.encoder = UEncoder(encoder_dims)
        self.reduce_dim = nn.Linear(encoder_dims, trans_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, trans_dim))
        self.cls_pos = nn.Parameter(torch.randn(1, 1, trans_dim))
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, trans_dim))
        self.blocks = UTransformerEncoder(trans_dim, depth, num_heads)
        self.norm = nn.LayerNorm(trans_dim)

    def forward(self, neighborhood, center):
        tokens = self.reduce_dim(self.encoder(neighborhood))
        cls_tokens = self.cls_token.expand(tokens.size(0), -1, -1)
        cls_pos = self.cls_pos.expand(tokens.size(0), -1, -1)
        x = torch.cat((cls_tokens, tokens), dim=1)
        pos = torch.cat((cls_pos, self.pos_embed(center)), dim=1)
        x = self.norm(self.blocks(x, pos))
        return torch.cat([x[:, 0], x[:, 1:].max(1)[0]], dim=-1)


class ULIPPointBERT(nn.Module):

    def __init__(self, trans_dim, depth, num_heads, encoder_dims, embed_dim):
        super().__init__()
        self.point_encoder = UPointTransformer(trans_dim, depth, num_heads, encoder_dims)
        self.pc_projection = nn.Parameter(torch.empty(2 * trans_dim, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]))
        self.token_embedding = nn.Embedding(10, 4)  # a stand-in for the CLIP text tower

    def encode_pc(self, neighborhood, center):
        return self.point_encoder(neighborhood, center) @ self.pc_projection


def test_ulip_pointbert_converts_to_identical_features(tmp_path):
    from mmxmodal.models.encoders.point_transformer import group_points
    dims = dict(trans_dim=48, depth=2, num_heads=4, encoder_dims=32, embed_dim=24)
    ulip = ULIPPointBERT(**dims).double()
    _randomise(ulip, 3)
    ulip.eval()
    torch.save(dict(epoch=10, state_dict=OrderedDict(('module.' + k, v) for k, v in ulip.state_dict().items())),
               tmp_path / 'ulip.pt')
    out = _convert('ulip_pointbert_to_mmxmodal.py', tmp_path / 'ulip.pt', tmp_path / 'pb.pth')
    assert 'point_encoder.mask_token' in out
    enc = MODELS.build(dict(type='PointTransformerEncoder', num_groups=16, group_size=8, embed_dims=48, depth=2,
                            num_heads=4, out_channels=24, group_dims=32, pos_every_block=True,
                            init_cfg=dict(type='CheckedPretrained', checkpoint=str(tmp_path / 'pb.pth'),
                                          prefix='point_encoder.')))
    enc = enc.double()
    enc.init_weights()
    enc.eval()
    pts = torch.randn(2, 128, 3, generator=torch.Generator().manual_seed(4))
    centers, groups, _ = group_points(pts, 16, 8)
    centers, groups = centers.double(), groups.double()
    with torch.no_grad():
        ref = ulip.encode_pc(groups, centers)
        ours = enc(pts.double(), grouped=(centers, groups))['feat']
    assert ours.shape == ref.shape == (2, 24)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
