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


@pytest.fixture
def memory_cache():
    """The process's in-memory cache, counting from zero (tests/conftest.py turns it off after every test)."""
    from marsvision.data.cache import DECODED

    DECODED.hits = DECODED.misses = 0
    return DECODED


def test_memory_cache_serves_the_second_read_exactly_and_read_only(synth_paired, memory_cache):
    memory_cache.configure(2**20)
    first = PairedFolder(synth_paired, image_size=32)
    items = [first[i] for i in range(len(first))]
    assert memory_cache.misses == 2 * len(first) and memory_cache.hits == 0  # image and label of each
    again = PairedFolder(synth_paired, image_size=32)  # another reader of the same files shares the cache
    for index, item in enumerate(items):
        other = again[index]
        assert torch.equal(item["image"], other["image"]) and torch.equal(item["label"], other["label"])
    assert memory_cache.hits == 2 * len(first)
    assert all(not array.flags.writeable for array in memory_cache.arrays.values())
    PairedFolder(synth_paired, image_size=16)[0]
    assert memory_cache.misses == 2 * len(first) + 2, "another preprocessing is another key"


def test_memory_cache_keeps_what_fits_rereads_edited_files_and_can_be_off(tmp_path):
    from marsvision.data.cache import MemoryCache

    source = tmp_path / "a.bin"
    source.write_bytes(b"1")
    cache = MemoryCache(limit_bytes=16)
    assert cache.get([source], "t", lambda: np.zeros(2, np.int64)).sum() == 0  # 16 bytes: fits
    assert cache.get([source], "u", lambda: np.zeros(1, np.int64)).sum() == 0  # over the limit: not kept
    assert cache.used_bytes == 16 and len(cache.arrays) == 1
    assert cache.get([source], "t", lambda: np.ones(2, np.int64)).sum() == 0
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache.get([source], "t", lambda: np.ones(2, np.int64)).sum() == 2, "an edited file is read again"
    cache.configure(0)
    assert cache.arrays == {} and cache.get([source], "t", lambda: np.full(2, 3)).sum() == 6
    assert cache.arrays == {}


class _Decode(torch.utils.data.Dataset):
    """Items read through a memory cache; each item says whether it came from the cache."""

    def __init__(self, cache, source) -> None:
        self.cache, self.source = cache, source

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> int:
        return int(self.cache.get([self.source], "t", lambda: np.zeros(1)).size) + 10 * len(self.cache.arrays)


def test_loader_workers_read_the_parents_arrays_but_keep_none_of_their_own(tmp_path):
    from marsvision.data.cache import MemoryCache

    source = tmp_path / "a.bin"
    source.write_bytes(b"1")
    cache = MemoryCache(limit_bytes=1024)
    loader = torch.utils.data.DataLoader(_Decode(cache, source), batch_size=None, num_workers=1)
    assert [int(x) for x in loader] == [1], "the worker computes and keeps nothing"
    assert cache.arrays == {}
    cache.get([source], "t", lambda: np.zeros(1))
    assert [int(x) for x in loader] == [11], "the worker reads what its parent kept"
