"""Contrastive losses: NT-Xent (SimCLR, CrossPoint) and row-wise InfoNCE (SimIPU, alignment).

Both take plain tensors, use ``log_softmax`` (log-sum-exp) for stability, return a zero that still has a gradient
when the batch is empty, and can gather keys from all processes with gradients (``gather_distributed=True``).

Distributed semantics: every process uses its own rows as queries and the keys of *all* processes as the
candidate set, and normalises by ``global rows / world size``. After DDP averages the parameter gradients, a run
on W processes therefore optimises exactly the mean loss of one process that sees the concatenated batch, also
when processes hold different numbers of rows (a process with no rows still joins the collectives).
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mmdet3d.registry import MODELS
from mmxmodal.utils.dist import gather_sizes, gather_with_grad, get_world_size, is_distributed


def _zero(*tensors: Tensor) -> Tensor:
    """A scalar 0 connected to the graph of ``tensors`` (so backward works on empty batches)."""
    return sum(t.sum() * 0.0 for t in tensors)


def _normaliser(n_local: int, gather: bool, device: torch.device) -> float:
    """Divisor that turns a local sum into this process's share of the global mean."""
    if gather and is_distributed():
        return sum(gather_sizes(n_local, device)) / get_world_size()
    return float(n_local)


def _row_ce(q: Tensor, keys: Tensor, pos: Tensor, temperature: float, self_idx: Optional[Tensor]) -> Tensor:
    """Summed cross-entropy of rows ``q`` (n, D) against ``keys`` (M, D) with positive column ``pos`` (n,)."""
    logits = q @ keys.t() / temperature
    if self_idx is not None:
        logits = logits.scatter(1, self_idx[:, None], float('-inf'))
    return -logits.log_softmax(dim=1).gather(1, pos[:, None]).sum()


def _ce_chunked(q: Tensor, keys: Tensor, pos: Tensor, temperature: float, self_idx: Optional[Tensor],
                chunk_size: Optional[int]) -> Tensor:
    """``_row_ce`` over row chunks; with gradients each chunk is recomputed in backward, so the peak memory is
    O(chunk_size x M) instead of O(n x M)."""
    if chunk_size is None or q.shape[0] <= chunk_size:
        return _row_ce(q, keys, pos, temperature, self_idx)
    total = q.new_zeros(())
    for s in range(0, q.shape[0], chunk_size):
        sl = slice(s, s + chunk_size)
        si = None if self_idx is None else self_idx[sl]
        if torch.is_grad_enabled() and (q.requires_grad or keys.requires_grad):
            total = total + checkpoint(_row_ce, q[sl], keys, pos[sl], temperature, si, use_reentrant=False)
        else:
            total = total + _row_ce(q[sl], keys, pos[sl], temperature, si)
    return total


@torch.no_grad()
def _top1(q: Tensor, keys: Tensor, pos: Tensor, self_idx: Optional[Tensor], chunk_size: int = 4096) -> Tensor:
    """Fraction of rows whose positive scores highest among all keys (float scalar)."""
    if q.shape[0] == 0:
        return q.new_zeros(())
    hits = 0
    for s in range(0, q.shape[0], chunk_size):
        logits = q[s:s + chunk_size] @ keys.t()
        if self_idx is not None:
            logits.scatter_(1, self_idx[s:s + chunk_size, None], float('-inf'))
        hits += (logits.argmax(1) == pos[s:s + chunk_size]).sum()
    return hits.float() / q.shape[0]


