"""SimIPU (Li et al., AAAI 2022): camera-LiDAR contrastive pretraining of an image and a LiDAR encoder.

- Intra-modal spatial perception: point-level InfoNCE between the two views of one scan made by
  :class:`~mmxmodal.datasets.transforms.GlobalTwoViews`; the positive of point ``i`` of view 1 is point ``i`` of
  view 2 (index correspondence, no matching).
- Inter-modal feature interaction: point-pixel InfoNCE between the LiDAR point features of view 1 and the
  image features bilinearly sampled (``grid_sample``, ``align_corners=False``, i.e. the continuous pixel
  convention of :mod:`~mmxmodal.datasets.transforms.multiview_image_aug`) at the valid projections recorded by
  :class:`~mmxmodal.datasets.transforms.ProjectPointsToCameras` (in front of the camera, inside the image).

Sub-module names follow the downstream detectors, so their weights load with mmengine's ``Pretrained`` init
(``img_backbone.*``, ``img_neck.*``, ``pts_voxel_encoder.*``, ``pts_middle_encoder.*``, ``pts_backbone.*``).
LiDAR branch, by config:

(a) sparse voxels: ``pts_voxel_encoder`` (``HardSimpleVFE`` / ``DynamicSimpleVFE``) + ``pts_middle_encoder``
    (mmdet3d ``SparseEncoder``) after the voxelisation of the data preprocessor; point features by point-to-voxel
    index maps into chosen stages and the BEV-dense output (``sparse_point_sources``, see
    :mod:`mmxmodal.models.encoders.voxel_point_features`);
(b) PointNet++: ``pts_backbone`` (mmdet3d ``PointNet2SASSG`` / ``PointNet2SAMSG``); features of the last FP level
    (SA level for SAMSG) propagated to every input point by inverse-distance three-nn interpolation.

Positives are sampled (``max_pairs``) after removing duplicates that would share a feature (points in one
voxel / BEV cell, pixels in one feature cell), which would otherwise be indistinguishable "negatives".
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmengine.model import BaseModel
from torch import Tensor

from mmxmodal.models.encoders.voxel_point_features import (gather_sparse_point_features, lookup_sparse_sites,
                                                            point_voxel_coords, sparse_encoder_channels,
                                                            sparse_encoder_forward)
from mmxmodal.models.ops import three_interpolate, three_nn


def first_unique(keys: Tensor) -> Tensor:
    """Positions (sorted) of the first occurrence of every distinct value of ``keys`` (1-D)."""
    if keys.numel() == 0:
        return keys.new_zeros((0, ), dtype=torch.long)
    _, inv = torch.unique(keys, return_inverse=True)
    pos = torch.arange(keys.numel(), device=keys.device)
    first = torch.full((int(inv.max()) + 1, ), keys.numel(), dtype=torch.long, device=keys.device)
    first = first.scatter_reduce(0, inv, pos, reduce='amin')
    return first.sort().values


def sample_pixel_features(feat: Tensor, img_idx: Tensor, uv: Tensor, input_hw: Tuple[int, int]) -> Tensor:
    """Bilinearly sample ``feat`` at continuous input-pixel coordinates.

    Args:
        feat: (NI, C, h, w) feature maps of the NI (sample, camera) images.
        img_idx: (M,) image index of each query.
        uv: (M, 2) pixel coordinates ``(u, v)`` in the padded network input of size ``input_hw`` (continuous
            convention: pixel centres at ``+ 0.5``).
        input_hw: (H, W) of the network input.

    Returns:
        (M, C) features. A feature cell ``j`` covers input pixels ``[j s, (j + 1) s)`` with the stride
        ``s = 2 ** round(log2(W / w))`` (exact when the input is padded to a multiple of the stride), so the
        normalised coordinate is ``2 u / (w s) - 1`` with ``align_corners=False``.
    """
    m = img_idx.shape[0]
    ni, c, h, w = feat.shape
    if m == 0:
        return feat.new_zeros((0, c)) + feat.sum() * 0
    sx = 2.0**round(math.log2(input_hw[1] / w))
    sy = 2.0**round(math.log2(input_hw[0] / h))
    norm = torch.stack([2 * uv[:, 0] / (w * sx) - 1, 2 * uv[:, 1] / (h * sy) - 1], 1).to(feat.dtype)
    order = torch.argsort(img_idx, stable=True)
    sorted_img = img_idx[order]
    counts = torch.bincount(sorted_img, minlength=ni)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(m, device=feat.device) - starts[sorted_img]
    grid = feat.new_full((ni, int(counts.max()), 2), -2.0)
    grid[sorted_img, slot] = norm[order]
    sampled = F.grid_sample(feat, grid[:, :, None, :], mode='bilinear', align_corners=False)  # (NI, C, K, 1)
    out = torch.empty((m, c), dtype=feat.dtype, device=feat.device)
    out[order] = sampled[sorted_img, :, slot, 0]
    return out


def _disjoint_keys(pix_keys: List[Tensor], pt_keys: List[Tensor]) -> Tuple[Tensor, Tensor]:
    """Concatenate per-sample superpixel keys, shifting each sample past the largest key of the ones before."""
    off, out_pix, out_pt = 0, [], []
    for kp, kq in zip(pix_keys, pt_keys):
        out_pix.append(kp + off)
        out_pt.append(kq + off)
        both = torch.cat([kp, kq])
        off += int(both.max()) + 1 if both.numel() else 0
    return torch.cat(out_pix), torch.cat(out_pt)


def _common_keys(pix_keys: Tensor, pt_keys: Tensor) -> Tuple[int, Tensor, Tensor]:
    """Keys present on both sides -> (how many, row of each pixel key among them or -1, same for points)."""
    common = torch.unique(pt_keys)
    common = common[torch.isin(common, pix_keys)]

    def rows(keys: Tensor) -> Tensor:
        if common.numel() == 0:
            return torch.full_like(keys, -1)
        pos = torch.searchsorted(common, keys).clamp(max=common.numel() - 1)
        return torch.where(common[pos] == keys, pos, torch.full_like(keys, -1))
    return common.numel(), rows(pix_keys), rows(pt_keys)


def _scatter_mean(x: Tensor, index: Tensor, n: int) -> Tensor:
    """(M, D) rows averaged into (n, D) by ``index`` (every row of the result has at least one member)."""
    out = x.new_zeros((n, x.shape[1])).index_add_(0, index, x)
    cnt = torch.bincount(index, minlength=n).clamp(min=1).to(x.dtype)
    return out / cnt[:, None]


class ViewPoints:
    """Point features of one LiDAR view: validity and duplicate keys for all points, features on demand."""

    def __init__(self, valid: List[Tensor], cell: List[Tensor], fetch, keep_alive: Tensor) -> None:
        self.valid = valid  # per sample (N_b,) bool
        self.cell = cell  # per sample (N_b,) int64, equal keys share one feature
        self._fetch = fetch  # (list[(idx_b)]) -> (sum n_b, C)
        self.keep_alive = keep_alive  # zero scalar connected to every encoder output

    def features(self, indices: List[Tensor]) -> Tensor:
        return self._fetch(indices)


@MODELS.register_module()
class SimIPU(BaseModel):
    """SimIPU pretraining model (loss only; ``mode='tensor'`` returns the encoder features).

    Args:
        img_backbone: image encoder (mmdet ``ResNet``, caffe style for FCOS3D).
        img_neck: optional image neck (mmdet ``FPN``).
        img_feat_levels: indices of the image feature maps (after the neck, if any) sampled at the pixels and
            concatenated; use all levels so that every stage receives gradients (DDP without
            ``find_unused_parameters``).
        img_feat_channels: channels of each of those levels (sum = image feature size).
        pts_voxel_encoder / pts_middle_encoder: sparse LiDAR branch (needs a voxelising data preprocessor).
        sparse_point_sources: sources of sparse point features (``conv_input``, ``encoder_layerK``, ``bev``),
            concatenated; the finest one defines duplicates (points sharing its site).
        pts_backbone: PointNet++ LiDAR branch (instead of the sparse one).
        pts_feat_channels: feature size of the PointNet++ branch (last FP / SA level).
        point_proj / inter_point_proj / img_proj: projection heads (``in_channels`` filled in).
        loss_intra / loss_inter: ``SampledInfoNCELoss`` configs.
        max_pairs_intra / max_pairs_inter: positives per process and step (candidates are sampled before any
            feature is gathered; ``None`` = all).
        dedup: drop positives that would share a feature with another positive.
        loss_superpixel: optional SLidR-style superpixel-pooled contrast (e.g. ``SampledInfoNCELoss``), added to
            the point-pixel term as ``loss_superpixel``; needs ``LoadSuperpixels`` in the pipeline (see
            :meth:`superpixel_contrast`). None: off.
        data_preprocessor: ``PairedSceneDataPreprocessor`` (a ``Det3DDataPreprocessor``).
    """

    def __init__(self,
                 img_backbone: dict,
                 img_neck: Optional[dict] = None,
                 img_feat_levels: Sequence[int] = (0, 1, 2, 3),
                 img_feat_channels: Sequence[int] = (256, 512, 1024, 2048),
                 pts_voxel_encoder: Optional[dict] = None,
                 pts_middle_encoder: Optional[dict] = None,
                 sparse_point_sources: Sequence[str] = ('encoder_layer2', 'encoder_layer3', 'bev'),
                 pts_backbone: Optional[dict] = None,
                 pts_feat_channels: Optional[int] = None,
                 point_proj: dict = dict(type='ContrastProjectionHead', hidden_channels=(256, ), out_channels=128),
                 inter_point_proj: Optional[dict] = None,
                 img_proj: Optional[dict] = None,
                 loss_intra: dict = dict(type='SampledInfoNCELoss', temperature=0.07),
                 loss_inter: dict = dict(type='SampledInfoNCELoss', temperature=0.07),
                 max_pairs_intra: Optional[int] = 4096,
                 max_pairs_inter: Optional[int] = 4096,
                 dedup: bool = True,
                 loss_superpixel: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if (pts_middle_encoder is None) == (pts_backbone is None):
            raise ValueError('SimIPU needs exactly one LiDAR branch: pts_middle_encoder (sparse voxels, with '
                             'pts_voxel_encoder) or pts_backbone (PointNet++)')
        img_channels = self._build_image_branch(img_backbone, img_neck, img_feat_levels, img_feat_channels)

        if pts_middle_encoder is not None:
            if pts_voxel_encoder is None:
                raise ValueError('the sparse LiDAR branch needs pts_voxel_encoder')
            self.pts_voxel_encoder = MODELS.build(pts_voxel_encoder)
            self.pts_middle_encoder = MODELS.build(pts_middle_encoder)
            self.sparse_point_sources = tuple(sparse_point_sources)
            chans = sparse_encoder_channels(self.pts_middle_encoder)
            unknown = [s for s in self.sparse_point_sources if s not in chans]
            if unknown or not self.sparse_point_sources:
                raise ValueError(f'sparse_point_sources {unknown or "()"} invalid; choose from {list(chans)}')
            pts_channels = sum(chans[s] for s in self.sparse_point_sources)
            self.with_sparse = True
        else:
            self.pts_backbone = MODELS.build(pts_backbone)
            if pts_feat_channels is None:
                raise ValueError('pts_feat_channels is required with pts_backbone')
            pts_channels = int(pts_feat_channels)
            self.with_sparse = False
        self._build_contrast(pts_channels, img_channels, point_proj, inter_point_proj, img_proj, loss_intra, loss_inter,
                             loss_superpixel, max_pairs_intra, max_pairs_inter, dedup)

    def _build_image_branch(self, img_backbone: dict, img_neck: Optional[dict], img_feat_levels: Sequence[int],
                            img_feat_channels: Sequence[int]) -> int:
        """Image backbone (+ neck) and the sampled levels; returns the image feature size."""
        if len(img_feat_levels) != len(img_feat_channels):
            raise ValueError('img_feat_levels and img_feat_channels must have the same length')
        self.img_backbone = MODELS.build(img_backbone)
        self.img_neck = MODELS.build(img_neck) if img_neck is not None else None
        self.img_feat_levels = tuple(img_feat_levels)
        return int(sum(img_feat_channels))

    def _build_contrast(self, pts_channels: int, img_channels: int, point_proj: dict, inter_point_proj: Optional[dict],
                        img_proj: Optional[dict], loss_intra: dict, loss_inter: dict, loss_superpixel: Optional[dict],
                        max_pairs_intra: Optional[int], max_pairs_inter: Optional[int], dedup: bool) -> None:
        """Projection heads (``inter_point_proj`` / ``img_proj`` default to ``point_proj``'s config), losses and
        pair sampling."""

        def head(cfg: Optional[dict], c: int):
            cfg = dict(point_proj if cfg is None else cfg)
            cfg['in_channels'] = c
            return MODELS.build(cfg)

        self.point_proj = head(point_proj, pts_channels)
        self.inter_point_proj = head(inter_point_proj, pts_channels)
        self.img_proj = head(img_proj, img_channels)
        self.loss_intra = MODELS.build(loss_intra)
        self.loss_inter = MODELS.build(loss_inter)
        self.max_pairs_intra = max_pairs_intra
        self.max_pairs_inter = max_pairs_inter
        self.dedup = dedup
        self.loss_superpixel = MODELS.build(loss_superpixel) if loss_superpixel is not None else None

    # ---------------------------------------------------------------------------------------- image branch
    def extract_img_feats(self, imgs: Tensor) -> List[Tensor]:
        """imgs (B, N_cam, 3, H, W) -> the selected feature maps, each (B * N_cam, C_l, H_l, W_l)."""
        if imgs.dim() == 4:
            imgs = imgs[:, None]
        feats = self.img_backbone(imgs.flatten(0, 1))
        if self.img_neck is not None:
            feats = self.img_neck(feats)
        return [feats[i] for i in self.img_feat_levels]

    # ---------------------------------------------------------------------------------------- LiDAR branch
    def _sparse_view(self, points: List[Tensor], voxel_dict: Dict[str, Tensor]) -> ViewPoints:
        enc = self.pts_middle_encoder
        if 'num_points' in voxel_dict:  # hard voxelisation
            coors = voxel_dict['coors']
            vfeat = self.pts_voxel_encoder(voxel_dict['voxels'], voxel_dict['num_points'], coors)
        else:  # dynamic voxelisation: per-point coors in, voxel features and coors out
            vfeat, coors = self.pts_voxel_encoder(voxel_dict['voxels'], voxel_dict['coors'])
        batch_size = len(points)
        stages, bev = sparse_encoder_forward(enc, vfeat, coors, batch_size)
        layer = self.data_preprocessor.voxel_layer
        grid_zyx = [int(g) for g in layer.grid_shape][::-1]
        bzyx, inside = [], []
        for b, p in enumerate(points):
            c, ok = point_voxel_coords(p[:, :3], layer.point_cloud_range, layer.voxel_size, grid_zyx)
            bzyx.append(torch.cat([c.new_full((c.shape[0], 1), b), c], 1))
            inside.append(ok)
        all_bzyx, all_inside = torch.cat(bzyx), torch.cat(inside)
        has_voxel = lookup_sparse_sites(all_bzyx, coors.long(), enc.sparse_shape) >= 0
        _, ok, cell = gather_sparse_point_features(enc, stages, bev, all_bzyx, self.sparse_point_sources,
                                                   with_features=False)
        valid = all_inside & has_voxel & ok
        cell = torch.where(valid, cell, torch.full_like(cell, -1))
        sizes = [p.shape[0] for p in points]

        def fetch(indices: List[Tensor]) -> Tensor:
            rows = torch.cat([idx + off for idx, off in zip(indices, split_offsets(sizes))])
            feat, _, _ = gather_sparse_point_features(enc, stages, bev, all_bzyx[rows], self.sparse_point_sources)
            return feat

        keep = bev.sum() * 0 + sum(st.features.sum() * 0 for st in stages.values())
        return ViewPoints(list(valid.split(sizes)), list(cell.split(sizes)), fetch, keep)

    def _pointnet_view(self, points: List[Tensor]) -> ViewPoints:
        sizes = {p.shape[0] for p in points}
        if len(sizes) != 1:
            raise ValueError(f'the PointNet++ branch needs the same number of points per sample (got {sizes}); '
                             'add PointSample(num_points=...) to the pipeline')
        pts = torch.stack(points)  # (B, N, C)
        out = self.pts_backbone(pts)
        if 'fp_xyz' in out:
            src_xyz, src_feat = out['fp_xyz'][-1], out['fp_features'][-1]
        else:
            src_xyz, src_feat = out['sa_xyz'][-1], out['sa_features'][-1]
        xyz = pts[..., :3].contiguous()
        n = pts.shape[1]

        def fetch(indices: List[Tensor]) -> Tensor:
            feats = []
            for b, idx in enumerate(indices):
                if idx.numel() == 0:
                    feats.append(src_feat.new_zeros((0, src_feat.shape[1])))
                    continue
                q = xyz[b:b + 1, idx].contiguous()
                dist, nn_idx = three_nn(q, src_xyz[b:b + 1].contiguous())
                w = 1.0 / (dist + 1e-8)
                w = w / w.sum(dim=2, keepdim=True)
                feats.append(three_interpolate(src_feat[b:b + 1].contiguous(), nn_idx, w)[0].t())
            return torch.cat(feats) if feats else src_feat.new_zeros((0, src_feat.shape[1]))

        valid = [torch.ones(n, dtype=torch.bool, device=pts.device) for _ in points]
        cell = [torch.arange(n, device=pts.device) for _ in points]
        return ViewPoints(valid, cell, fetch, src_feat.sum() * 0)

    def extract_pts_view(self, points: List[Tensor], voxel_dict: Optional[Dict[str, Tensor]] = None
                         ) -> ViewPoints:
        """Point features of one view. points: list of (N_b, C) in the view's frame."""
        if self.with_sparse:
            if voxel_dict is None:
                raise ValueError('the sparse LiDAR branch needs voxels: set voxel=True in the data preprocessor')
            return self._sparse_view(points, voxel_dict)
        return self._pointnet_view(points)

    # ---------------------------------------------------------------------------------------- pair sampling
    def _pick(self, keys: Tensor, quota: Optional[int], extra_keys: Optional[Tensor] = None) -> Tensor:
        """Random order, duplicates removed (``keys`` then ``extra_keys``), at most ``quota``: positions."""
        perm = torch.randperm(keys.numel(), device=keys.device)
        if self.dedup:
            perm = perm[first_unique(keys[perm])]
            if extra_keys is not None:
                perm = perm[first_unique(extra_keys[perm])]
        return perm if quota is None else perm[:quota]

    @staticmethod
    def _quota(max_pairs: Optional[int], batch: int) -> Optional[int]:
        return None if max_pairs is None else max(1, max_pairs // max(batch, 1))

    # ---------------------------------------------------------------------------------------- forward
    def loss(self, inputs: dict, data_samples: list) -> Dict[str, Tensor]:
        """Intra-modal (two views) and inter-modal (point-pixel) InfoNCE, with top-1 accuracies."""
        points1, points2 = inputs['points'], inputs['points_view2']
        batch = len(points1)
        view1 = self.extract_pts_view(points1, inputs.get('voxels'))
        view2 = self.extract_pts_view(points2, inputs.get('voxels_view2'))
        img_feats = self.extract_img_feats(inputs['imgs'])
        num_cams = inputs['imgs'].shape[1] if inputs['imgs'].dim() == 5 else 1
        input_hw = tuple(inputs['imgs'].shape[-2:])

        # intra-modal: same index in both views
        quota = self._quota(self.max_pairs_intra, batch)
        sel = []
        for b in range(batch):
            cand = torch.nonzero(view1.valid[b] & view2.valid[b]).squeeze(1)
            sel.append(cand[self._pick(view1.cell[b][cand], quota)])
        z1 = self.point_proj(view1.features(sel))
        z2 = self.point_proj(view2.features(sel))
        loss_intra, acc_intra = self.loss_intra(z1, z2)
        loss_intra = loss_intra + view1.keep_alive + view2.keep_alive

        # inter-modal: valid projections of view-1 points
        quota = self._quota(self.max_pairs_inter, batch)
        finest = img_feats[int(torch.tensor([f.shape[-1] for f in img_feats]).argmax())]
        stride = 2.0**round(math.log2(input_hw[1] / finest.shape[-1]))
        fh, fw = finest.shape[-2:]
        pt_sel, img_idx, uvs = [], [], []
        for b, ds in enumerate(data_samples):
            meta = ds.metainfo
            dev = view1.valid[b].device
            pidx = torch.as_tensor(meta['proj_point_idx'], dtype=torch.long, device=dev)
            cam = torch.as_tensor(meta['proj_cam_idx'], dtype=torch.long, device=dev)
            uv = torch.as_tensor(meta['proj_uv'], dtype=torch.float32, device=dev)
            keep = view1.valid[b][pidx] if pidx.numel() else torch.zeros(0, dtype=torch.bool, device=dev)
            pidx, cam, uv = pidx[keep], cam[keep], uv[keep]
            pix = torch.floor(uv / stride).long()
            pix_key = (cam * fh + pix[:, 1].clamp(0, fh - 1)) * fw + pix[:, 0].clamp(0, fw - 1)
            pick = self._pick(view1.cell[b][pidx], quota, pix_key)
            pt_sel.append(pidx[pick])
            img_idx.append(cam[pick] + b * num_cams)
            uvs.append(uv[pick])
        img_idx, uvs = torch.cat(img_idx), torch.cat(uvs)
        f_img = torch.cat([sample_pixel_features(f, img_idx, uvs, input_hw) for f in img_feats], 1)
        e_img = self.img_proj(f_img)
        e_pt = self.inter_point_proj(view1.features(pt_sel))
        loss_inter, acc_inter = self.loss_inter(e_img, e_pt)
        loss_inter = loss_inter + sum(f.sum() * 0 for f in img_feats)
        losses = dict(loss_intra=loss_intra, loss_inter=loss_inter, acc_intra=acc_intra, acc_inter=acc_inter,
                      npairs_intra=z1.new_tensor(float(z1.shape[0])),
                      npairs_inter=z1.new_tensor(float(e_pt.shape[0])))
        if self.loss_superpixel is not None:
            loss_sp, acc_sp, n_sp = self.superpixel_contrast(view1, img_feats, data_samples, num_cams, input_hw)
            losses.update(loss_superpixel=loss_sp + sum(f.sum() * 0 for f in img_feats), acc_superpixel=acc_sp,
                          nsuperpixels=z1.new_tensor(float(n_sp)))
        return losses

    def superpixel_contrast(self, view1: ViewPoints, img_feats: List[Tensor], data_samples: list, num_cams: int,
                            input_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor, int]:
        """SLidR's superpixel-driven contrast: point and pixel embeddings averaged per superpixel, InfoNCE between
        the two averages of each superpixel that holds at least one projected point (the other superpixels are
        negatives).

        Needs ``superpixels`` in the metainfo (:class:`~mmxmodal.datasets.transforms.LoadSuperpixels`, carried by
        ``MultiViewImageAug``): (num_cams, H, W) ids, -1 on padding. Pixels: the centres of the finest feature
        map's cells, all levels sampled there (as the point-pixel term) and projected by ``img_proj``; points: the
        valid projections of view 1 (``proj_*``), projected by ``inter_point_proj``. Embeddings are L2-normalised
        before averaging (SLidR).

        Returns:
            (weighted loss, top-1 accuracy, number of superpixel pairs).
        """
        finest = img_feats[int(torch.tensor([f.shape[-1] for f in img_feats]).argmax())]
        stride = 2.0**round(math.log2(input_hw[1] / finest.shape[-1]))
        fh, fw = finest.shape[-2:]
        dev = finest.device
        pix_keys, pix_emb, pt_keys, pt_sel = [], [], [], []
        for b, ds in enumerate(data_samples):
            meta = ds.metainfo
            if 'superpixels' not in meta:
                raise KeyError('loss_superpixel needs superpixel maps: add LoadSuperpixels to the pipeline before '
                               'MultiViewImageAug')
            sp = torch.as_tensor(np.asarray(meta['superpixels']), dtype=torch.long, device=dev)  # (C, H, W)
            n_sp = int(sp.max()) + 1 if sp.numel() else 0
            # pixels: finest-cell centres
            ys = (torch.arange(fh, device=dev, dtype=torch.float32) + 0.5) * stride
            xs = (torch.arange(fw, device=dev, dtype=torch.float32) + 0.5) * stride
            yi = ys.long().clamp(max=sp.shape[1] - 1)
            xi = xs.long().clamp(max=sp.shape[2] - 1)
            grid = sp[:, yi][:, :, xi]  # (C, fh, fw)
            cam, gy, gx = torch.nonzero(grid >= 0, as_tuple=True)
            pix_keys.append(cam * n_sp + grid[cam, gy, gx])
            if cam.numel():
                uv = torch.stack([xs[gx], ys[gy]], 1)
                f = torch.cat([sample_pixel_features(lvl, cam + b * num_cams, uv, input_hw) for lvl in img_feats], 1)
                pix_emb.append(F.normalize(self.img_proj(f), dim=1))
            # points: valid projections of view 1
            pidx = torch.as_tensor(meta['proj_point_idx'], dtype=torch.long, device=dev)
            pcam = torch.as_tensor(meta['proj_cam_idx'], dtype=torch.long, device=dev)
            puv = torch.as_tensor(meta['proj_uv'], dtype=torch.float32, device=dev)
            keep = view1.valid[b][pidx] if pidx.numel() else torch.zeros(0, dtype=torch.bool, device=dev)
            pidx, pcam, puv = pidx[keep], pcam[keep], puv[keep]
            u = puv[:, 0].long().clamp(0, sp.shape[2] - 1)
            v = puv[:, 1].long().clamp(0, sp.shape[1] - 1)
            sid = sp[pcam, v, u] if pidx.numel() else pidx
            ok = sid >= 0
            pt_sel.append(pidx[ok])
            pt_keys.append(pcam[ok] * n_sp + sid[ok])
        # keys must not collide across samples: offset every sample by the previous samples' key range
        pix_keys, pt_keys = _disjoint_keys(pix_keys, pt_keys)
        e_pt = F.normalize(self.inter_point_proj(view1.features(pt_sel)), dim=1)
        e_pix = torch.cat(pix_emb) if pix_emb else e_pt.new_zeros((0, e_pt.shape[1]))
        common, pix_inv, pt_inv = _common_keys(pix_keys, pt_keys)
        pooled_pix = _scatter_mean(e_pix[pix_inv >= 0], pix_inv[pix_inv >= 0], common)
        pooled_pt = _scatter_mean(e_pt[pt_inv >= 0], pt_inv[pt_inv >= 0], common)
        loss, acc = self.loss_superpixel(pooled_pt, pooled_pix)
        return loss + e_pt.sum() * 0 + e_pix.sum() * 0, acc, common

    def forward(self, inputs: dict, data_samples: Optional[list] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            out = dict(img_feats=self.extract_img_feats(inputs['imgs']))
            if self.with_sparse:
                vd = inputs['voxels']
                if 'num_points' in vd:
                    vfeat, coors = self.pts_voxel_encoder(vd['voxels'], vd['num_points'], vd['coors']), vd['coors']
                else:
                    vfeat, coors = self.pts_voxel_encoder(vd['voxels'], vd['coors'])
                out['bev_feats'] = self.pts_middle_encoder(vfeat, coors, len(inputs['points']))
            else:
                out['pts_feats'] = self.pts_backbone(torch.stack(inputs['points']))
            return out
        raise NotImplementedError(f'SimIPU is a pretraining model: mode {mode!r} is not supported '
                                  "(use 'loss' or 'tensor')")


def split_offsets(sizes: List[int]) -> List[int]:
    """Start offset of each of consecutive blocks of ``sizes`` rows (an exclusive cumulative sum)."""
    out, acc = [], 0
    for s in sizes:
        out.append(acc)
        acc += s
    return out
