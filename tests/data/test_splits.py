import itertools

import pytest

from marsvision.data.splits import (
    chronological_split,
    complement_indices,
    holdout_split,
    nested_fraction_indices,
    reshuffle_pool,
)

FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def test_fraction_sizes_match_the_paper():
    # SPEC.md: 1 % of 16,064 training images is 161 images; 100 % is all of them.
    assert len(nested_fraction_indices(16064, 0.01, seed=0)) == 161
    assert len(nested_fraction_indices(16064, 1.0, seed=0)) == 16064
    assert len(nested_fraction_indices(10, 0.01)) == 1  # at least one


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_fractions_are_nested(seed):
    subsets = [set(nested_fraction_indices(1000, f, seed=seed)) for f in FRACTIONS]
    for small, large in itertools.pairwise(subsets):
        assert small < large
    by_count = [set(nested_fraction_indices(1000, count=c, seed=seed)) for c in (5, 50, 500)]
    assert by_count[0] < by_count[1] < by_count[2]
    assert by_count[1] == set(nested_fraction_indices(1000, 0.05, seed=seed))


def test_fractions_depend_on_the_seed_and_are_reproducible():
    assert nested_fraction_indices(500, 0.1, seed=0) == nested_fraction_indices(500, 0.1, seed=0)
    assert nested_fraction_indices(500, 0.1, seed=0) != nested_fraction_indices(500, 0.1, seed=1)


def test_complement_is_the_unlabeled_rest():
    labeled = nested_fraction_indices(100, 0.2, seed=3)
    rest = complement_indices(100, labeled)
    assert len(rest) == 80 and not set(rest) & set(labeled)
    assert sorted(rest + labeled) == list(range(100))


def test_bad_fraction_arguments_raise():
    with pytest.raises(ValueError):
        nested_fraction_indices(10, 0.0)
    with pytest.raises(ValueError):
        nested_fraction_indices(10, 0.5, count=3)
    with pytest.raises(ValueError):
        nested_fraction_indices(10, count=11)


def test_holdout_is_disjoint_and_seeded():
    kept, held = holdout_split(50, 10, seed=2)
    assert len(held) == 10 and len(kept) == 40 and not set(kept) & set(held)
    assert holdout_split(50, 10, seed=2) == (kept, held)


def test_chronological_split_by_fraction_and_by_boundary():
    times = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 10.0]
    early, late = chronological_split(times, fraction=0.6)
    assert [times[i] for i in early] == [1, 2, 3, 4, 5, 6]
    assert [times[i] for i in late] == [7, 8, 9, 10]
    early, late = chronological_split(times, fraction=None, sol_boundary=3.0)
    assert sorted(times[i] for i in early) == [1, 2] and len(late) == 8


def test_reshuffle_keeps_sizes_and_covers_the_pool():
    train, val = reshuffle_pool(30, 12, seed=0)
    assert len(train) == 30 and len(val) == 12
    assert sorted(train + val) == list(range(42))
    assert train != list(range(30))
