# Copyright (c) mmxmodal contributors.
"""CrossPoint pretraining throughput on CPU: mmxmodal's step vs a naive step written the way the seed code does it.

    python benchmarks/crosspoint_throughput.py [--batch 16] [--points 2048] [--k 20] [--img-size 224]
                                               [--img-depth 50] [--steps 3] [--warmup 1] [--threads N]
                                               [--out benchmarks/results/crosspoint_throughput.json]

Both steps use the same weights, inputs and Adam update (forward + backward + step of the point encoder, both
projection heads and the image encoder on two point views + one image per object):

- ``mmxmodal``: ``CrossPoint.loss`` as trained by the runner: ``DGCNNEncoder`` (per-point factorised EdgeConv,
  max-before-BN, chunked kNN without autograd, no (B, 2C, N, k) tensor) and the registered ``NTXentLoss``
  (gathered-capable).
- ``naive``: CrossPoint's released code path: ``knn`` on the full (B, N, N) pairwise-distance matrix,
  ``get_graph_feature`` gathering + repeating into a (B, 2C, N, k) tensor, ``Conv2d`` + BN + LeakyReLU on it,
  max over k; lightly-style NT-Xent without gathering (``cat`` -> 2B x 2B logits -> cross-entropy).

The first step's losses of the two paths are compared (they must agree up to float rounding / kNN ties).
Reports samples (objects) per second = batch / median step time, for the full step and for the point branch alone.
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch', type=int, default=16, help='objects per step (2 point views + 1 image each)')
    p.add_argument('--points', type=int, default=2048)
    p.add_argument('--k', type=int, default=20)
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--img-depth', type=int, default=50, help='ResNet depth of the image encoder')
    p.add_argument('--steps', type=int, default=3, help='timed steps per path')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=osp.join(osp.dirname(osp.abspath(__file__)), 'results',
                                             'crosspoint_throughput.json'))
    return p.parse_args()


# ----------------------------------------------------------------------------- naive (seed-code) reference step
def naive_knn(x, k):
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x**2, dim=1, keepdim=True)
    pairwise_distance = -xx - inner - xx.transpose(2, 1)
    return pairwise_distance.topk(k=k, dim=-1)[1]


def naive_graph_feature(x, k):
    batch_size, num_dims, num_points = x.shape
    idx = naive_knn(x, k)
    idx = (idx + torch.arange(0, batch_size, device=x.device).view(-1, 1, 1) * num_points).view(-1)
    x = x.transpose(2, 1).contiguous()
    feature = x.view(batch_size * num_points, -1)[idx, :].view(batch_size, num_points, k, num_dims)
    x = x.view(batch_size, num_points, 1, num_dims).repeat(1, 1, k, 1)
    return torch.cat((feature - x, x), dim=3).permute(0, 3, 1, 2).contiguous()


def naive_dgcnn(enc, x):
    """CrossPoint's ``DGCNN.forward`` with ``enc``'s parameters; x: (B, 3, N) -> (B, 2 emb)."""
    feats = []
    for layer in enc.edge_convs:
        e = naive_graph_feature(x, enc.k)
        x = layer.act(layer.bn(F.conv2d(e, layer.conv.weight))).max(dim=-1, keepdim=False)[0]
        feats.append(x)
    x = enc.act5(enc.bn5(enc.conv5(torch.cat(feats, dim=1))))
    b = x.shape[0]
    return torch.cat((F.adaptive_max_pool1d(x, 1).view(b, -1), F.adaptive_avg_pool1d(x, 1).view(b, -1)), 1)


def naive_nt_xent(out0, out1, temperature=0.1):
    """lightly ``NTXentLoss`` (no memory bank, one process)."""
    b = out0.shape[0]
    out0, out1 = F.normalize(out0, dim=1), F.normalize(out1, dim=1)
    diag = torch.eye(b, dtype=torch.bool)
    l00 = out0 @ out0.t() / temperature
    l01 = out0 @ out1.t() / temperature
    l10 = out1 @ out0.t() / temperature
    l11 = out1 @ out1.t() / temperature
    l00, l11 = l00[~diag].view(b, -1), l11[~diag].view(b, -1)
    logits = torch.cat([torch.cat([l01, l00], 1), torch.cat([l10, l11], 1)], 0)
    labels = torch.arange(b).repeat(2)
    return F.cross_entropy(logits, labels)


def naive_loss(model, pts, img):
    """train_crosspoint.py's step body: cat views -> DGCNN -> inv_head; ResNet -> inv_head; two NT-Xent."""
    b = pts.shape[0]
    data = torch.cat((pts[:, 0], pts[:, 1])).transpose(2, 1).contiguous()
    point_feats = model.point_head(naive_dgcnn(model.point_encoder, data))
    img_feats = model.img_head(model.extract_img_feat(img))
    t1, t2 = point_feats[:b], point_feats[b:]
    loss_imid = naive_nt_xent(t1, t2)
    loss_cmid = naive_nt_xent(torch.stack([t1, t2]).mean(dim=0), img_feats)
    return loss_imid + loss_cmid


