"""Dataset wrappers: mapped items and dropped labels (the unlabeled stream)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

Item = dict[str, Any]


class MappedDataset(Dataset[Item]):
    """Apply ``function`` to each item of ``dataset`` (e.g. a ``MultiView``)."""

    def __init__(self, dataset: Dataset[Item], function: Callable[[Item], Item]) -> None:
        self.dataset = dataset
        self.function = function

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Item:
        return self.function(self.dataset[index])


def _drop_label(item: Item) -> Item:
    return {key: value for key, value in item.items() if key != "label"}


class LabelDropped(MappedDataset):
    """The items of ``dataset`` without their ``"label"`` (the unlabeled stream)."""

    def __init__(self, dataset: Dataset[Item]) -> None:
        super().__init__(dataset, _drop_label)
