"""S4L's pretext tasks: rotated copies, jigsaw tiles, the permutation set and the permutation head."""

from __future__ import annotations

import itertools

import pytest
import torch

from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.jigsaw import JigsawHead, jigsaw_patches, maximal_hamming_permutations
from marsvision.training.registry import method_class
from marsvision.training.s4l import rotated_copies


def test_rotated_copies_are_quarter_turns_in_order() -> None:
    image = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    copies, rotations = rotated_copies(torch.cat([image, image + 10]))
    assert rotations.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    # counter-clockwise quarter turns of [[1, 2], [3, 4]]
    expected = [[[1, 2], [3, 4]], [[2, 4], [1, 3]], [[4, 3], [2, 1]], [[3, 1], [4, 2]]]
    assert copies[:4, 0].tolist() == expected
    assert (copies[4:, 0] - 10).tolist() == expected
    with pytest.raises(ValueError):
        rotated_copies(torch.zeros(1, 1, 2, 3))


def test_permutation_set_is_deterministic_distinct_and_far_apart() -> None:
    permutations = maximal_hamming_permutations(100)
    assert permutations.shape == (100, 9)
    assert permutations[0].tolist() == list(range(9))
    assert all(sorted(row) == list(range(9)) for row in permutations.tolist())
    distances = (permutations.unsqueeze(0) != permutations.unsqueeze(1)).sum(-1)
    off_diagonal = distances[~torch.eye(100, dtype=torch.bool)]
    assert off_diagonal.min() >= 2  # distinct, and never just one swap apart
    # the greedy rule: the second permutation is as far from the identity as a permutation can be (9)
    assert distances[0, 1] == 9
    # and each later one is at least as far from the earlier ones as any unchosen permutation (checked for the 3rd)
    chosen = permutations[:2]
    best = max(
        min(sum(a != b for a, b in zip(p, c, strict=True)) for c in chosen.tolist())
        for p in itertools.islice(itertools.permutations(range(9)), 5000)
    )
    assert min(distances[2, :2]) >= best


def test_jigsaw_tiles_come_from_their_cells() -> None:
    size, fraction = 12, 0.5  # cells of 4 pixels, tiles of 2
    rows = torch.arange(size).view(size, 1).expand(size, size)
    columns = torch.arange(size).view(1, size).expand(size, size)
    images = torch.stack([rows, columns]).float().unsqueeze(0).repeat(3, 1, 1, 1)  # (3, 2, 12, 12)
    tiles = jigsaw_patches(images, fraction, torch.Generator().manual_seed(0))
    assert tiles.shape == (3, 9, 2, 2, 2)
    for k, (r, c) in enumerate(itertools.product(range(3), range(3))):
        assert tiles[:, k, 0].min() >= 4 * r and tiles[:, k, 0].max() < 4 * r + 4
        assert tiles[:, k, 1].min() >= 4 * c and tiles[:, k, 1].max() < 4 * c + 4
    with pytest.raises(ValueError):
        jigsaw_patches(torch.zeros(1, 1, 12, 9), 0.5, torch.Generator())


def test_jigsaw_head_arranges_tiles_in_permutation_order() -> None:
    head = JigsawHead(feature_dim=1, num_permutations=5, embedding_dim=1, hidden_dim=4).eval()
    torch.nn.init.ones_(head.embed.weight)
    torch.nn.init.zeros_(head.embed.bias)
    seen = []
    head.classify.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    tile_features = torch.arange(18.0).view(2, 9, 1)  # image k's tile t has feature 9k + t
    permutations = torch.stack([torch.arange(9), torch.arange(8, -1, -1)]).expand(2, -1, -1)  # identity, reversed
    assert head(tile_features, permutations).shape == (4, 5)
    arranged = seen[0]
    assert arranged[0].tolist() == list(range(9)) and arranged[1].tolist() == list(range(8, -1, -1))
    assert arranged[2].tolist() == list(range(9, 18)) and arranged[3].tolist() == list(range(17, 8, -1))


def test_s4l_methods_draw_labeled_and_unlabeled_images() -> None:
    for name in ("cls-s4l-rotation", "cls-s4l-jigsaw"):
        assert method_class(name).streams == ("labeled", "unlabeled")
    config = load_config(None, ["model.encoder=r18_0.25x_sk0", "clsbaseline.jigsaw_permutations_per_image=101"])
    with pytest.raises(ValueError, match="jigsaw_permutations_per_image"):
        method_class("cls-s4l-jigsaw")(config, ClassInfo(["a", "b"]))
