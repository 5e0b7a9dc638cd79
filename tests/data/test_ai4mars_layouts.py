"""The AI4Mars reader on generated trees: release 0.1 and 0.6 (ncam + mcam decoy + MER), modes, splits."""

import shutil

import numpy as np
import pytest
from PIL import Image

from marsvision.data import Ai4Mars, DatasetError, chronological_split, detect_ai4mars_layout


def test_release_01_round_trip(synth_ai4mars):
    train = Ai4Mars(synth_ai4mars, split="train")
    test = Ai4Mars(synth_ai4mars, split="test", test_agreement="min1")
    assert (len(train), len(test)) == (18, 6)
    assert not set(train.ids) & set(test.ids)
    assert train.missing_images == [] and train.missing_masks == {"rover": 0, "range": 0}
    item = train[0]
    assert item["image"].shape == (1, 64, 64) and item["label"].shape == (64, 64)
    times = train.acquisition_times
    assert times == sorted(times) and len(set(times)) == len(times)  # ids sort in SCLK order


def test_gold_labels_are_nested_by_agreement(synth_ai4mars):
    levels = {a: Ai4Mars(synth_ai4mars, split="test", test_agreement=a) for a in ("min1", "min2", "min3")}
    assert levels["min1"].ids == levels["min2"].ids == levels["min3"].ids
    for index in range(len(levels["min1"])):
        labeled = {a: d[index]["label"].numpy() != 255 for a, d in levels.items()}
        assert (labeled["min3"] <= labeled["min2"]).all() and (labeled["min2"] <= labeled["min1"]).all()
        assert labeled["min1"].sum() > labeled["min3"].sum()


def test_synthetic_labels_are_255_under_the_masks_and_paper6_recovers_them(synth_ai4mars):
    t4 = Ai4Mars(synth_ai4mars)
    p6 = Ai4Mars(synth_ai4mars, class_mode="paper6")
    rover_total = 0
    for index, sample in enumerate(t4.samples):
        raw = np.array(Image.open(sample.label))
        rover = np.array(Image.open(sample.rover_mask)) == 1
        far = np.array(Image.open(sample.range_mask)) == 1
        assert (raw[rover | far] == 255).all()
        label = p6[index]["label"].numpy()
        assert np.array_equal(label == 4, rover) and np.array_equal(label == 5, far & ~rover)
        rover_total += int(rover.sum())
    assert rover_total > 0


def test_chronological_splits_follow_the_sols(synth_ai4mars):
    early = Ai4Mars(synth_ai4mars, split="chronological-early", chronological_fraction=0.6)
    late = Ai4Mars(synth_ai4mars, split="chronological-late", chronological_fraction=0.6)
    assert len(early) + len(late) == 18 and len(early) == round(0.6 * 18)
    assert max(early.acquisition_times) < min(late.acquisition_times)
    boundary = Ai4Mars(synth_ai4mars, split="chronological-early", sol_boundary=1000)
    assert all(t < 1000 for t in boundary.acquisition_times)
    whole = Ai4Mars(synth_ai4mars)
    e, _ = chronological_split(whole.acquisition_times, fraction=0.6)
    assert sorted(whole.ids[i] for i in e) == sorted(early.ids)


def test_release_06_reads_ncam_and_mer_never_mcam(synth_ai4mars06):
    layout = detect_ai4mars_layout(synth_ai4mars06)
    assert layout is not None and layout.release == "0.5+" and set(layout.trees) == {"msl", "mer"}
    msl = Ai4Mars(synth_ai4mars06, rover="msl")
    mer = Ai4Mars(synth_ai4mars06, rover="mer")
    both = Ai4Mars(synth_ai4mars06, rover="all")
    assert len(msl) + len(mer) == len(both)
    assert all("ncam" in str(s.image) for s in msl.samples)
    assert not any("mcam" in str(s.image) for s in both.samples)
    mer_labels = list((synth_ai4mars06 / "mer/labels/train/merged-unmasked").glob("*_merged*.png"))
    assert len(mer) == len(mer_labels) > 0
    assert all(s.rover_mask is None for s in mer.samples)
    assert set(both.rovers) == {"msl", "mer"}
    mer_test = Ai4Mars(synth_ai4mars06, rover="mer", split="test")
    assert all("_T" in s.label.name and s.image.parent.name == "eff" for s in mer_test.samples)
    assert mer[0]["label"].shape == (48, 48)


def test_missing_masks_are_counted_not_fatal(synth_ai4mars, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(synth_ai4mars, copy)
    masks = sorted((copy / "msl/images/mxy").glob("*.png"))
    masks[0].unlink()
    masks[1].unlink()
    dataset = Ai4Mars(copy, class_mode="paper6")
    train_stems = {s.id for s in dataset.samples}
    expected = sum(1 for m in masks[:2] if m.stem.replace("MXY", "EDR") in train_stems)
    assert dataset.missing_masks["rover"] == expected
    for index, sample in enumerate(dataset.samples):
        if sample.rover_mask is None:
            assert 4 not in dataset[index]["label"].numpy()


def test_wrong_arguments_raise(synth_ai4mars):
    with pytest.raises(ValueError, match="rover"):
        Ai4Mars(synth_ai4mars, rover="m2020")
    with pytest.raises(ValueError, match="class_mode"):
        Ai4Mars(synth_ai4mars, class_mode="paper7")
    with pytest.raises(DatasetError, match="no mer data"):
        Ai4Mars(synth_ai4mars, rover="mer")
