"""Regional contrast on a sampled subset of pixels, the Table 8 "ReCo" baseline of Method B-seg.

After Liu et al. 2022, "Bootstrapping Semantic Segmentation with Regional Contrast" (ReCo); our own code.
Each labeled pixel embedding is a candidate query. Per class c present in the batch, ``num_queries`` queries
are drawn (with replacement) among the *hard* pixels of c (low prediction confidence) when there are any, else
among all pixels of c. Each query's positive key is the class mean m_c of the (normalised) embeddings of c;
its ``num_negatives`` negative keys are pixels of other classes, the class of each negative drawn with
probability softmax_j(K(m_c, m_j)/τ) over the other present classes j, so classes that the representation
still confuses with c supply more negatives. Keys are detached; gradients reach the queries only. The cost is
O(sampled queries × negatives × D), never O(pixels²).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.data.labels import downsample_labels
from marsvision.losses.functional import check_temperature


def contrast_queries(queries: Tensor, positive_keys: Tensor, negative_keys: Tensor, temperature: float) -> Tensor:
    """InfoNCE of each query against its positive key and its negative keys, averaged over queries.

    With K(u, v) = uᵀv / (‖u‖ ‖v‖), for query q_i with positive key k_i⁺ and negatives k_ij⁻::

        L = − mean_i log( exp(K(q_i, k_i⁺)/τ) / (exp(K(q_i, k_i⁺)/τ) + Σ_j exp(K(q_i, k_ij⁻)/τ)) )

    Args:
        queries: (Q, D), gradients flow.
        positive_keys: (Q, D).
        negative_keys: (Q, M, D).
        temperature: τ > 0 (ReCo: 0.5).

    Returns:
        Scalar loss; 0 attached to ``queries`` when Q = 0.

    Raises:
        ValueError: on inconsistent shapes or τ ≤ 0.
    """
    check_temperature(temperature)
    if (
        queries.dim() != 2
        or positive_keys.shape != queries.shape
        or negative_keys.dim() != 3
        or negative_keys.shape[0] != queries.shape[0]
        or negative_keys.shape[2] != queries.shape[1]
    ):
        raise ValueError(
            "expected queries (Q, D), positive_keys (Q, D), negative_keys (Q, M, D); got "
            f"{tuple(queries.shape)}, {tuple(positive_keys.shape)}, {tuple(negative_keys.shape)}"
        )
    if len(queries) == 0:
        return queries.sum() * 0.0
    q = F.normalize(queries, dim=1)
    positive = (q * F.normalize(positive_keys, dim=1)).sum(1, keepdim=True)  # (Q, 1)
    negative = torch.einsum("qd,qmd->qm", q, F.normalize(negative_keys, dim=2))  # (Q, M)
    logits = torch.cat([positive, negative], dim=1) / temperature  # (Q, 1 + M), the positive in column 0
    return torch.logsumexp(logits, dim=1).mean() - logits[:, 0].mean()


def sample_regional_contrast(
    features: Tensor,
    labels: Tensor,
    hard: Tensor | None = None,
    *,
    num_classes: int,
    temperature: float = 0.5,
    num_queries: int = 256,
    num_negatives: int = 512,
    ignore_index: int = IGNORE_INDEX,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Draw the queries, their classes and their negative keys (the sampling rule of the module docstring).

    Args:
        features: (L, D) pixel embeddings (only used, detached, for the class means).
        labels: (L,) int, ``ignore_index`` pixels take no part.
        hard: (L,) bool, the preferred query candidates (e.g. prediction confidence below a threshold).
        num_classes: C.
        temperature: τ of the class-relation softmax that picks the negatives' classes.
        num_queries: queries per present class.
        num_negatives: M, negative keys per query.
        ignore_index: label value taking no part.
        generator: CPU generator for the draws (the draws happen on the CPU).

    Returns:
        ``(query_index (Q,), query_class (Q,), negative_index (Q, M))``, indices into the L pixels; Q = 0 when
        fewer than two classes are present (no negative to contrast with).
    """
    labels = labels.reshape(-1).long().cpu()
    empty = torch.zeros(0, dtype=torch.long)
    valid = labels != ignore_index
    if bool(((labels < 0) | (labels >= num_classes))[valid].any()):
        raise ValueError(f"labels must lie in [0, {num_classes}) or equal {ignore_index}")
    target = labels.clamp(0, num_classes - 1)
    counts = torch.bincount(target[valid], minlength=num_classes)  # (C,)
    present = torch.nonzero(counts > 0).flatten()
    if len(present) < 2:
        return empty, empty, empty.view(0, num_negatives)
    means = class_means(features.detach().float(), labels, num_classes, ignore_index).cpu()  # (C, D)
    relation = means @ means.t() / temperature  # (C, C), cosine of unit-normalised means
    # pixels grouped by class: class j's pixels are by_class[start[j] : start[j] + counts[j]]
    by_class = torch.nonzero(valid).flatten()
    by_class = by_class[torch.argsort(target[by_class], stable=True)]
    start = torch.cumsum(counts, 0) - counts
    hard_mask = valid if hard is None else valid & hard.reshape(-1).bool().cpu()
    queries, query_classes, negatives = [], [], []
    for c in present.tolist():
        of_class = valid & (target == c)
        candidates = torch.nonzero(of_class & hard_mask).flatten()
        if len(candidates) == 0:
            candidates = torch.nonzero(of_class).flatten()
        picked = candidates[torch.randint(len(candidates), (num_queries,), generator=generator)]
        others = present[present != c]
        weights = relation[c, others].softmax(0)  # (P - 1,)
        negative_class = others[torch.multinomial(weights, num_queries * num_negatives, True, generator=generator)]
        offset = (torch.rand(len(negative_class), generator=generator) * counts[negative_class]).long()
        offset = torch.minimum(offset, counts[negative_class] - 1)
        queries.append(picked)
        query_classes.append(torch.full_like(picked, c))
        negatives.append(by_class[start[negative_class] + offset].view(num_queries, num_negatives))
    return torch.cat(queries), torch.cat(query_classes), torch.cat(negatives)


