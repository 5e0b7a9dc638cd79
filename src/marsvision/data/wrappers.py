"""Dataset wrappers: mapped items, dropped labels, label-fraction and chronological subsets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset, Subset

from marsvision.data.splits import chronological_split, complement_indices, nested_fraction_indices

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


def label_fraction_split(
    dataset: Dataset[Item],
    fraction: float | None = None,
    count: int | None = None,
    seed: int = 0,
) -> tuple[Subset[Item], LabelDropped]:
    """Return ``(labeled, unlabeled)``: a nested seeded label subset and the rest without labels.

    The labeled part is ``nested_fraction_indices(len(dataset), fraction, count, seed)``; the unlabeled part
    is its complement wrapped in ``LabelDropped`` (empty at fraction 1.0).
    """
    size = len(dataset)  # type: ignore[arg-type]
    labeled = nested_fraction_indices(size, fraction, count, seed)
    rest = complement_indices(size, labeled)
    return Subset(dataset, labeled), LabelDropped(Subset(dataset, rest))


def chronological_subsets(
    dataset: Dataset[Item], fraction: float | None = 0.6, sol_boundary: float | None = None
) -> tuple[Subset[Item], Subset[Item]]:
    """Split a dataset with ``acquisition_times`` into ``(early, late)`` subsets (``chronological_split``)."""
    times = getattr(dataset, "acquisition_times", None)
    if times is None:
        raise ValueError("this dataset has no acquisition times (its file names carry no SCLK or sol)")
    early, late = chronological_split(times, fraction=fraction, sol_boundary=sol_boundary)
    return Subset(dataset, early), Subset(dataset, late)
