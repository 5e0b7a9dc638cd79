"""The jigsaw puzzle pretext task (Noroozi & Favaro 2016), in the form Kolesnikov et al. 2019 train it.

An image is cut into a 3×3 grid of cells; from every cell a patch of ``patch_fraction`` of the cell side is
taken at a random place inside it (the gap keeps the network from matching edges). Each patch goes through
the backbone on its own and is embedded; the nine embeddings are concatenated in the order of one permutation
of a fixed set, and a head predicts which permutation it was (:class:`JigsawHead`). Since the backbone sees
each patch alone, permuting the embeddings is permuting the tiles, so one pass of the patches serves several
permutations per image (Kolesnikov et al.: 8 per image, drawn from a set of 100).

The permutation set follows Noroozi & Favaro's "maximal" selection: greedily, each new permutation is the one
whose smallest Hamming distance to those chosen so far is largest. The authors start from a random
permutation and break ties at random; here the start is the identity and ties go to the first permutation in
lexicographic order, so that the set is a pure function of its size.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor, nn

GRID = 3
"""Cells per side (Noroozi & Favaro 2016: 3 × 3)."""
TILES = GRID * GRID


@lru_cache(maxsize=4)
def maximal_hamming_permutations(count: int) -> Tensor:
    """``count`` permutations of the nine tiles, greedily maximising their smallest pairwise Hamming distance.

    Returns:
        (count, 9) int64; row 0 is the identity.

    Raises:
        ValueError: if ``count`` is not in [1, 9!].
    """
    every = np.array(list(itertools.permutations(range(TILES))), dtype=np.int8)  # (9!, 9), lexicographic
    if not 1 <= count <= len(every):
        raise ValueError(f"count must lie in [1, {len(every)}], got {count}")
    chosen = [0]
    nearest = (every != every[0]).sum(axis=1)  # (9!,) smallest distance to the chosen set
    for _ in range(count - 1):
        index = int(nearest.argmax())
        chosen.append(index)
        nearest = np.minimum(nearest, (every != every[index]).sum(axis=1))
    return torch.from_numpy(every[chosen].astype(np.int64))


def jigsaw_patches(images: Tensor, patch_fraction: float, generator: torch.Generator) -> Tensor:
    """The nine patches of every image, in reading order: (N, C, S, S) → (N, 9, C, P, P).

    The cell side is ⌊S/3⌋ and P = round(``patch_fraction`` · cell), each patch placed uniformly inside its cell.

    Raises:
        ValueError: if the images are not square or ``patch_fraction`` is not in (0, 1].
    """
    if not 0.0 < patch_fraction <= 1.0:
        raise ValueError(f"patch_fraction must lie in (0, 1], got {patch_fraction}")
    n, _, height, width = images.shape
    if height != width or height < GRID:
        raise ValueError(f"jigsaw needs square images of at least {GRID} pixels, got {(height, width)}")
    cell = height // GRID
    patch = max(1, round(patch_fraction * cell))
    offsets = torch.randint(cell - patch + 1, (n, TILES, 2), generator=generator).tolist()
    tiles = [
        torch.stack(
            [
                images[i, :, r * cell + dy : r * cell + dy + patch, c * cell + dx : c * cell + dx + patch]
                for (r, c), (dy, dx) in zip(itertools.product(range(GRID), range(GRID)), offsets[i], strict=True)
            ]
        )
        for i in range(n)
    ]
    return torch.stack(tiles)  # (N, 9, C, P, P)


class JigsawHead(nn.Module):
    """Per-tile embedding, then the permuted concatenation → permutation logits (Kolesnikov et al. 2019).

    Each tile's backbone features (F) are embedded linearly (E, their network's 1000-way output layer); the
    nine embeddings, concatenated in a permutation's order, go through AlexNet's fc7-fc8 as Kolesnikov et al.
    use it: linear (9E → hidden) → BatchNorm → ReLU → dropout ½ → linear (hidden → number of permutations).

    Args:
        feature_dim: F.
        num_permutations: the size of the permutation set (the classes).
        embedding_dim: E (Kolesnikov et al.: 1000).
        hidden_dim: width of fc7 (4096).
        dropout: dropout before the last layer (0.5).

    Raises:
        ValueError: if a size is not positive or dropout is outside [0, 1).
    """

    def __init__(
        self,
        feature_dim: int,
        num_permutations: int,
        embedding_dim: int = 1000,
        hidden_dim: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if min(feature_dim, num_permutations, embedding_dim, hidden_dim) < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError("sizes must be positive and dropout in [0, 1)")
        self.embed = nn.Linear(feature_dim, embedding_dim)
        self.classify = nn.Sequential(
            nn.Linear(TILES * embedding_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_permutations),
        )

    def forward(self, tile_features: Tensor, permutations: Tensor) -> Tensor:
        """(N, 9, F) tile features and (N, m, 9) permutations → (N·m, number of permutations) logits.

        Row k·m + j holds image k's tiles in the order of its j-th permutation.
        """
        n, tiles, _ = tile_features.shape
        embedded = self.embed(tile_features)  # (N, 9, E)
        order = permutations.reshape(n, -1)  # (N, m·9)
        arranged = embedded.gather(1, order.unsqueeze(2).expand(-1, -1, embedded.shape[2]))  # (N, m·9, E)
        logits: Tensor = self.classify(arranged.reshape(-1, tiles * embedded.shape[2]))
        return logits