# ----------------------------------------------------------------------------------------------------- timing
def time_steps(fn, params, steps, warmup):
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-6)
    times, first = [], None
    for i in range(warmup + steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = fn()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t
        if first is None:
            first = float(loss.detach())
        if i >= warmup:
            times.append(dt)
    return times, first


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope

    import mmxmodal  # noqa: F401
    from mmdet3d.registry import MODELS
    init_default_scope('mmdet3d')
    torch.manual_seed(args.seed)
    img_ch = 2048 if args.img_depth >= 50 else 512
    cfg = dict(
        type='CrossPoint',
        point_encoder=dict(type='DGCNNEncoder', k=args.k, emb_dims=1024),
        img_backbone=dict(type='mmdet.ResNet', depth=args.img_depth, out_indices=(3, ), norm_eval=False),
        point_head=dict(type='ProjectionHead', in_channels=2048, hidden_channels=1024, out_channels=256),
        img_head=dict(type='ProjectionHead', in_channels=img_ch, hidden_channels=512, out_channels=256, bias=False),
        loss_intra=dict(type='NTXentLoss', temperature=0.1, gather_distributed=True),
        loss_cross=dict(type='NTXentLoss', temperature=0.1, gather_distributed=True))
    model = MODELS.build(cfg).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    B = args.batch
    pts = torch.rand(B, 2, args.points, 3) * 2 - 1
    img = torch.randn(B, 3, args.img_size, args.img_size)
    inputs = dict(points=pts, img=img)

    def reset():
        model.load_state_dict(state)

    def point_only_ours():
        z = model.point_head(model.point_encoder(pts.transpose(0, 1).flatten(0, 1)))
        return model.loss_intra(z[:B], z[B:])

    def point_only_naive():
        data = torch.cat((pts[:, 0], pts[:, 1])).transpose(2, 1).contiguous()
        z = model.point_head(naive_dgcnn(model.point_encoder, data))
        return naive_nt_xent(z[:B], z[B:])

    results = {}
    runs = [('full', 'mmxmodal', lambda: sum(model.loss(inputs).values())),
            ('full', 'naive', lambda: naive_loss(model, pts, img)),
            ('point_branch', 'mmxmodal', point_only_ours), ('point_branch', 'naive', point_only_naive)]
    for scope, name, fn in runs:
        reset()
        times, first_loss = time_steps(fn, model.parameters(), args.steps, args.warmup)
        med = statistics.median(times)
        results.setdefault(scope, {})[name] = dict(step_s=[round(t, 3) for t in times], median_step_s=round(med, 3),
                                                   samples_per_s=round(B / med, 3), first_loss=first_loss)
        print(f'{scope:12s} {name:9s} median step {med:7.2f} s  {B / med:7.3f} samples/s  (loss {first_loss:.5f})',
              flush=True)
    for scope, r in results.items():
        r['speedup'] = round(r['naive']['median_step_s'] / r['mmxmodal']['median_step_s'], 2)
        r['loss_abs_diff'] = abs(r['naive']['first_loss'] - r['mmxmodal']['first_loss'])
    out = dict(
        benchmark='crosspoint_throughput', device='cpu', cpu=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), torch=torch.__version__,
        load_average_at_end=list(os.getloadavg()),
        setting=dict(batch=B, points=args.points, k=args.k, views=2, img_size=args.img_size,
                     img_encoder=f'mmdet.ResNet-{args.img_depth}', emb_dims=1024, steps=args.steps,
                     warmup=args.warmup, optimizer='Adam'),
        results=results)
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=2)
    md = osp.splitext(args.out)[0] + '.md'
    with open(md, 'w') as f:
        f.write('# CrossPoint pretraining throughput (CPU)\n\n')
        f.write(f'DGCNN k={args.k}, batch {B} objects (2 views x {args.points} points + 1 image '
                f'{args.img_size}x{args.img_size}, ResNet-{args.img_depth}), Adam step; torch {torch.__version__}, '
                f'{torch.get_num_threads()} threads on {os.cpu_count()} cores '
                f'(load average at the end: {", ".join(f"{x:.1f}" for x in out["load_average_at_end"])}).\n\n')
        f.write('| step | path | median step (s) | samples/s | speedup |\n|---|---|---|---|---|\n')
        for scope, r in results.items():
            for name in ('naive', 'mmxmodal'):
                sp = f'{r["speedup"]:.2f}x' if name == 'mmxmodal' else ''
                f.write(f'| {scope} | {name} | {r[name]["median_step_s"]:.2f} | {r[name]["samples_per_s"]:.3f} '
                        f'| {sp} |\n')
        f.write('\n`naive`: the seed code path (dense (B, N, N) kNN, (B, 2C, N, k) edge tensor + Conv2d, '
                'non-gathered lightly NT-Xent). `mmxmodal`: `CrossPoint.loss` with `DGCNNEncoder` and `NTXentLoss`.\n'
                'First-step losses (same weights and inputs) agree to '
                + ', '.join(f'{r["loss_abs_diff"]:.1e} ({s})' for s, r in results.items())
                + ' in float32 (near-ties of the feature-space kNN; in float64 the two paths agree to 1e-13, '
                'tests/test_models/test_crosspoint_encoders.py).\n'
                'Timings are medians on a machine shared with other jobs (see the load average); compare the two '
                'paths of one run, not runs.\n')
    print(f'wrote {args.out} and {md}')


if __name__ == '__main__':
    main()
