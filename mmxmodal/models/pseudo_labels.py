"""Joint cross-modal pseudo-labels (Cross-MoST).

Each modality's teacher gives class probabilities. The score of a modality is its maximum softmax probability; the
point score is multiplied by ``point_weight``. ``mode='joint'`` (the published rule): per sample, the more confident
modality's argmax labels *both* students, if its score passes ``threshold``. ``mode='separate'``: each modality keeps
its own argmax, accepted where its own (unweighted) score passes its own threshold (``img_threshold``,
``pts_threshold``).

:func:`align_distribution` (optional, before the rule) divides a teacher's probabilities by the running mean of its
predictions and renormalises (ReMixMatch's distribution alignment towards a uniform class prior), so that classes
the teacher over-predicts lose pseudo-labels to the ones it under-predicts.
"""
from typing import Dict, Optional

import torch
from torch import Tensor


@torch.no_grad()
def align_distribution(probs: Tensor, running_mean: Tensor, eps: float = 1e-6) -> Tensor:
    """Distribution alignment of teacher probabilities towards a uniform class prior.

    Args:
        probs: (B, C) softmax probabilities.
        running_mean: (C,) running mean of the teacher's probabilities over recent batches (sums to 1).

    Returns:
        (B, C) ``probs / running_mean`` renormalised per row; equals ``probs`` when ``running_mean`` is uniform.
    """
    assert probs.dim() == 2 and running_mean.shape == probs.shape[1:], (probs.shape, running_mean.shape)
    if probs.numel() == 0:
        return probs
    q = probs / running_mean.clamp_min(eps)
    return q / q.sum(dim=1, keepdim=True).clamp_min(eps)


@torch.no_grad()
def joint_pseudo_labels(img_probs: Tensor,
                        pts_probs: Tensor,
                        threshold: float = 0.3,
                        point_weight: float = 1.0,
                        mode: str = 'joint',
                        img_threshold: Optional[float] = None,
                        pts_threshold: Optional[float] = None) -> Dict[str, Tensor]:
    """Pseudo-labels from the two teachers' probabilities.

    Args:
        img_probs: (B, C) image-teacher softmax probabilities.
        pts_probs: (B, C) point-teacher softmax probabilities.
        threshold: confidence threshold of the winning modality (``mode='joint'``).
        point_weight: multiplier of the point score before the comparison and the threshold (``'joint'``).
        mode: ``'joint'`` or ``'separate'``.
        img_threshold / pts_threshold: per-modality thresholds for ``'separate'`` (default ``threshold``).

    Returns:
        dict with ``img_labels``, ``pts_labels`` (B,) long, ``img_mask``, ``pts_mask`` (B,) bool (True = use the
        sample in that student's pseudo-label loss), ``img_score``, ``pts_score`` (B,) (point score already
        weighted in ``'joint'`` mode) and ``from_points`` (B,) bool (``'joint'``: the point teacher won).
    """
    assert img_probs.shape == pts_probs.shape and img_probs.dim() == 2, (img_probs.shape, pts_probs.shape)
    img_score, img_arg = img_probs.max(dim=1)
    pts_score, pts_arg = pts_probs.max(dim=1)
    if mode == 'joint':
        pts_score = pts_score * point_weight
        from_points = pts_score > img_score
        score = torch.where(from_points, pts_score, img_score)
        labels = torch.where(from_points, pts_arg, img_arg)
        mask = score > threshold
        return dict(img_labels=labels, pts_labels=labels.clone(), img_mask=mask, pts_mask=mask.clone(),
                    img_score=img_score, pts_score=pts_score, from_points=from_points)
    if mode == 'separate':
        t_img = threshold if img_threshold is None else img_threshold
        t_pts = threshold if pts_threshold is None else pts_threshold
        return dict(img_labels=img_arg, pts_labels=pts_arg, img_mask=img_score > t_img,
                    pts_mask=pts_score > t_pts, img_score=img_score, pts_score=pts_score,
                    from_points=torch.zeros_like(img_arg, dtype=torch.bool))
    raise ValueError(f'unknown pseudo-label mode {mode!r} (joint | separate)')
