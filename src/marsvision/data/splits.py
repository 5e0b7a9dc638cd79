"""Index splits: nested label fractions, hold-out sets, chronological splits, train+val reshuffling."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError(f"need at least one item, got n={n}")


def fraction_count(n: int, fraction: float) -> int:
    """Return ``round(fraction · n)`` (halves rounded up), at least 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, min(n, math.floor(fraction * n + 0.5)))


def nested_fraction_indices(
    n: int, fraction: float | None = None, count: int | None = None, seed: int = 0
) -> list[int]:
    """Return the sorted indices of a seeded label subset of ``n`` items (by ``fraction`` or ``count``).

    Subsets are nested: for one seed, the subset of a smaller fraction (or count) lies inside that of a larger
    one, because both are prefixes of the same seeded permutation (SPEC.md, Method A, label fractions).
    """
    _check_n(n)
    if (fraction is None) == (count is None):
        raise ValueError("give exactly one of fraction and count")
    if count is not None:
        if not 1 <= count <= n:
            raise ValueError(f"count must be in [1, {n}], got {count}")
        size = count
    else:
        assert fraction is not None
        size = fraction_count(n, fraction)
    permutation = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in permutation[:size])


def complement_indices(n: int, indices: Sequence[int]) -> list[int]:
    """Return the sorted indices of ``range(n)`` not in ``indices`` (e.g. the unlabeled remainder)."""
    chosen = set(indices)
    return [i for i in range(n) if i not in chosen]


def holdout_split(n: int, count: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """Return ``(kept, held_out)`` sorted index lists with ``count`` items held out at random (seeded)."""
    _check_n(n)
    if not 0 <= count < n:
        raise ValueError(f"count must be in [0, {n - 1}], got {count}")
    # A different stream from the label fractions, so hold-outs do not follow the fraction prefixes.
    permutation = np.random.default_rng([seed, 1]).permutation(n)
    held = sorted(int(i) for i in permutation[:count])
    return complement_indices(n, held), held


def chronological_split(
    times: Sequence[float], fraction: float | None = 0.6, sol_boundary: float | None = None
) -> tuple[list[int], list[int]]:
    """Return ``(early, late)`` indices of items ordered by acquisition time.

    By ``fraction``: the first ``round(fraction · n)`` items in time order are early (ties keep input order);
    paper 002 uses the first 60 %. By ``sol_boundary``: items with time < boundary are early. Both lists
    are in time order.
    """
    if sol_boundary is not None:
        order = sorted(range(len(times)), key=lambda i: (times[i], i))
        return [i for i in order if times[i] < sol_boundary], [i for i in order if times[i] >= sol_boundary]
    if fraction is None:
        raise ValueError("give fraction or sol_boundary")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    order = sorted(range(len(times)), key=lambda i: (times[i], i))
    cut = math.floor(fraction * len(order) + 0.5)
    return order[:cut], order[cut:]


def reshuffle_pool(train_size: int, val_size: int, seed: int) -> tuple[list[int], list[int]]:
    """Return new ``(train, val)`` positions in the pool ``train + val``, keeping both sizes (paper 002)."""
    permutation = np.random.default_rng(seed).permutation(train_size + val_size)
    return [int(i) for i in permutation[:train_size]], [int(i) for i in permutation[train_size:]]
