from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run model tests on one intra-op thread: tiny tensors gain nothing from more, and on a busy machine
    OpenMP threads that wait for each other make them up to 100× slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
