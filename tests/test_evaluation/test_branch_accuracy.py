"""BranchAccuracy reports per-branch top-1 accuracy."""
import torch
from mmengine.structures import BaseDataElement

from mmxmodal.evaluation import BranchAccuracy


def test_branch_accuracy_hand_computed():
    metric = BranchAccuracy()
    samples = []
    for gt, p, i, c in [(0, 0, 1, 0), (1, 1, 1, 1), (2, 0, 2, 2), (1, 2, 2, 2), (-1, 0, 0, 0)]:
        s = BaseDataElement(gt_label=torch.tensor(gt), pred_label_pts=torch.tensor(p),
                            pred_label_img=torch.tensor(i), pred_label_combined=torch.tensor(c))
        samples.append(s.to_dict())
    metric.process({}, samples)
    res = metric.compute_metrics(metric.results)
    # 4 labelled samples (gt -1 skipped): pts 2/4, img 2/4, combined 3/4
    assert res == {'pts_acc': 50.0, 'img_acc': 50.0, 'combined_acc': 75.0}
