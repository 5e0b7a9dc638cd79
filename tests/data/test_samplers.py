from collections import Counter

import pytest

from marsvision.data.samplers import ClassBalancedBatchSampler


def test_each_batch_holds_k_different_images_per_class():
    targets = [0] * 10 + [1] * 5 + [2] * 3 + [3] * 1
    sampler = ClassBalancedBatchSampler(targets, images_per_class=2, seed=0, num_batches=20)
    batches = list(sampler)
    assert len(batches) == 20
    for batch in batches:
        assert len(batch) == 8
        classes = [targets[i] for i in batch]
        assert Counter(classes) == {0: 2, 1: 2, 2: 2, 3: 2}
        assert classes == [0, 0, 1, 1, 2, 2, 3, 3]  # ordered class by class
        for c in (0, 1, 2):
            pair = batch[2 * c : 2 * c + 2]
            assert pair[0] != pair[1]
        assert batch[6] == batch[7] == 18  # the single image of class 3 repeats


def test_every_image_of_a_class_is_used_before_repeats():
    targets = [0] * 6 + [1] * 6
    sampler = ClassBalancedBatchSampler(targets, images_per_class=2, seed=1, num_batches=3)
    seen = Counter(i for batch in sampler for i in batch)
    assert set(seen) == set(range(12)) and set(seen.values()) == {1}


def test_msl_like_batch_is_24_classes_times_2_and_seeded():
    targets = [c for c in range(24) for _ in range(c + 1)]
    sampler = ClassBalancedBatchSampler(targets, images_per_class=2, seed=4)
    assert sampler.batch_size == 48
    assert len(sampler) == len(targets) // 48
    assert list(sampler) == list(ClassBalancedBatchSampler(targets, images_per_class=2, seed=4))
    sampler.set_epoch(1)
    assert list(sampler) != list(ClassBalancedBatchSampler(targets, images_per_class=2, seed=4))


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        ClassBalancedBatchSampler([], 2)
    with pytest.raises(ValueError):
        ClassBalancedBatchSampler([0, 1], 0)
