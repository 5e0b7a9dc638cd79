"""Method B-seg Table 8 baselines: mixing masks, EMA teacher, losses, one tiny run each, the t-SNE features."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from marsvision.cli import app
from marsvision.data.classes import IGNORE_INDEX, TERRAIN4
from marsvision.evaluation.report import write_tsne_comparison
from marsvision.training.api import load_module, train
from marsvision.training.checkpoint import safe_torch_load
from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.evaluate import FEATURE_PIXELS, PixelFeatureSample
from marsvision.training.seg_augment import classmix_mask, cutmix_box_mask, cutout_mask, mix
from marsvision.training.seg_baselines import (
    MeanTeacher,
    ReCo,
    TeacherSegmentation,
    ema_decay_at,
    ema_update,
    mix_classmix,
    mix_cutmix,
    mix_cutout,
    sigmoid_rampup,
)


def _is_one_rectangle(mask: torch.Tensor) -> bool:
    rows, cols = mask.any(1), mask.any(0)
    r, c = torch.nonzero(rows).flatten(), torch.nonzero(cols).flatten()
    contiguous = bool((r.diff() == 1).all() and (c.diff() == 1).all())
    return contiguous and torch.equal(mask, rows[:, None] & cols[None, :])


@pytest.mark.parametrize(("ratio", "size"), [(0.5, (32, 32)), (0.25, (16, 48))])
def test_cutout_mask_is_one_box_of_the_requested_size(ratio: float, size: tuple[int, int]) -> None:
    masks = cutout_mask(5, *size, ratio=ratio, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (5, *size) and masks.dtype == torch.bool
    for mask in masks:
        assert _is_one_rectangle(mask)
        assert mask.any(1).sum() == ratio * size[0] and mask.any(0).sum() == ratio * size[1]
        assert mask.float().mean().item() == pytest.approx(ratio**2)
    with pytest.raises(ValueError, match="ratio"):
        cutout_mask(1, 8, 8, ratio=0.0)


@pytest.mark.parametrize("area", [0.5, 0.3])
def test_cutmix_mask_covers_the_requested_area(area: float) -> None:
    masks = cutmix_box_mask(20, 64, 64, area=area, generator=torch.Generator().manual_seed(1))
    shapes = set()
    for mask in masks:
        assert _is_one_rectangle(mask)
        assert mask.float().mean().item() == pytest.approx(area, abs=1.5 / 64)  # rounding: one row or column
        shapes.add((int(mask.any(1).sum()), int(mask.any(0).sum())))
    assert len(shapes) > 1, "aspect ratio is random"


def test_classmix_mask_covers_exactly_the_chosen_classes() -> None:
    generator = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 4, (6, 10, 10), generator=generator)
    labels[0] = torch.where(labels[0] < 2, 1, 3)  # two classes present
    labels[1, :, :5] = 2  # ignored pixels are never chosen
    labels[1, :, 5:] = IGNORE_INDEX
    masks = classmix_mask(labels, generator)
    for image, mask in zip(labels, masks, strict=True):
        present = set(image[image != IGNORE_INDEX].unique().tolist())
        chosen = set(image[mask].unique().tolist())
        assert chosen <= present and len(chosen) == math.ceil(len(present) / 2)
        assert torch.equal(mask, torch.isin(image, torch.tensor(sorted(chosen), dtype=image.dtype)))
    assert masks[1].sum() == 50


def test_mix_keeps_images_and_labels_aligned() -> None:
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(3, 2, 8, 8, generator=generator)
    labels = torch.randint(0, 4, (3, 8, 8), generator=generator)
    mask = cutmix_box_mask(3, 8, 8, 0.5, generator)
    partner_images, partner_labels = images.roll(1, 0), labels.roll(1, 0)
    mixed_images = mix(images, partner_images, mask)
    mixed_labels = mix(labels, partner_labels, mask)
    assert mixed_labels.dtype == labels.dtype and mixed_images.shape == images.shape
    inside = mask.unsqueeze(1).expand_as(images)
    assert torch.equal(mixed_images[inside], images[inside])
    assert torch.equal(mixed_images[~inside], partner_images[~inside])
    assert torch.equal(mixed_labels[mask], labels[mask]) and torch.equal(mixed_labels[~mask], partner_labels[~mask])
    blanked = mix(labels, IGNORE_INDEX, ~mask)  # CutOut: the box loses its labels
    assert torch.equal(blanked[~mask], labels[~mask]) and (blanked[mask] == IGNORE_INDEX).all()
    with pytest.raises(ValueError, match="does not fit"):
        mix(images, partner_images, mask[:, :4])


def test_mix_unlabeled_pairs_every_pixel_with_its_pseudo_label() -> None:
    torch.manual_seed(4)
    images = torch.rand(4, 1, 16, 16)
    # the teacher's class of a pixel is a function of its brightness: mixing must preserve that relation
    classes = (images[:, 0] * 4).long().clamp(max=3)
    probabilities = torch.nn.functional.one_hot(classes, 4).permute(0, 3, 1, 2).float() * 0.9 + 0.025
    teacher_confidence, teacher_pseudo = probabilities.max(dim=1)
    mixers = {
        "cutout": lambda g: mix_cutout(images, teacher_pseudo, teacher_confidence, 0.5, g),
        "cutmix": lambda g: mix_cutmix(images, teacher_pseudo, teacher_confidence, 0.5, g),
        "classmix": lambda g: mix_classmix(images, teacher_pseudo, teacher_confidence, g),
    }
    for method, mixer in mixers.items():
        mixed, pseudo, confidence = mixer(torch.Generator().manual_seed(5))
        labeled = pseudo != IGNORE_INDEX
        assert torch.equal(pseudo[labeled], (mixed[:, 0] * 4).long().clamp(max=3)[labeled])
        assert torch.allclose(confidence[labeled], torch.tensor(0.925))
        if method == "cutout":
            assert (mixed[:, 0][~labeled] == 0).all() and (~labeled).float().mean() == pytest.approx(0.25)
            assert (confidence[~labeled] == 0).all()


def test_ema_update_by_hand() -> None:
    student, teacher = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        student.weight.copy_(torch.tensor([1.0, 2.0]))
        student.bias.copy_(torch.tensor([0.0, -1.0]))
        teacher.weight.copy_(torch.tensor([3.0, 0.0]))
        teacher.bias.copy_(torch.tensor([1.0, 1.0]))
        student.running_mean.copy_(torch.tensor([5.0, 6.0]))
    ema_update(teacher, student, decay=0.75)
    assert teacher.weight.tolist() == [0.75 * 3 + 0.25 * 1, 0.75 * 0 + 0.25 * 2]
    assert teacher.bias.tolist() == [0.75, 0.75 * 1 + 0.25 * -1]
    assert teacher.running_mean.tolist() == [5.0, 6.0], "buffers are copied"
    assert ema_decay_at(0, 0.99) == 0.0 and ema_decay_at(1, 0.99) == 0.5 and ema_decay_at(10_000, 0.99) == 0.99


def test_sigmoid_rampup_endpoints() -> None:
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(50, 100) == pytest.approx(math.exp(-5 * 0.25))
    assert sigmoid_rampup(100, 100) == 1.0 and sigmoid_rampup(500, 100) == 1.0 and sigmoid_rampup(0, 0) == 1.0


def test_teacher_is_saved_but_not_optimised() -> None:
    config = load_config("wang-seg-reco", ["model.encoder=resnet18", "data.image_size=32", "semiseg.embedding_dim=8"])
    module = ReCo(config, ClassInfo(list(TERRAIN4)))
    assert module.model.has_embedding and module.regional_contrast is not None
    assert any(key.startswith("teacher.") for key in module.state_dict())
    assert not any(p.requires_grad for p in module.teacher.parameters())
    with pytest.raises(ValueError, match="ema_decay"):
        TeacherSegmentation(load_config("wang-seg-cutmix", ["segbaseline.ema_decay=1.0"]), ClassInfo(list(TERRAIN4)))


def test_pixel_feature_sample_is_capped_and_independent_of_batching() -> None:
    torch.manual_seed(6)
    features, labels = torch.randn(12, 3, 16, 16), torch.randint(0, 4, (12, 64, 64))  # 2688 labeled
    labels[:, :, :8] = IGNORE_INDEX
    whole = PixelFeatureSample(FEATURE_PIXELS, seed=0)
    whole.add(features, labels)
    parts = PixelFeatureSample(FEATURE_PIXELS, seed=0)
    parts.add(features[:2], labels[:2])
    parts.add(features[2:], labels[2:])
    a, b = whole.arrays(), parts.arrays()
    assert a is not None and b is not None
    assert a["features"].shape == (FEATURE_PIXELS, 3) and a["labels"].shape == (FEATURE_PIXELS,)
    assert (a["labels"] != IGNORE_INDEX).all()
    assert np.array_equal(a["features"], b["features"]) and np.array_equal(a["labels"], b["labels"])


METHODS = {
    "cutout": "seg-cutout-teacher",
    "cutmix": "seg-cutmix-teacher",
    "classmix": "seg-classmix-teacher",
    "mean-teacher": "seg-mean-teacher",
    "reco": "seg-reco",
}


def tiny_baseline_config(root: Path, runs_root: Path, method: str):
    return load_config(
        None,
        [
            f"name=tiny-{method}",
            f"method={METHODS[method]}",
            f"runs_root={runs_root}",
            "data.dataset=paired-folder",
            f"data.root={root}",
            "data.image_size=32",
            "data.batch_size=2",  # 4 labeled images: two steps, so the teacher lags after the second
            "data.unlabeled_batch_size=2",
            "data.test_holdout=2",
            "data.val_fraction=0",
            "data.label_count=4",
            "model.encoder=resnet18",
            "model.head=deeplabv3plus",
            "semiseg.embedding_dim=8",
            "optim.name=sgd",
            "optim.lr=0.01",
            "segbaseline.pseudo_label_threshold=0.0",  # an untrained teacher is never confident
            "segbaseline.rampup_epochs=0.5",
            "segbaseline.reco_num_queries=4",
            "segbaseline.reco_num_negatives=8",
            "trainer.max_epochs=1",
            "trainer.early_stopping_patience=null",
            "trainer.progress_bar=false",
            "trainer.device=cpu",
        ],
    )


def check_baseline_run(method: str, result: dict) -> Path:
    run_dir = Path(result["run_dir"])
    evaluation = json.loads((run_dir / "eval.json").read_text())
    assert evaluation["metrics"]["total"] > 0 and 0 <= result["metrics"]["miou"] <= 1
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = {key for record in records if record["split"] == "train" for key in record}
    expected = {"mean-teacher": "consistency", "reco": "regional_contrast"}.get(method, "pseudo_ce")
    assert {expected, "ce"} <= logged, method
    state = safe_torch_load(result["checkpoint"])["state_dict"]
    teacher = [k for k in state if k.startswith("teacher.")]
    assert teacher, f"{method}: the EMA teacher is saved in the checkpoint"
    lagging = [k for k in teacher if not torch.equal(state[k], state["model." + k.removeprefix("teacher.")])]
    assert lagging, f"{method}: after the second step the teacher lags the network"
    module, config = load_module(Path(result["checkpoint"]))
    assert isinstance(module, TeacherSegmentation) and config.method == METHODS[method]
    with np.load(run_dir / "features.npz") as features:
        rows = len(features["labels"])
        dim = 512  # resnet18's last map: the encoder output, for every method (B-seg Fig. 12)
        assert 0 < rows <= FEATURE_PIXELS and features["features"].shape == (rows, dim), method
        assert set(np.unique(features["labels"])) <= {0, 1, 2, 3}
    return run_dir


def test_mean_teacher_consistency_is_the_squared_softmax_difference_to_the_teacher(tmp_path: Path) -> None:
    """The consistency term, re-derived in float64 from the student's and the eval-mode teacher's logits:
    mean over unlabeled images, classes and pixels of (softmax(student) − softmax(teacher))²."""
    config = tiny_baseline_config(tmp_path, tmp_path, "mean-teacher")
    config.segbaseline.rampup_epochs = 0.0  # the full weight from the first step (no trainer to count steps)
    torch.manual_seed(0)
    module = MeanTeacher(config, ClassInfo(list(TERRAIN4))).train()
    with torch.no_grad():  # a teacher that differs from the student, as after a few EMA steps
        for parameter in module.teacher.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    images, unlabeled = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    labels = torch.randint(0, 4, (2, 32, 32))
    torch.manual_seed(3)  # the decoder's dropout: replay the same masks below
    parts = module.compute_losses({"labeled": {"image": images, "label": labels}, "unlabeled": {"image": unlabeled}})
    torch.manual_seed(3)
    with torch.no_grad():
        student = module.model(torch.cat([images, unlabeled]))["logits"][2:].double().numpy()  # (2, K, H, W)
        teacher = module.teacher.eval()(unlabeled)["logits"].double().numpy()

    def softmax(logits: np.ndarray) -> np.ndarray:
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    expected = float(np.mean((softmax(student) - softmax(teacher)) ** 2))
    assert expected > 1e-6, "student and teacher agree: the check would pass on a zero term"
    assert parts["consistency"].item() == pytest.approx(expected, rel=1e-4)
    weight = config.segbaseline.unsupervised_weight
    assert parts["loss"].item() == pytest.approx(parts["ce"].item() + weight * expected, rel=1e-4)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny networks run several times faster on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_each_baseline_trains_evaluates_and_compares(paired_folder: Path, tmp_path: Path) -> None:
    # one test for the five runs keeps the suite short; each check names its method
    run_dirs = {}
    for method in ("cutout", "cutmix", "classmix", "mean-teacher", "reco"):
        result = train(tiny_baseline_config(paired_folder, tmp_path / "runs", method))
        run_dirs[method] = check_baseline_run(method, result)
    figure = write_tsne_comparison([run_dirs["cutmix"], run_dirs["reco"]], tmp_path / "fig12.png")
    assert figure.is_file() and figure.stat().st_size > 0
    with pytest.raises(ValueError, match="at least two"):
        write_tsne_comparison([run_dirs["reco"]])
    runner = CliRunner()
    out = tmp_path / "compare"
    compared = runner.invoke(
        app, ["report", str(run_dirs["cutout"]), str(run_dirs["reco"]), "--compare", f"--out={out}", "--json"]
    )
    assert compared.exit_code == 0, compared.output
    figures = json.loads(compared.stdout)
    assert figures == {"per_class": str(out / "per_class_comparison.png"), "tsne": str(out / "tsne_comparison.png")}
    assert all(Path(p).is_file() for p in figures.values())
    assert runner.invoke(app, ["report", str(run_dirs["cutout"]), str(run_dirs["reco"])]).exit_code != 0
    single = runner.invoke(app, ["report", str(run_dirs["reco"]), "--json"])  # one path: the run report as before
    assert single.exit_code == 0, single.output
    assert (run_dirs["reco"] / "figures" / "tsne.png").is_file(), "the run report draws the run's features.npz"
