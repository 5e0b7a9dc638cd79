"""The split policy of ``training/data.py`` on a real reader and inside a real run: test, validation, labeled and
unlabeled sets are disjoint, label budgets include validation, subsets are nested, the test set never moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from marsvision.data.errors import DatasetError
from marsvision.data.synth import synthesize_msl_v1
from marsvision.training.api import train
from marsvision.training.config import load_config
from marsvision.training.data import reader, split_indices, unlabeled_images
from paired_data import write_paired_folder


@pytest.fixture(scope="module")
def pool_root(tmp_path_factory) -> Path:
    return write_paired_folder(tmp_path_factory.mktemp("pool") / "paired", count=40)


def splits_for(root: Path, *overrides: str):
    config = load_config(None, ["data.dataset=paired-folder", f"data.root={root}", *overrides])
    pool = reader(config.data, "train")
    return pool, split_indices(config.data, pool, lambda: None)


def test_sets_are_disjoint_and_the_budget_includes_validation(pool_root: Path):
    pool, splits = splits_for(pool_root, "data.test_holdout=8", "data.label_count=10", "data.val_fraction=0.2")
    test = set(splits.test_indices or [])
    labeled, val, unlabeled = set(splits.labeled), set(splits.val), set(splits.unlabeled)
    assert len(test) == 8 and len(labeled) + len(val) == 10 and len(val) == 2
    assert not (test & labeled or test & val or test & unlabeled or labeled & val or labeled & unlabeled)
    assert not val & unlabeled
    assert test | labeled | val | unlabeled == set(range(len(pool)))


def test_label_subsets_are_nested_and_fractions_count_the_whole_pool(pool_root: Path):
    _, small = splits_for(pool_root, "data.test_holdout=8", "data.label_count=4", "data.val_fraction=0.25")
    _, large = splits_for(pool_root, "data.test_holdout=8", "data.label_count=16", "data.val_fraction=0.25")
    assert set(small.labeled + small.val) < set(large.labeled + large.val)
    _, fraction = splits_for(pool_root, "data.test_holdout=8", "data.label_fraction=0.25", "data.val_fraction=0")
    assert len(fraction.labeled) == 8  # a quarter of the 32 pool images, no validation carved out first


def test_the_test_set_is_the_same_for_every_seed_and_label_count(pool_root: Path):
    tests = {
        tuple(splits_for(pool_root, "data.test_holdout=8", f"data.label_count={count}", f"seed={seed}")[1].test_indices)
        for count in (4, 16)
        for seed in (0, 1, 2)
    }
    assert len(tests) == 1


@pytest.fixture(scope="module")
def msl_root(tmp_path_factory) -> Path:
    return Path(synthesize_msl_v1(tmp_path_factory.mktemp("msl") / "msl", num_images=48, size=32)["root"])


@pytest.mark.parametrize("test_images", [False, True])
def test_unlabeled_test_images_join_pretraining_and_the_unlabeled_stream(msl_root: Path, test_images: bool):
    """MSL v1 with its val split as the test set: the flag adds exactly the val images, without labels."""
    config = load_config(
        None,
        [
            "data.dataset=msl-v1",
            f"data.root={msl_root}",
            "data.image_size=32",
            "data.eval_split=val",
            "data.label_count=10",
            f"data.unlabeled_test_images={str(test_images).lower()}",
        ],
    )
    train_images, val_images = len(reader(config.data, "train")), len(reader(config.data, "val"))
    added = val_images if test_images else 0
    pretraining = unlabeled_images(config, None)
    assert len(pretraining) == train_images + added
    assert "label" not in pretraining[len(pretraining) - 1]
    splits = split_indices(config.data, reader(config.data, "train"), lambda: reader(config.data, "val"))
    assert len(unlabeled_images(config, splits)) == train_images - 10 + added


def test_pretraining_on_a_held_out_test_set_adds_no_image_twice(pool_root: Path):
    """AI4Mars-style: the test images are held out of the training split, which pretraining already sees whole."""
    overrides = ["data.dataset=paired-folder", f"data.root={pool_root}", "data.test_holdout=8"]
    config = load_config(None, [*overrides, "data.unlabeled_test_images=true"])
    assert len(unlabeled_images(config, None)) == len(reader(config.data, "train")) == 40


def test_a_run_reports_every_labeled_image_it_touched(paired_folder: Path, tmp_path: Path):
    config = load_config(
        None,
        [
            "method=seg-supervised",
            "data.dataset=paired-folder",
            f"data.root={paired_folder}",
            "data.image_size=32",
            "data.test_holdout=2",
            "data.label_count=5",
            "data.val_fraction=0.4",
            "data.batch_size=3",
            "model.encoder=r18_0.25x_sk0",
            "trainer.max_epochs=1",
            "trainer.progress_bar=false",
            f"runs_root={tmp_path}",
        ],
    )
    result = train(config)
    assert result["images_seen"] == {"labeled": 5, "unlabeled": 0}
    assert result["metrics"]["total"] > 0


class _PoolOfSize:
    """A stand-in for a reader: only the size and class names matter to the split policy."""

    class_names = ("soil", "bedrock", "sand", "big rock", "rover", "background")
    acquisition_times = None

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


@pytest.mark.parametrize(("fraction", "budget"), [(0.01, 161), (0.1, 1606), (1.0, 16_064)])
def test_paper_000_label_fractions_count_the_16064_image_pool(fraction: float, budget: int):
    """Paper 000: 1 % is 161 of AI4Mars's 16,064 training images, 100 % all of them, validation included."""
    config = load_config("finetune-ai4mars", [f"data.label_fraction={fraction}"])  # val_fraction 0.1
    splits = split_indices(config.data, _PoolOfSize(16_064), lambda: "the official test split")
    assert len(splits.labeled) + len(splits.val) == budget
    assert len(splits.val) == round(0.1 * budget) and splits.test == "the official test split"
    assert len(splits.unlabeled) == 16_064 - budget


def test_a_missing_shared_root_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MARSVISION_SHARED_DATA", str(tmp_path / "nowhere"))
    config = load_config(None, ["data.dataset=paired-folder", "data.root={shared}/paired"])
    with pytest.raises(DatasetError) as raised:
        reader(config.data, "train")
    assert str(raised.value) == (
        f"{tmp_path / 'nowhere' / 'paired'}: dataset root does not exist "
        f"({{shared}} stood for $MARSVISION_SHARED_DATA={tmp_path / 'nowhere'}; set $MARSVISION_SHARED_DATA)"
    )
