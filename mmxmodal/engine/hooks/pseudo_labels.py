"""Log the pseudo-label rate and (monitoring only) pseudo-label accuracy of a self-training model.

The model leaves per-iteration counts in ``model.pseudo_label_stats`` (a dict of floats, see
``CrossMoST._pseudo_label_stats``). Ground-truth labels, where the dataset has them, are only compared with the
pseudo-labels here; they never enter a loss. Per iteration the rates go to the message hub (``train/pl_*``, shown
by the logger hook); at the end of each epoch the epoch totals are logged and appended as one JSON line to
``<log_dir>/pseudo_labels.jsonl`` (``{"epoch": e, "counts": {...}, "pl_share_img": ..., ...}``, epochs from 1)
for tools that read the run.
"""
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet3d.registry import HOOKS


def pseudo_label_rates(stats: Dict[str, float]) -> Dict[str, float]:
    """Counts -> rates. Keys produced: ``pl_rate_img``, ``pl_rate_pts`` (accepted / samples), ``pl_from_pts``
    (share of samples where the point teacher is the more confident one, accepted or not); for the joint rule
    ``pl_share_img`` / ``pl_share_pts`` (share of the *accepted* pseudo-labels given by the 2D / 3D teacher) and,
    with labels, ``pl_acc_from_img`` / ``pl_acc_from_pts`` (their accuracy); when labelled samples were accepted,
    ``pl_acc_img``, ``pl_acc_pts`` (correct / accepted labelled); ``teacher_acc_*`` (argmax of each teacher)."""
    out = {}
    n = stats.get('num', 0.0)
    if n > 0:
        out['pl_rate_img'] = stats.get('img_accepted', 0.0) / n
        out['pl_rate_pts'] = stats.get('pts_accepted', 0.0) / n
        out['pl_from_pts'] = stats.get('from_pts', 0.0) / n
    # joint rule: share of the accepted pseudo-labels given by the 2D / the 3D teacher, and their accuracy
    acc_n = stats.get('accepted_from_img', 0.0) + stats.get('accepted_from_pts', 0.0)
    if 'accepted_from_img' in stats and n > 0:
        out['pl_share_img'] = stats['accepted_from_img'] / acc_n if acc_n > 0 else 0.0
        out['pl_share_pts'] = stats['accepted_from_pts'] / acc_n if acc_n > 0 else 0.0
    for m in ('img', 'pts'):
        if stats.get(f'from_{m}_labelled_accepted', 0.0) > 0:
            out[f'pl_acc_from_{m}'] = stats[f'from_{m}_correct'] / stats[f'from_{m}_labelled_accepted']
    for m in ('img', 'pts'):
        if stats.get(f'{m}_labelled_accepted', 0.0) > 0:
            out[f'pl_acc_{m}'] = stats[f'{m}_correct'] / stats[f'{m}_labelled_accepted']
    if stats.get('labelled', 0.0) > 0:
        out['teacher_acc_img'] = stats.get('teacher_img_correct', 0.0) / stats['labelled']
        out['teacher_acc_pts'] = stats.get('teacher_pts_correct', 0.0) / stats['labelled']
    return out


@HOOKS.register_module()
class PseudoLabelMonitorHook(Hook):
    """Pseudo-label rate / accuracy logging (per iteration to the message hub, per epoch to the logger)."""

    priority = 'BELOW_NORMAL'

    def __init__(self, stats_attr: str = 'pseudo_label_stats') -> None:
        self.stats_attr = stats_attr
        self.epoch_stats: Dict[str, float] = defaultdict(float)
        self._resumed_stats: Optional[Dict[str, float]] = None

    def before_train_epoch(self, runner) -> None:
        # after a mid-epoch --resume, continue the epoch totals saved with the checkpoint
        self.epoch_stats = defaultdict(float, self._resumed_stats or {})
        self._resumed_stats = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['pseudo_label_epoch_stats'] = {k: float(v) for k, v in self.epoch_stats.items()}

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._resumed_stats = dict(checkpoint.get('pseudo_label_epoch_stats') or {})

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        stats = getattr(model, self.stats_attr, None)
        if not stats:
            return
        for k, v in stats.items():
            self.epoch_stats[k] += float(v)
        for k, v in pseudo_label_rates(stats).items():
            runner.message_hub.update_scalar(f'train/{k}', v)

    def after_train_epoch(self, runner) -> None:
        rates = pseudo_label_rates(self.epoch_stats)
        if rates:
            msg = ', '.join(f'{k}: {v:.4f}' for k, v in rates.items())
            runner.logger.info(f'Epoch {runner.epoch + 1} pseudo-labels: {msg}')
            for k, v in rates.items():
                runner.message_hub.update_info(f'pseudo_labels/epoch_{k}', v)
            if runner.rank == 0:
                record = dict(epoch=runner.epoch + 1, counts=dict(self.epoch_stats), **rates)
                with open(osp.join(runner.log_dir, 'pseudo_labels.jsonl'), 'a') as f:
                    f.write(json.dumps(record) + '\n')
        self.epoch_stats = defaultdict(float)  # a checkpoint at the epoch end carries no partial totals