def class_means(features: Tensor, labels: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """(C, D) unit-normalised mean of the unit-normalised features of each class (zeros for absent classes)."""
    labels = labels.reshape(-1).to(features.device)
    valid = labels != ignore_index
    f = F.normalize(features[valid], dim=1)
    sums = torch.zeros(num_classes, features.shape[1], dtype=f.dtype, device=f.device)
    sums.index_add_(0, labels[valid].long(), f)
    return F.normalize(sums, dim=1)


def regional_contrast_loss(
    features: Tensor,
    labels: Tensor,
    hard: Tensor | None = None,
    *,
    num_classes: int,
    temperature: float = 0.5,
    num_queries: int = 256,
    num_negatives: int = 512,
    ignore_index: int = IGNORE_INDEX,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Regional contrast (ReCo-style): :func:`contrast_queries` on the pixels :func:`sample_regional_contrast` draws.

    For the sampled queries q_i of class y_i, the positive key is the class mean m̄_{y_i} (detached) and the
    negatives k_ij⁻ (detached) are pixels of other classes::

        L = − mean_i log( exp(K(q_i, m̄_{y_i})/τ) / (exp(K(q_i, m̄_{y_i})/τ) + Σ_{j=1..M} exp(K(q_i, k_ij⁻)/τ)) )

    Values as we read Liu et al. 2022: τ = 0.5, 256 queries per class, M = 512 negative keys per query.

    Args:
        features: (L, D) pixel embeddings; gradients flow to the sampled queries.
        labels: (L,) int labels, ``ignore_index`` ignored.
        hard: (L,) bool, preferred query candidates (None: all labeled pixels).
        num_classes: C.
        temperature: τ > 0.
        num_queries: queries per present class.
        num_negatives: M, negative keys per query.
        ignore_index: label value taking no part.
        generator: CPU generator for the draws.

    Returns:
        Scalar loss; exactly 0, attached to ``features`` and never NaN, when fewer than two classes are present.

    Raises:
        ValueError: on wrong shapes, τ ≤ 0, non-positive counts, or labels outside [0, C) other than ignore.
    """
    check_temperature(temperature)
    if num_queries < 1 or num_negatives < 1 or num_classes < 1:
        raise ValueError("num_classes, num_queries and num_negatives must be positive")
    if features.dim() != 2 or labels.numel() != features.shape[0]:
        raise ValueError(
            f"expected features (L, D) and labels (L,), got {tuple(features.shape)}, {tuple(labels.shape)}"
        )
    query_index, query_class, negative_index = sample_regional_contrast(
        features,
        labels,
        hard,
        num_classes=num_classes,
        temperature=temperature,
        num_queries=num_queries,
        num_negatives=num_negatives,
        ignore_index=ignore_index,
        generator=generator,
    )
    if len(query_index) == 0:
        return features.sum() * 0.0
    device = features.device
    means = class_means(features.detach(), labels, num_classes, ignore_index)  # (C, D)
    return contrast_queries(
        features[query_index.to(device)],
        means[query_class.to(device)],
        features.detach()[negative_index.to(device)],
        temperature,
    )


class RegionalContrastLoss(nn.Module):
    """:func:`regional_contrast_loss` on embedding maps: labels downsampled nearest to the embedding size.

    ``forward(features (N, D, h, w), labels (N, H, W), hard (N, h, w) or None)`` → scalar.

    Args:
        num_classes: C.
        temperature: τ (0.5 in ReCo).
        num_queries: queries per present class (256 in ReCo).
        num_negatives: negative keys per query (512 in ReCo).
        ignore_index: label value taking no part.

    Raises:
        ValueError: if τ ≤ 0 or a count is not positive.
    """

    def __init__(
        self,
        num_classes: int,
        temperature: float = 0.5,
        num_queries: int = 256,
        num_negatives: int = 512,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        check_temperature(temperature)
        if min(num_classes, num_queries, num_negatives) < 1:
            raise ValueError("num_classes, num_queries and num_negatives must be positive")
        self.num_classes = num_classes
        self.temperature = temperature
        self.num_queries = num_queries
        self.num_negatives = num_negatives
        self.ignore_index = ignore_index

    def forward(
        self,
        features: Tensor,
        labels: Tensor,
        hard: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        if features.dim() != 4 or labels.dim() != 3:
            raise ValueError(f"expected features (N, D, h, w), labels (N, H, W); got {tuple(features.shape)}")
        n, d, h, w = features.shape
        small = downsample_labels(labels, (h, w))  # (N, h, w)
        return regional_contrast_loss(
            features.permute(0, 2, 3, 1).reshape(n * h * w, d),
            small.reshape(-1),
            None if hard is None else hard.reshape(-1),
            num_classes=self.num_classes,
            temperature=self.temperature,
            num_queries=self.num_queries,
            num_negatives=self.num_negatives,
            ignore_index=self.ignore_index,
            generator=generator,
        )