def info_nce(query: Tensor,
             key: Tensor,
             temperature: float = 0.07,
             gather_distributed: bool = False,
             normalize: bool = True,
             symmetric: bool = False,
             chunk_size: Optional[int] = None,
             return_accuracy: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Row-wise InfoNCE: ``key[i]`` is the positive of ``query[i]``, every other key is a negative.

    Args:
        query: (N, D) embeddings (e.g. point features of view 1, or point features at valid projections).
        key: (N, D) embeddings paired row by row with ``query`` (view 2 / image features at those pixels).
        temperature: softmax temperature (SimIPU: 0.07).
        gather_distributed: use the keys of all processes as negatives, with gradients.
        normalize: L2-normalise both inputs (cosine similarity).
        symmetric: average the query->key and key->query directions (CLIP-style).
        chunk_size: compute the loss in row chunks with recomputation to bound memory (exact, slower).
        return_accuracy: also return the top-1 accuracy of the positive among all keys (no gradient).

    Returns:
        Scalar loss (mean over the global set of rows), and the accuracy if asked.
    """
    if query.shape != key.shape or query.dim() != 2:
        raise ValueError(f'info_nce expects query and key of equal shape (N, D), got {tuple(query.shape)} '
                         f'and {tuple(key.shape)}')
    if normalize:
        query, key = F.normalize(query, dim=1), F.normalize(key, dim=1)
    n, d = query.shape
    # One collective for both tensors keeps the backward all-reduces in the same order on every process.
    both, offset = gather_with_grad(torch.cat([query, key], 1)) if gather_distributed else (
        torch.cat([query, key], 1), 0)
    all_q, all_k = both[:, :d], both[:, d:]
    directions = [(query, all_k), (key, all_q)] if symmetric else [(query, all_k)]
    # ``both.sum() * 0`` keeps every process in the backward collective even when it has no rows.
    loss, acc = _zero(query, key, both), query.new_zeros(())
    pos = torch.arange(n, device=query.device) + offset
    if n:
        for q, keys in directions:
            loss = loss + _ce_chunked(q, keys, pos, temperature, None, chunk_size)
            if return_accuracy:
                acc = acc + _top1(q, keys, pos, None, chunk_size or 4096)  # same memory bound as the loss
    norm = _normaliser(n, gather_distributed, query.device) * len(directions)
    loss = loss / norm if norm > 0 else loss
    if return_accuracy:
        return loss, acc / len(directions)
    return loss


def nt_xent(z1: Tensor,
            z2: Tensor,
            temperature: float = 0.1,
            gather_distributed: bool = False,
            normalize: bool = True,
            return_accuracy: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """NT-Xent of SimCLR / CrossPoint (lightly's ``NTXentLoss`` without memory bank).

    Each of the 2N embeddings has its partner in the other view as positive and the other 2N - 2 embeddings
    (2M - 2 with M gathered rows) as negatives; the loss is the mean over the 2N rows.

    Args:
        z1, z2: (N, D) embeddings of two views of the same N samples.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f'nt_xent expects two (N, D) tensors of equal shape, got {tuple(z1.shape)} and '
                         f'{tuple(z2.shape)}')
    if normalize:
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    n, d = z1.shape
    both, off = gather_with_grad(torch.cat([z1, z2], 1)) if gather_distributed else (torch.cat([z1, z2], 1), 0)
    a1, a2 = both[:, :d], both[:, d:]
    m = a1.shape[0]
    if m == 0:
        loss = _zero(z1, z2, both)
        return (loss, z1.new_zeros(())) if return_accuracy else loss
    keys = torch.cat([a1, a2], 0)  # (2M, D)
    q = torch.cat([z1, z2], 0)  # (2N, D)
    local = torch.arange(n, device=z1.device) + off
    self_idx = torch.cat([local, local + m])
    pos = torch.cat([local + m, local])
    loss = _zero(both) + (_row_ce(q, keys, pos, temperature, self_idx) if n else 0.0)
    norm = 2 * _normaliser(n, gather_distributed, z1.device)
    loss = loss / norm if norm > 0 else loss
    if return_accuracy:
        return loss, _top1(q, keys, pos, self_idx)
    return loss


@MODELS.register_module()
class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent`: ``loss_weight * nt_xent(z1, z2)``."""

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False, loss_weight: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = temperature
        self.gather_distributed = gather_distributed
        self.loss_weight = loss_weight

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return self.loss_weight * nt_xent(z1, z2, self.temperature, self.gather_distributed)


@MODELS.register_module()
class InfoNCELoss(nn.Module):
    """Module form of :func:`info_nce`: ``loss_weight * info_nce(query, key)``."""

    def __init__(self,
                 temperature: float = 0.07,
                 gather_distributed: bool = False,
                 symmetric: bool = False,
                 chunk_size: Optional[int] = None,
                 loss_weight: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = temperature
        self.gather_distributed = gather_distributed
        self.symmetric = symmetric
        self.chunk_size = chunk_size
        self.loss_weight = loss_weight

    def forward(self, query: Tensor, key: Tensor, return_accuracy: bool = False):
        out = info_nce(query, key, self.temperature, self.gather_distributed, symmetric=self.symmetric,
                       chunk_size=self.chunk_size, return_accuracy=return_accuracy)
        if return_accuracy:
            return self.loss_weight * out[0], out[1]
        return self.loss_weight * out
