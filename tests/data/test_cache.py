"""The disk cache of decoded, resized arrays."""

import os

import numpy as np
import pytest
import torch

from marsvision.data import ArrayCache, PairedFolder


def test_cached_items_equal_uncached_and_hit_on_second_read(synth_paired, tmp_path):
    cache_dir = tmp_path / "cache"
    plain = PairedFolder(synth_paired, image_size=32, preprocess="paper000")
    cached = PairedFolder(synth_paired, image_size=32, preprocess="paper000", cache_dir=cache_dir)
    for index in range(len(plain)):
        a, b = plain[index], cached[index]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    cache = cached._loader.cache
    assert cache is not None and cache.misses == 2 * len(plain) and cache.hits == 0
    files = list(cache_dir.rglob("*.npy"))
    assert len(files) == 2 * len(plain)
    again = PairedFolder(synth_paired, image_size=32, preprocess="paper000", cache_dir=cache_dir)
    assert torch.equal(again[3]["image"], plain[3]["image"])
    assert again._loader.cache.hits == 2  # image and label
    other = PairedFolder(synth_paired, image_size=16, cache_dir=cache_dir)
    other[3]
    assert other._loader.cache.misses == 2  # a different preprocessing is a different key


def test_key_changes_with_the_source_file(tmp_path):
    source = tmp_path / "a.bin"
    source.write_bytes(b"123")
    cache = ArrayCache(tmp_path / "cache")
    key = cache.key([source], "t")
    assert cache.key([source], "t") == key and cache.key([source], "u") != key
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache.key([source], "t") != key
    value = cache.get([source], "t", lambda: np.arange(4))
    assert np.array_equal(cache.get([source], "t", lambda: np.zeros(1)), value)


def test_cache_inside_the_dataset_is_refused(synth_paired):
    from marsvision.data import DatasetError

    with pytest.raises(DatasetError, match="inside the dataset folder"):
        PairedFolder(synth_paired, cache_dir=synth_paired / "images" / ".cache")
