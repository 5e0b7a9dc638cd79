"""SsCL's coupled branches: similarity co-calibration and the neighbour contrastive loss.

Zhang, Zhang, Qiu, Li, Xu, Tian, "Semi-supervised Contrastive Learning with Similarity Co-calibration", IEEE
TMM 2022 (arXiv 2105.07387); a Table 3 baseline of paper 002 (method B-cls). One backbone carries a classifier
(the cross-entropy branch, prediction p) and an L2-normalised embedding (the contrastive branch, keys k, queries
q), and on unlabeled images each branch feeds the other:

* co-calibration, contrastive → cross-entropy: the similarity of an unlabeled image's key k to the memory's
  labeled keys m_j (class distributions d_j, one-hot labels) spreads into a class distribution s that reweights
  the prediction p::

      a_j = exp(k·m_j / τ) / Σ_{j' ∈ L} exp(k·m_j' / τ),    s = Σ_{j ∈ L} a_j d_j,    p̂ = p ⊙ s / Σ_c p_c s_c

  Each class's share of s grows with its number of labeled entries (paper 002 §6.2 names this as SsCL's
  weakness on long-tailed data). With nothing labeled in the memory s is uniform and p̂ = p.
* neighbour contrast, cross-entropy → contrastive: the positives P_i of a query q_i are its own key and, when
  its calibrated prediction is confident, its ``num_neighbours`` nearest memory entries in the classifier's
  output space (largest p̂_iᵀ d_j; for one-hot d_j, entries of the query's pseudo class)::

      L_nn = (1/B) Σ_i −(1/|P_i|) Σ_{j ∈ P_i} log( exp(q_i·m_j / τ) / Σ_{j'} exp(q_i·m_j' / τ) )

  the denominator running over every memory entry. Without neighbours it is MoCo's InfoNCE.

SsCL's text beyond its abstract could not be read here, so its values are not known: τ = 0.2 (MoCo v2), 5
neighbours and the product form of the calibration are our reading (see ``clsbaseline.sscl_*``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.losses.functional import check_temperature


def _check_pairs(name: str, rows: Tensor, columns: Tensor) -> None:
    if rows.dim() != 2 or columns.dim() != 2 or rows.shape[1] != columns.shape[1]:
        raise ValueError(f"{name}: expected (B, D) and (J, D), got {tuple(rows.shape)} and {tuple(columns.shape)}")


def similarity_distribution(
    keys: Tensor, memory_keys: Tensor, memory_distributions: Tensor, temperature: float
) -> Tensor:
    """The class distribution s = Σ_j softmax_j(k·m_j / τ) d_j that the contrastive similarity gives each key.

    Args:
        keys: (B, D) embeddings of the images to calibrate (normalised here).
        memory_keys: (J, D) labeled memory keys (normalised here); J = 0 gives the uniform distribution.
        memory_distributions: (J, C) their class distributions (one-hot labels).
        temperature: τ > 0.

    Returns:
        (B, C), rows summing to 1, in float32 at least.

    Raises:
        ValueError: on τ ≤ 0 or mismatched shapes.
    """
    check_temperature(temperature)
    _check_pairs("similarity_distribution", keys, memory_keys)
    if memory_distributions.dim() != 2 or memory_distributions.shape[0] != memory_keys.shape[0]:
        raise ValueError(
            f"memory_distributions must be (J, C) with J = {memory_keys.shape[0]}, "
            f"got {tuple(memory_distributions.shape)}"
        )
    dtype = torch.promote_types(keys.dtype, torch.float32)
    num_classes = memory_distributions.shape[1]
    if memory_keys.shape[0] == 0:
        return keys.new_full((keys.shape[0], num_classes), 1.0 / num_classes, dtype=dtype)
    k = F.normalize(keys.to(dtype), dim=1)
    m = F.normalize(memory_keys.to(dtype), dim=1)
    weights = (k @ m.t() / temperature).softmax(dim=1)  # (B, J)
    return weights @ memory_distributions.to(dtype)


def co_calibrate(probabilities: Tensor, similarity: Tensor) -> Tensor:
    """p̂ = p ⊙ s / Σ_c p_c s_c: the prediction reweighted by the similarity distribution, renormalised.

    Args:
        probabilities: (B, C) the classifier's softmax p.
        similarity: (B, C) the distribution s of :func:`similarity_distribution`.

    Returns:
        (B, C); a row whose product is 0 everywhere (p and s with disjoint support) stays 0, i.e. not confident.

    Raises:
        ValueError: if the shapes differ or are not (B, C).
    """
    if probabilities.dim() != 2 or probabilities.shape != similarity.shape:
        raise ValueError(f"expected two (B, C) tensors, got {tuple(probabilities.shape)} and {tuple(similarity.shape)}")
    product = probabilities * similarity
    return product / product.sum(dim=1, keepdim=True).clamp(min=torch.finfo(product.dtype).tiny)


def neighbour_positives(
    query_distributions: Tensor, memory_distributions: Tensor, own: Tensor, num_neighbours: int, confident: Tensor
) -> Tensor:
    """P_i as a (B, J) mask: the own key of each query, plus its nearest entries by p̂_iᵀ d_j where confident.

    Args:
        query_distributions: (B, C) calibrated predictions p̂ of the queries.
        memory_distributions: (J, C) class distributions d_j of the memory entries.
        own: (B,) int64, the memory index of each query's own key.
        num_neighbours: entries added per confident query (at most J − 1); 0 adds none.
        confident: (B,) bool, the queries that take neighbours.

    Raises:
        ValueError: on mismatched shapes, a negative ``num_neighbours`` or an ``own`` index outside [0, J).
    """
    _check_pairs("neighbour_positives", query_distributions, memory_distributions)
    batch, entries = query_distributions.shape[0], memory_distributions.shape[0]
    if own.shape != (batch,) or confident.shape != (batch,):
        raise ValueError(f"own and confident must be ({batch},), got {tuple(own.shape)} and {tuple(confident.shape)}")
    if num_neighbours < 0:
        raise ValueError(f"num_neighbours must be ≥ 0, got {num_neighbours}")
    if batch and bool(((own < 0) | (own >= entries)).any()):
        raise ValueError(f"own indices must lie in [0, {entries})")
    positives = F.one_hot(own, entries).bool()  # (B, J)
    count = min(num_neighbours, entries - 1)
    if count == 0:
        return positives
    agreement = query_distributions.float() @ memory_distributions.float().t()  # (B, J)
    agreement = agreement.masked_fill(positives, float("-inf"))
    nearest = agreement.topk(count, dim=1).indices  # (B, count)
    neighbours = torch.zeros_like(positives).scatter_(1, nearest, True)
    return positives | (neighbours & confident.unsqueeze(1))


def neighbour_contrastive_loss(queries: Tensor, memory_keys: Tensor, positives: Tensor, temperature: float) -> Tensor:
    """L_nn of the module docstring: each query's mean −log-softmax over its positive memory entries.

    Args:
        queries: (B, D) query embeddings (normalised here; gradients flow through them).
        memory_keys: (J, D) keys (normalised here); the denominator runs over all of them.
        positives: (B, J) bool, at least one True per row.
        temperature: τ > 0.

    Returns:
        The scalar mean over queries, in float32 at least.

    Raises:
        ValueError: on τ ≤ 0, mismatched shapes, an empty batch or a query without positives.
    """
    check_temperature(temperature)
    _check_pairs("neighbour_contrastive_loss", queries, memory_keys)
    if queries.shape[0] == 0:
        raise ValueError("neighbour_contrastive_loss needs at least one query")
    if positives.shape != (queries.shape[0], memory_keys.shape[0]):
        raise ValueError(f"positives must be (B, J) = {(queries.shape[0], memory_keys.shape[0])}")
    if not bool(positives.any(dim=1).all()):
        raise ValueError("every query needs at least one positive key")
    dtype = torch.promote_types(queries.dtype, torch.float32)
    q = F.normalize(queries.to(dtype), dim=1)
    m = F.normalize(memory_keys.to(dtype), dim=1)
    log_prob = (q @ m.t() / temperature).log_softmax(dim=1)  # (B, J)
    per_query = -(log_prob * positives).sum(dim=1) / positives.sum(dim=1)
    return per_query.mean()


class NeighbourContrastiveLoss(nn.Module):
    """Module form of :func:`neighbour_contrastive_loss` with a fixed temperature.

    Args:
        temperature: τ (0.2, MoCo v2's; SsCL's value could not be read).

    Raises:
        ValueError: if ``temperature`` ≤ 0.
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)

    def forward(self, queries: Tensor, memory_keys: Tensor, positives: Tensor) -> Tensor:
        return neighbour_contrastive_loss(queries, memory_keys, positives, self.temperature)
