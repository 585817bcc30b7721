"""SimIPU's contrastive terms on sampled positive pairs: point-point (two views) and point-pixel.

Both are :func:`mmxmodal.models.losses.info_nce.info_nce` on at most ``max_pairs`` sampled positives per
process: row ``i`` of ``query`` and row ``i`` of ``key`` are the same physical point (in two views, or in the
LiDAR scan and an image), every other sampled key (of every process when ``gather_distributed``) is a negative.
The logits are (max_pairs x world * max_pairs), optionally in recomputed row chunks (``chunk_size``), so memory
is bounded whatever the number of candidate pairs. With no positives the loss is an exact 0 that still has a
gradient (and joins the collectives), and the accuracy is 0.
"""
from typing import Optional, Tuple

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from .info_nce import info_nce


def sample_pair_indices(n: int, max_pairs: Optional[int], device: torch.device = None,
                        generator: Optional[torch.Generator] = None) -> Tensor:
    """Indices of at most ``max_pairs`` of ``n`` candidate pairs, uniformly without replacement (int64)."""
    if max_pairs is None or n <= max_pairs:
        return torch.arange(n, device=device)
    perm = torch.randperm(n, generator=generator, device='cpu' if generator is not None else device)
    return perm[:max_pairs].to(device)


def sampled_info_nce(query: Tensor,
                     key: Tensor,
                     max_pairs: Optional[int] = 4096,
                     temperature: float = 0.07,
                     gather_distributed: bool = False,
                     chunk_size: Optional[int] = None,
                     symmetric: bool = False,
                     generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """InfoNCE on at most ``max_pairs`` rows sampled from the (N, D) positive pairs ``(query[i], key[i])``.

    Returns:
        (loss scalar, top-1 accuracy of the positive among all keys, no gradient).
    """
    idx = sample_pair_indices(query.shape[0], max_pairs, query.device, generator)
    return info_nce(query[idx], key[idx], temperature=temperature, gather_distributed=gather_distributed,
                    symmetric=symmetric, chunk_size=chunk_size, return_accuracy=True)


@MODELS.register_module()
class SampledInfoNCELoss(nn.Module):
    """Module form of :func:`sampled_info_nce`: returns ``(loss_weight * loss, accuracy)``.

    Args:
        temperature: softmax temperature (SimIPU: 0.07).
        max_pairs: positives sampled per process and step (None = all; memory grows quadratically).
        chunk_size: row chunk of the recomputed logits (None = one block).
        gather_distributed: negatives from all processes, with gradients.
        symmetric: average query->key and key->query.
        loss_weight: multiplier of the loss.
    """

    def __init__(self,
                 temperature: float = 0.07,
                 max_pairs: Optional[int] = 4096,
                 chunk_size: Optional[int] = None,
                 gather_distributed: bool = True,
                 symmetric: bool = False,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if max_pairs is not None and max_pairs < 1:
            raise ValueError(f'max_pairs must be >= 1 or None, got {max_pairs}')
        self.temperature = temperature
        self.max_pairs = max_pairs
        self.chunk_size = chunk_size
        self.gather_distributed = gather_distributed
        self.symmetric = symmetric
        self.loss_weight = loss_weight

    def forward(self, query: Tensor, key: Tensor) -> Tuple[Tensor, Tensor]:
        """query, key: (N, D) positive pairs row by row. Returns (weighted loss, accuracy)."""
        loss, acc = sampled_info_nce(query, key, self.max_pairs, self.temperature, self.gather_distributed,
                                     self.chunk_size, self.symmetric)
        return self.loss_weight * loss, acc
