"""Cross-MoST (Dharmasiri et al., CVPRW 2024): label-free cross-modal (image + point cloud) self-training.

Per training step (batch of B objects, each with a weak and a strong view of its rendered image and its points):

1. The EMA teacher (kept by ``EMATeacherHook``; without the hook the student itself, in eval mode, without
   gradients) classifies the *weak* views with the shared prototype classifier -> per-modality softmax.
2. :func:`joint_pseudo_labels`: the more confident modality (point score x ``point_weight``) labels both
   students where its score passes the threshold (or ``mode='separate'``).
3. The students see the *strong* views with a random patch / point-group mask and are trained with
   pseudo-label cross-entropy (both branches), the fairness term ``-mean log pbar`` (both branches), masked image
   modelling (L1 on masked patches, linear pixel decoder), masked point modelling (Chamfer-L2 against the real
   masked groups) and cross-modal alignment (symmetric CE over the B x B image-point similarity matrix).

Inference: each branch alone and the combined 2D+3D classifier (mean of the two softmaxes, or of the logits).
Labels in the data samples are used for monitoring only (``pseudo_label_stats``), never in a loss.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet3d.registry import MODELS

from ..clip_utils import DEFAULT_TEMPLATES
from ..encoders.point_transformer import group_points
from ..losses.masked_modeling import patchify
from ...utils.dist import all_reduce_mean
from ..pseudo_labels import align_distribution, joint_pseudo_labels
from .base import ModeDispatchModel

SampleList = List


def _as_dict(out: Union[Tensor, Tuple, Dict]) -> Dict[str, Tensor]:
    if isinstance(out, dict):
        return out
    if isinstance(out, (tuple, list)):  # e.g. DGCNN out_type='both' -> (global, per-point)
        return dict(feat=out[0])
    return dict(feat=out)


def random_mask(batch: int, length: int, ratio: float, device: torch.device) -> Tensor:
    """(B, L) bool with exactly round(ratio * L) True entries per row, uniformly placed."""
    n = int(round(ratio * length))
    mask = torch.zeros(batch, length, dtype=torch.bool, device=device)
    if n > 0:
        idx = torch.rand(batch, length, device=device).argsort(dim=1)[:, :n]
        mask.scatter_(1, idx, True)
    return mask


@MODELS.register_module()
class CrossMoST(ModeDispatchModel):
    """Cross-MoST student (the EMA teacher is attached by ``EMATeacherHook``).

    Args:
        img_encoder: image encoder config -> ``dict(feat (B, D_i), tokens (B, L, W))`` (``CLIPViTEncoder``).
        point_encoder: point encoder config -> ``dict(feat, tokens, centers, groups)``
            (``PointTransformerEncoder``) or a (B, D_p) tensor (``DGCNNEncoder`` / ``PointNetEncoder``).
        classifier: ``PrototypeClassifier`` config over the shared space (``in_channels = embed_dim``).
        embed_dim: shared embedding dimension (CLIP's image-text space).
        img_feat_dim / point_feat_dim: encoder output dims; a linear projection to ``embed_dim`` is added where
            they differ (None: the encoder's ``out_channels``).
        img_proj / point_proj: optional projection configs into the shared space instead (e.g. ``ProjectionHead``,
            Linear-BN-ReLU-Linear, for encoders trained from scratch; keep None for CLIP's own image projection).
        class_names, templates: start the classifier from CLIP text embeddings when ``classifier_init='text'``
            (needs a CLIP image encoder with its text tower; the text tower is released afterwards).
        pseudo_label: kwargs of :func:`joint_pseudo_labels` (``mode``, ``threshold``, ``point_weight`` ...).
        loss_pl, loss_fair, loss_align, loss_mim, loss_mpm: loss configs (None disables a term).
        img_mask_ratio / pts_mask_ratio: masked fraction of patches / point groups in the student's strong view.
        mpm_groups: ``(num_groups, group_size)`` used to mask points for encoders without groups (DGCNN).
        test_fusion: the combined classifier: ``'prob'`` (mean softmax), ``'logit'`` (mean logits) or ``'joint'``
            (per sample, the softmax of the more confident branch, the point score multiplied by the pseudo-label
            rule's ``point_weight``: the teacher's joint rule applied at test time).
        branch_weights: multipliers of each branch's pseudo-label and fairness terms (``img``, ``pts``; default 1).
            With Adam a branch's encoder still learns at full speed; what shrinks is that branch's pull on the
            shared classifier (useful when one modality starts far weaker than the other).
        embed_norm: standardise each modality's shared embedding with its own ``BatchNorm1d(affine=False)``
            (for encoders trained from scratch, whose embeddings share a large common component; keep False
            for CLIP).
        dist_align: momentum of a running mean of each teacher's class probabilities (averaged over processes);
            the teacher probabilities are divided by it before the pseudo-label rule (:func:`align_distribution`),
            which counters classes a weak start over-predicts. None: off (the published rule).
    """

    def __init__(self,
                 img_encoder: dict,
                 point_encoder: dict,
                 classifier: dict,
                 embed_dim: int,
                 img_feat_dim: Optional[int] = None,
                 point_feat_dim: Optional[int] = None,
                 img_proj: Optional[dict] = None,
                 point_proj: Optional[dict] = None,
                 class_names: Optional[Sequence[str]] = None,
                 templates: Sequence[str] = DEFAULT_TEMPLATES,
                 classifier_init: str = 'none',
                 pseudo_label: dict = dict(mode='joint', threshold=0.3, point_weight=1.0),
                 loss_pl: Optional[dict] = dict(type='PseudoLabelCELoss', loss_weight=1.0),
                 loss_fair: Optional[dict] = dict(type='FairnessLoss', loss_weight=1.0),
                 loss_align: Optional[dict] = dict(type='CrossModalAlignmentLoss', temperature=0.07,
                                                   loss_weight=1.0),
                 loss_mim: Optional[dict] = dict(type='MaskedImageModelingLoss', loss_weight=1.0),
                 loss_mpm: Optional[dict] = dict(type='MaskedPointModelingLoss', loss_weight=1.0),
                 img_mask_ratio: float = 0.3,
                 pts_mask_ratio: float = 0.3,
                 mpm_groups: Tuple[int, int] = (32, 32),
                 test_fusion: str = 'prob',
                 branch_weights: Optional[Dict[str, float]] = None,
                 embed_norm: bool = False,
                 dist_align: Optional[float] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if isinstance(data_preprocessor, dict):  # this package's registry, with or without a default scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        assert test_fusion in ('prob', 'logit', 'joint'), test_fusion
        self.img_encoder = MODELS.build(img_encoder)
        self.point_encoder = MODELS.build(point_encoder)
        self.classifier = MODELS.build(classifier)
        self.embed_dim = embed_dim
        d_i = img_feat_dim or getattr(self.img_encoder, 'out_channels', embed_dim)
        d_p = point_feat_dim or getattr(self.point_encoder, 'out_channels', embed_dim)
        self.img_proj = MODELS.build(img_proj) if img_proj else (
            nn.Identity() if d_i == embed_dim else nn.Linear(d_i, embed_dim))
        self.point_proj = MODELS.build(point_proj) if point_proj else (
            nn.Identity() if d_p == embed_dim else nn.Linear(d_p, embed_dim))
        self.pl_cfg = dict(pseudo_label)
        self.loss_pl = MODELS.build(loss_pl) if loss_pl else None
        self.loss_fair = MODELS.build(loss_fair) if loss_fair else None
        self.loss_align = MODELS.build(loss_align) if loss_align else None
        self.loss_mim = MODELS.build(loss_mim) if loss_mim else None
        self.loss_mpm = MODELS.build(loss_mpm) if loss_mpm else None
        self.img_mask_ratio, self.pts_mask_ratio = img_mask_ratio, pts_mask_ratio
        self.test_fusion = test_fusion
        self.branch_weights = {**dict(img=1.0, pts=1.0), **(branch_weights or {})}
        # per-modality standardisation of the shared embeddings (removes each modality's mean offset, the
        # "modality gap", so that one cosine classifier serves both); running statistics at test time
        self.img_embed_norm = nn.BatchNorm1d(embed_dim, affine=False) if embed_norm else nn.Identity()
        self.pts_embed_norm = nn.BatchNorm1d(embed_dim, affine=False) if embed_norm else nn.Identity()
        self.class_names = list(class_names) if class_names is not None else None
        if self.loss_mim is not None:
            p = self.img_encoder.patch_size
            self.mim_decoder = nn.Linear(self.img_encoder.width, p * p * 3)  # SimMIM / MUST linear decoder
        self.pts_tokens = hasattr(self.point_encoder, 'num_groups')
        if self.pts_tokens:
            self.mpm_groups = (self.point_encoder.num_groups, self.point_encoder.group_size)
        else:
            self.mpm_groups = tuple(mpm_groups)
        if self.loss_mpm is not None:
            k = self.mpm_groups[1]
            if self.pts_tokens:
                e = self.point_encoder.embed_dims
                self.mpm_decoder = nn.Sequential(nn.Linear(e, e), nn.GELU(), nn.Linear(e, 3 * k))
            else:  # global feature + masked centre -> group points
                self.mpm_pos = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, 128))
                self.mpm_decoder = nn.Sequential(nn.Linear(embed_dim + 128, 256), nn.GELU(), nn.Linear(256, 3 * k))
        if classifier_init == 'text':
            assert self.class_names, 'classifier_init="text" needs class_names'
            assert self.embed_dim == getattr(self.img_encoder, 'out_channels', None) and d_i == embed_dim \
                and not img_proj and not embed_norm, \
                'text-initialised classifier needs the CLIP image projection (unnormalised) as the shared space'
            self.classifier.init_prototypes(self.img_encoder.class_text_embeddings(self.class_names, templates))
        elif classifier_init != 'none':
            raise ValueError(f'classifier_init {classifier_init!r} (text | none)')
        if hasattr(self.img_encoder, 'release_text_tower'):
            self.img_encoder.release_text_tower()
        self.dist_align = dist_align
        if dist_align is not None:
            assert 0.0 <= dist_align < 1.0, f'dist_align is a momentum in [0, 1), got {dist_align}'
            c = self.classifier.num_classes
            self.register_buffer('img_prob_mean', torch.full((c,), 1.0 / c))
            self.register_buffer('pts_prob_mean', torch.full((c,), 1.0 / c))
        self.set_teacher(None)
        self.pseudo_label_stats: Dict[str, float] = {}

    # ------------------------------------------------------------------ teacher
    def set_teacher(self, teacher: Optional[nn.Module]) -> None:
        """Reference the EMA teacher (an averaged copy of this model) without registering it as a submodule."""
        object.__setattr__(self, '_teacher', teacher)

    @property
    def teacher(self) -> nn.Module:
        return self._teacher if self._teacher is not None else self

    # ------------------------------------------------------------------ encoders
    def encode_img(self, img: Tensor, mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """img (B, 3, H, W) in [0, 1] -> dict(emb (B, D) shared-space embedding, tokens (B, L, W))."""
        out = _as_dict(self.img_encoder(img, mask=mask) if mask is not None else self.img_encoder(img))
        out['emb'] = self.img_embed_norm(self.img_proj(out['feat']))
        return out

    def encode_pts(self, points: Tensor, mask: Optional[Tensor] = None,
                   grouped: Optional[Tuple[Tensor, Tensor]] = None) -> Dict[str, Tensor]:
        """points (B, N, C) -> dict(emb (B, D), and the encoder's tokens / centers / groups if any)."""
        if self.pts_tokens:
            out = self.point_encoder(points, mask=mask, grouped=grouped)
        else:
            out = _as_dict(self.point_encoder(points))
        out['emb'] = self.pts_embed_norm(self.point_proj(out['feat']))
        return out

    def extract_feat(self, inputs: dict) -> Dict[str, Tensor]:
        """Shared-space embeddings of the (first) view: ``dict(img=(B, D), pts=(B, D))``."""
        img, pts = self._first_view(inputs)
        return dict(img=self.encode_img(img)['emb'], pts=self.encode_pts(pts)['emb'])

    @staticmethod
    def _views(x: Tensor, event_dim: int) -> Tuple[Tensor, Tensor]:
        """(B, 2, ...) -> (weak, strong); a single view (B, ...) serves as both."""
        if x.dim() == event_dim + 1:
            return x[:, 0], x[:, -1]
        return x, x

    def _first_view(self, inputs: dict) -> Tuple[Tensor, Tensor]:
        return self._views(inputs['img'], 4)[0], self._views(inputs['points'], 3)[0]

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def _teacher_probs(self, img: Tensor, pts: Tensor) -> Tuple[Tensor, Tensor]:
        t = self.teacher
        was_training = t.training
        t.eval()
        try:
            p_img = t.classifier(t.encode_img(img)['emb']).softmax(-1)
            p_pts = t.classifier(t.encode_pts(pts)['emb']).softmax(-1)
        finally:
            t.train(was_training)
        return p_img, p_pts

    @torch.no_grad()
    def _align(self, p_img: Tensor, p_pts: Tensor) -> Tuple[Tensor, Tensor]:
        """Update the running class means (all processes) and align both teachers' probabilities."""
        m = self.dist_align
        for name, p in (('img_prob_mean', p_img), ('pts_prob_mean', p_pts)):
            # sums and counts, so that a process with an empty batch still joins the collective
            stats = all_reduce_mean(torch.cat([p.sum(0), p.new_tensor([p.shape[0]])]))
            if stats[-1] > 0:
                buf = getattr(self, name)
                buf.mul_(m).add_(stats[:-1] / stats[-1], alpha=1 - m)
        return align_distribution(p_img, self.img_prob_mean), align_distribution(p_pts, self.pts_prob_mean)

    def _masked_points(self, pts: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Mask point groups for a global encoder: points of masked groups are overwritten with random visible
        points (N kept). -> (masked points (B, N, C), mask (B, G), centers (B, G, 3), groups (B, G, K, 3))."""
        g, k = self.mpm_groups
        centers, groups, idx = group_points(pts[..., :3], g, k)
        b, n = pts.shape[:2]
        mask = random_mask(b, g, self.pts_mask_ratio, pts.device)
        hidden = torch.zeros(b, n, dtype=torch.bool, device=pts.device)
        hidden.scatter_(1, idx[mask].view(b, -1), True)  # same number of masked groups in every row
        keep_prob = (~hidden).float() + 1e-6
        fill = torch.multinomial(keep_prob, n, replacement=True)  # (B, N) visible point indices
        filled = torch.gather(pts, 1, fill.unsqueeze(-1).expand(-1, -1, pts.shape[-1]))
        out = torch.where(hidden.unsqueeze(-1), filled, pts)
        return out, mask, centers, groups

    def loss(self, inputs: dict, data_samples: Optional[SampleList] = None) -> Dict[str, Tensor]:
        """inputs: ``img`` (B, 2, 3, H, W) [weak, strong] in [0, 1], ``points`` (B, 2, N, C) [weak, strong]
        (a single view serves as both). Returns the loss dict (plus detached monitoring scalars)."""
        img_w, img_s = self._views(inputs['img'], 4)
        pts_w, pts_s = self._views(inputs['points'], 3)
        b = img_w.shape[0]
        pl = None
        if self.loss_pl is not None:  # (a pure alignment warm-up has no pseudo-label term)
            p_img, p_pts = self._teacher_probs(img_w, pts_w)
            if self.dist_align is not None:
                p_img, p_pts = self._align(p_img, p_pts)
            pl = joint_pseudo_labels(p_img, p_pts, **self.pl_cfg)

        # students on the strong views, masked
        img_mask = None
        if self.loss_mim is not None and self.img_mask_ratio > 0:
            gh, gw = self.img_encoder.grid_size
            img_mask = random_mask(b, gh * gw, self.img_mask_ratio, img_s.device)
        s_img = self.encode_img(img_s, img_mask)
        pts_mask = grouped = None
        pts_in = pts_s
        if self.loss_mpm is not None and self.pts_mask_ratio > 0:
            if self.pts_tokens:
                centers, groups, _ = group_points(pts_s[..., :3], *self.mpm_groups)
                grouped = (centers, groups)
                pts_mask = random_mask(b, centers.shape[1], self.pts_mask_ratio, pts_s.device)
            else:
                pts_in, pts_mask, centers, groups = self._masked_points(pts_s)
        s_pts = self.encode_pts(pts_in, pts_mask if self.pts_tokens else None, grouped)
        logit_img = self.classifier(s_img['emb'])
        logit_pts = self.classifier(s_pts['emb'])

        losses = {}
        w_img, w_pts = self.branch_weights['img'], self.branch_weights['pts']
        if self.loss_pl is not None:
            losses['loss_pl_img'] = w_img * self.loss_pl(logit_img, pl['img_labels'], pl['img_mask'])
            losses['loss_pl_pts'] = w_pts * self.loss_pl(logit_pts, pl['pts_labels'], pl['pts_mask'])
        if self.loss_fair is not None:
            losses['loss_fair_img'] = w_img * self.loss_fair(logit_img.softmax(-1))
            losses['loss_fair_pts'] = w_pts * self.loss_fair(logit_pts.softmax(-1))
        if self.loss_align is not None:
            losses['loss_align'] = self.loss_align(s_img['emb'], s_pts['emb'])
        if self.loss_mim is not None and img_mask is not None:
            p = self.img_encoder.patch_size
            target = patchify((img_s - self.img_encoder.mean) / self.img_encoder.std, p)
            losses['loss_mim'] = self.loss_mim(self.mim_decoder(s_img['tokens']), target, img_mask)
        if self.loss_mpm is not None and pts_mask is not None:
            k = self.mpm_groups[1]
            if self.pts_tokens:
                pred = self.mpm_decoder(s_pts['tokens'])
            else:
                g = centers.shape[1]
                ctx = s_pts['emb'].unsqueeze(1).expand(-1, g, -1)
                pred = self.mpm_decoder(torch.cat([ctx, self.mpm_pos(centers)], -1))
            pred = pred.view(b, -1, k, 3)
            losses['loss_mpm'] = self.loss_mpm(pred, groups, pts_mask)
        if pl is not None:
            self.pseudo_label_stats = self._pseudo_label_stats(pl, p_img, p_pts, data_samples)
            losses['pl_rate'] = pl['img_mask'].float().mean().detach()
        return losses

    @torch.no_grad()
    def _pseudo_label_stats(self, pl: dict, p_img: Tensor, p_pts: Tensor,
                            data_samples: Optional[SampleList]) -> Dict[str, float]:
        """Counts for ``PseudoLabelMonitorHook``; ground truth (where present) is only compared here."""
        from_pts = pl['from_points']
        joint = self.pl_cfg.get('mode', 'joint') == 'joint'
        stats = dict(num=float(p_img.shape[0]), img_accepted=float(pl['img_mask'].sum()),
                     pts_accepted=float(pl['pts_mask'].sum()), from_pts=float(from_pts.sum()))
        if joint:  # one label per sample for both students, given by the 2D or by the 3D teacher
            accepted = pl['pts_mask']
            stats.update(accepted_from_img=float((accepted & ~from_pts).sum()),
                         accepted_from_pts=float((accepted & from_pts).sum()))
        gt = self._gt_labels(data_samples, p_img.device)
        if gt is not None:
            known = gt >= 0
            stats['labelled'] = float(known.sum())
            if joint:  # accuracy of the accepted labels by the teacher that gave them
                for src, sel in (('img', ~from_pts), ('pts', from_pts)):
                    acc = pl['pts_mask'] & sel & known
                    stats[f'from_{src}_labelled_accepted'] = float(acc.sum())
                    stats[f'from_{src}_correct'] = float(((pl['pts_labels'] == gt) & acc).sum())
            stats['teacher_img_correct'] = float(((p_img.argmax(1) == gt) & known).sum())
            stats['teacher_pts_correct'] = float(((p_pts.argmax(1) == gt) & known).sum())
            for m in ('img', 'pts'):
                acc = pl[f'{m}_mask'] & known
                stats[f'{m}_labelled_accepted'] = float(acc.sum())
                stats[f'{m}_correct'] = float(((pl[f'{m}_labels'] == gt) & acc).sum())
        return stats

    @staticmethod
    def _gt_labels(data_samples: Optional[SampleList], device: torch.device) -> Optional[Tensor]:
        if not data_samples or not all(hasattr(s, 'gt_label') for s in data_samples):
            return None
        return torch.stack([torch.as_tensor(s.gt_label).view(()) for s in data_samples]).long().to(device)

    # ------------------------------------------------------------------ inference
    def predict_logits(self, inputs: dict) -> Dict[str, Tensor]:
        """(first-view) logits of each branch and of the 2D+3D fusions: ``img``, ``pts``, ``fused_prob`` (log of
        the mean softmax), ``fused_logit`` (mean logits), ``fused_joint`` (log softmax of the more confident branch,
        the point score times the pseudo-label rule's ``point_weight``) and ``combined`` (the one chosen by
        ``test_fusion``)."""
        emb = self.extract_feat(inputs)
        li, lp = self.classifier(emb['img']), self.classifier(emb['pts'])
        pi, pp = li.log_softmax(-1), lp.log_softmax(-1)
        # the pseudo-label rule's choice of modality, without its threshold
        from_pts = joint_pseudo_labels(pi.exp(), pp.exp(), mode='joint',
                                       point_weight=self.pl_cfg.get('point_weight', 1.0))['from_points']
        fused = dict(prob=torch.log((li.softmax(-1) + lp.softmax(-1)) / 2),
                     joint=torch.where(from_pts.unsqueeze(-1), pp, pi),
                     logit=(li + lp) / 2)
        return dict(img=li, pts=lp, combined=fused[self.test_fusion],
                    **{f'fused_{k}': v for k, v in fused.items()})

    def predict(self, inputs: dict, data_samples: Optional[SampleList] = None) -> SampleList:
        """Sets ``pred_label_{img,pts,combined}`` and ``pred_score_{...}`` (softmax) on each data sample
        (``pred_label`` = combined)."""
        out = self.predict_logits(inputs)
        b = out['img'].shape[0]
        if data_samples is None:
            from mmengine.structures import BaseDataElement
            data_samples = [BaseDataElement() for _ in range(b)]
        probs = {k: v.softmax(-1) for k, v in out.items()}
        for i, s in enumerate(data_samples):
            for k, p in probs.items():
                s.set_field(p[i].detach(), f'pred_score_{k}')
                s.set_field(p[i].argmax().detach(), f'pred_label_{k}')
            s.set_field(probs['combined'][i].argmax().detach(), 'pred_label')
        return data_samples

    def _forward(self, inputs: dict, data_samples: Optional[SampleList] = None) -> Dict[str, Tensor]:
        """Tensor mode: :meth:`predict_logits`."""
        return self.predict_logits(inputs)
