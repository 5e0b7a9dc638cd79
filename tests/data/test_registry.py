"""The registry, format detection, Subset compatibility and label fractions on datasets."""

import re

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from marsvision.data import (
    DATASETS,
    LabelDropped,
    build_dataset,
    complement_indices,
    detect_format,
    nested_fraction_indices,
)


def test_unknown_name_lists_valid_names():
    valid = "ai4mars, msl-v1, msl-v2.1, paired-folder, unlabeled-folder"
    with pytest.raises(ValueError, match=re.escape(f"valid names: {valid}")):
        build_dataset("imagenet", root=".")


def test_detect_format_on_generated_trees(synth_ai4mars, synth_ai4mars06, synth_msl, synth_paired):
    assert detect_format(synth_ai4mars) == "ai4mars"
    assert detect_format(synth_ai4mars06) == "ai4mars"
    assert detect_format(synth_msl) == "msl-v1"
    assert detect_format(synth_paired) == "paired-folder"
    assert detect_format(synth_paired / "images") == "unlabeled-folder"


@pytest.fixture
def all_datasets(synth_ai4mars, synth_msl, synth_paired):
    return {
        "ai4mars": build_dataset("ai4mars", root=synth_ai4mars, image_size=32),
        "paired-folder": build_dataset("paired-folder", root=synth_paired, image_size=32),
        "msl-v1": build_dataset("msl-v1", root=synth_msl, image_size=32),
        "unlabeled-folder": build_dataset("unlabeled-folder", root=synth_ai4mars / "msl/images/edr", image_size=32),
    }


def test_every_reader_works_with_subset_and_a_dataloader(all_datasets):
    assert set(all_datasets) | {"msl-v2.1"} == set(DATASETS)
    for name, dataset in all_datasets.items():
        subset = Subset(dataset, [0, 2, 3])
        batch = next(iter(DataLoader(subset, batch_size=3)))
        assert batch["image"].shape[0] == 3 and batch["image"].dtype == torch.float32, name
        assert len(batch["id"]) == 3
        if name != "unlabeled-folder":
            assert batch["label"].dtype == torch.int64
            assert isinstance(dataset.class_names, tuple) and dataset.num_classes == len(dataset.class_names)
            assert len(dataset.ids) == len(dataset)


def test_label_fraction_and_unlabeled_remainder_of_a_dataset(all_datasets):
    dataset = all_datasets["ai4mars"]
    labeled = nested_fraction_indices(len(dataset), 0.25, seed=0)
    rest = LabelDropped(Subset(dataset, complement_indices(len(dataset), labeled)))
    assert len(labeled) + len(rest) == len(dataset)
    assert "label" not in rest[0] and rest[0]["id"] not in {dataset.ids[i] for i in labeled}


def test_ai4mars_reader_accepts_the_msl_folder_itself(synth_ai4mars):
    assert len(build_dataset("ai4mars", root=synth_ai4mars / "msl")) == 18


def test_synthesizers_registry_and_pickling(tmp_path):
    import pickle

    from marsvision.data import SYNTHESIZERS, segmentation_train_transform

    assert set(SYNTHESIZERS) == {"ai4mars", "ai4mars-0.6", "msl-v1", "paired-folder"}
    summary = SYNTHESIZERS["paired-folder"](tmp_path / "p", num_images=3, size=32)
    dataset = build_dataset("paired-folder", root=summary["root"], transform=segmentation_train_transform(16))
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone[0]["image"].shape == (1, 16, 16)


def test_unlabeled_folder_on_an_ai4mars_release_reads_only_rover_images(synth_ai4mars06):
    dataset = build_dataset("unlabeled-folder", root=synth_ai4mars06)
    edr = list((synth_ai4mars06 / "msl/ncam/images/edr").glob("*.JPG"))
    eff = list((synth_ai4mars06 / "mer/images/eff").glob("*.JPG"))
    assert len(dataset) == len(edr) + len(eff)
    everything = build_dataset("unlabeled-folder", root=synth_ai4mars06, ai4mars_images_only=False)
    assert len(everything) > len(dataset)
