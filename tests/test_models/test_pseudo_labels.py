"""Joint / separate pseudo-label rule of Cross-MoST on hand-made score tables."""
import pytest
import torch

from mmxmodal.models.pseudo_labels import align_distribution, joint_pseudo_labels

# 4 samples, 3 classes. Row maxima: image 0.7, 0.4, 0.5, 0.9; points 0.6, 0.8, 0.45, 0.4.
IMG = torch.tensor([[0.7, 0.2, 0.1],
                    [0.4, 0.3, 0.3],
                    [0.25, 0.25, 0.5],
                    [0.05, 0.9, 0.05]])
PTS = torch.tensor([[0.1, 0.6, 0.3],
                    [0.1, 0.1, 0.8],
                    [0.45, 0.1, 0.45],
                    [0.2, 0.4, 0.4]])


def test_joint_more_confident_modality_labels_both():
    out = joint_pseudo_labels(IMG, PTS, threshold=0.55, point_weight=1.0, mode='joint')
    # winners: img (0.7), pts (0.8), img (0.5 > 0.45), img (0.9)
    assert out['from_points'].tolist() == [False, True, False, False]
    assert out['img_labels'].tolist() == [0, 2, 2, 1]
    assert out['pts_labels'].tolist() == [0, 2, 2, 1]
    # scores 0.7, 0.8, 0.5, 0.9 against 0.55
    assert out['img_mask'].tolist() == [True, True, False, True]
    assert out['pts_mask'].tolist() == [True, True, False, True]


def test_joint_point_weight_changes_the_winner_and_the_threshold():
    out = joint_pseudo_labels(IMG, PTS, threshold=0.55, point_weight=0.5, mode='joint')
    # weighted point scores 0.3, 0.4, 0.225, 0.2 -> the image wins everywhere
    assert out['from_points'].tolist() == [False, False, False, False]
    assert out['img_labels'].tolist() == [0, 0, 2, 1]
    assert out['img_mask'].tolist() == [True, False, False, True]
    assert torch.allclose(out['pts_score'], torch.tensor([0.3, 0.4, 0.225, 0.2]))
    out = joint_pseudo_labels(IMG, PTS, threshold=0.55, point_weight=1.5, mode='joint')
    # weighted 0.9, 1.2, 0.675, 0.6 -> points win rows 0-2
    assert out['from_points'].tolist() == [True, True, True, False]
    assert out['pts_labels'].tolist() == [1, 2, 0, 1]  # row 2: tie 0.45/0.45 -> first index
    assert out['pts_mask'].tolist() == [True, True, True, True]


def test_separate_thresholds():
    out = joint_pseudo_labels(IMG, PTS, mode='separate', img_threshold=0.6, pts_threshold=0.5)
    assert out['img_labels'].tolist() == [0, 0, 2, 1]
    assert out['pts_labels'].tolist() == [1, 2, 0, 1]
    assert out['img_mask'].tolist() == [True, False, False, True]
    assert out['pts_mask'].tolist() == [True, True, False, False]
    same = joint_pseudo_labels(IMG, PTS, mode='separate', threshold=0.45)
    assert same['img_mask'].tolist() == [True, False, True, True]
    assert same['pts_mask'].tolist() == [True, True, False, False]  # 0.45 does not pass 0.45


def test_bad_mode_and_shapes():
    with pytest.raises(ValueError):
        joint_pseudo_labels(IMG, PTS, mode='nope')
    with pytest.raises(AssertionError):
        joint_pseudo_labels(IMG, PTS[:2])


def test_distribution_alignment_hand_computed():
    p = torch.tensor([[0.6, 0.3, 0.1],
                      [0.5, 0.1, 0.4]])
    # the teacher has been predicting class 0 half of the time: it loses mass to the others
    mean = torch.tensor([0.5, 0.25, 0.25])
    q = align_distribution(p, mean)
    r0 = torch.tensor([0.6 / 0.5, 0.3 / 0.25, 0.1 / 0.25])
    r1 = torch.tensor([0.5 / 0.5, 0.1 / 0.25, 0.4 / 0.25])
    torch.testing.assert_close(q, torch.stack([r0 / r0.sum(), r1 / r1.sum()]))
    assert q[1].argmax() == 2 and p[1].argmax() == 0  # the over-predicted class gives the sample away
    torch.testing.assert_close(align_distribution(p, torch.full((3,), 1 / 3)), p)  # uniform: unchanged
    assert align_distribution(p[:0], mean).shape == (0, 3)


def test_crossmost_dist_align_tracks_the_teacher_means():
    from mmxmodal.models.algorithms.crossmost import CrossMoST
    m = CrossMoST.__new__(CrossMoST)
    torch.nn.Module.__init__(m)
    m.dist_align = 0.5
    m.register_buffer('img_prob_mean', torch.full((2,), 0.5))
    m.register_buffer('pts_prob_mean', torch.full((2,), 0.5))
    p_img = torch.tensor([[0.9, 0.1], [0.7, 0.3]])
    p_pts = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    a_img, a_pts = m._align(p_img, p_pts)
    torch.testing.assert_close(m.img_prob_mean, torch.tensor([0.65, 0.35]))  # 0.5 * 0.5 + 0.5 * 0.8
    torch.testing.assert_close(a_pts, p_pts)
    torch.testing.assert_close(a_img, align_distribution(p_img, torch.tensor([0.65, 0.35])))
