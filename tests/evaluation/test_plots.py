from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from marsvision.data.classes import IGNORE_INDEX, PAPER6, TERRAIN4
from marsvision.evaluation import plots as P
from marsvision.evaluation.palette import palette_for


def assert_png(path: Path) -> None:
    assert path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG"
        arr = np.asarray(im.convert("L"))
    assert arr.shape[0] > 100 and arr.shape[1] > 100
    assert arr.std() > 5, "figure is blank"
    leftovers = [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers


def series():
    fr = [0.01, 0.05, 0.1, 1.0]
    return [
        P.Series("pretrained", fr, [0.91, 0.94, 0.95, 0.974], [0.01, 0.005, 0.004, 0.002]),
        P.Series("supervised", fr, [0.82, 0.88, 0.9, 0.953], None),
    ]


def test_label_efficiency_and_class_metric(tmp_path):
    p = P.plot_label_efficiency(series(), tmp_path / "fig3.png")
    assert p == tmp_path / "fig3.png"
    assert_png(p)
    assert_png(P.plot_class_metric_vs_fraction(series(), tmp_path / "fig7.png", class_name="big rock"))
    with pytest.raises(ValueError):
        P.plot_label_efficiency([], tmp_path / "x.png")


def test_confusion_matrix_heatmap(tmp_path):
    cm = np.array([[50, 3, 0, 1, 0, 0], [4, 40, 2, 0, 0, 0], [0, 1, 30, 0, 0, 0], [5, 0, 0, 5, 0, 0]] + [[0] * 6] * 2)
    assert_png(P.plot_confusion_matrix(cm, PAPER6, tmp_path / "sub" / "cm.png"))  # creates parent, empty rows ok
    with pytest.raises(ValueError, match="class names"):
        P.plot_confusion_matrix(cm, TERRAIN4, tmp_path / "bad.png")


def test_class_distribution_and_per_class(tmp_path):
    assert_png(P.plot_class_distribution([100, 50, 30, 5], TERRAIN4, tmp_path / "fig6.png"))
    one = {"soil": 0.9, "bedrock": 0.8, "sand": None, "big rock": 0.3}
    assert_png(P.plot_per_class({"ours": one}, tmp_path / "pc1.png"))
    two = {"baseline": {n: 0.5 for n in TERRAIN4}, "ours": one}
    assert_png(P.plot_per_class(two, tmp_path / "pc2.png", title="per-class accuracy"))


def test_epoch_axis_offsets_restarting_stages():
    recs = [{"stage": "pretrain", "epoch": e} for e in range(3)]
    recs += [{"stage": "joint", "epoch": e} for e in range(2)]
    recs += [{"stage": "pseudo", "epoch": e} for e in range(5, 7)]  # already global: kept
    xs, bounds = P.epoch_axis(recs)
    assert xs == [0, 1, 2, 3, 4, 5, 6]
    assert bounds == [(2.5, "joint"), (4.5, "pseudo")]
    xs2, bounds2 = P.epoch_axis([{"epoch": 0}, {"epoch": 1}])
    assert xs2 == [0, 1] and bounds2 == []


def test_an_evaluation_after_training_sits_at_the_last_epoch_and_opens_no_stage():
    recs = [{"stage": stage, "epoch": e} for e, stage in enumerate(("contrastive", "joint", "pseudo"))]
    recs.append({"stage": "eval", "epoch": -1, "split": "test"})  # how training logs its test evaluation
    xs, bounds = P.epoch_axis(recs)
    assert xs == [0, 1, 2, 2]
    assert bounds == [(0.5, "joint"), (1.5, "pseudo")]


def drawn_figures(monkeypatch) -> list:
    """Keep the figures the plot functions draw instead of writing them."""
    figures: list = []

    def keep(fig, path):
        figures.append(fig)
        return Path(path)

    monkeypatch.setattr(P, "_save", keep)
    return figures


@pytest.mark.parametrize(
    "stage_epochs",
    [
        {"contrastive": 1, "joint": 1, "pseudo": 1},  # the demo's three one-epoch stages
        {"contrastive warm-up": 36, "joint training": 1, "pseudo labels": 1, "fine-tune": 1},
    ],
)
def test_stage_names_never_overlap(tmp_path, monkeypatch, stage_epochs):
    figures = drawn_figures(monkeypatch)
    recs = [
        {"stage": stage, "epoch": e, "split": split, "acc": 0.5, "loss": 1.0}
        for stage, epochs in stage_epochs.items()
        for e in range(epochs)
        for split in ("train", "val")
    ]
    recs.append({"stage": "eval", "epoch": -1, "split": "test", "acc": 0.6})
    P.plot_learning_curves(recs, tmp_path / "curves.png", metrics=["acc", "loss"])
    fig = figures[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for ax in fig.axes for t in ax.texts]
    assert sorted(t.get_text() for t in texts) == sorted(stage_epochs)  # each stage named once, "eval" not a stage
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        assert all(not a.overlaps(b) for b in boxes[i + 1 :]), [t.get_text() for t in texts]
    title = fig.texts[0].get_window_extent(renderer)
    assert all(not title.overlaps(box) for box in boxes)


def test_learning_curves(tmp_path):
    recs = []
    for stage in ("pretrain", "joint", "pseudo"):
        for e in range(4):
            for split in ("train", "val"):
                recs.append(
                    {
                        "epoch": e,
                        "step": e * 10,
                        "stage": stage,
                        "split": split,
                        "acc": 0.5 + 0.02 * e,
                        "loss": 1.0 / (e + 1),
                    }
                )
    assert_png(P.plot_learning_curves(recs, tmp_path / "fig11.png", metrics=["acc", "loss"]))


@pytest.mark.parametrize("image_shape", [(32, 40), (32, 40, 3), (3, 32, 40), (1, 32, 40)])
def test_qualitative(tmp_path, image_shape):
    rng = np.random.default_rng(0)
    label = rng.integers(0, 4, (32, 40))
    label[:4] = IGNORE_INDEX
    panel = P.QualitativePanel(
        rng.random(image_shape), label, {"baseline": rng.integers(0, 4, (32, 40)), "ours": label % 4}
    )
    assert_png(P.plot_qualitative([panel, panel], TERRAIN4, tmp_path / "fig9.png", title="qualitative"))


def test_qualitative_rejects_bad_image(tmp_path):
    panel = P.QualitativePanel(np.zeros((2, 3, 4, 5)), np.zeros((4, 5), dtype=int))
    with pytest.raises(ValueError, match="image must be"):
        P.plot_qualitative([panel], TERRAIN4, tmp_path / "bad.png")


def test_tsne_side_by_side(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 80)
    labels[:20] = IGNORE_INDEX
    good = np.eye(4)[labels % 4] * 5 + rng.normal(size=(80, 4)) * 0.3
    bad = rng.normal(size=(80, 4))
    p = P.plot_tsne(
        {"baseline": (bad, labels), "ours": (good, labels)}, TERRAIN4, tmp_path / "fig12.png", max_points=60
    )
    assert_png(p)
    with pytest.raises(ValueError, match="labels"):
        P.plot_tsne({"x": (bad, labels[:10])}, TERRAIN4, tmp_path / "bad.png")


def test_data_inspect_plot_shows_every_split_in_the_class_colours(tmp_path, monkeypatch):
    figures = drawn_figures(monkeypatch)
    share = {"soil": 0.5, "bedrock": 0.3, "sand": 0.15, "big rock": 0.05}
    info = {
        "format": "ai4mars",
        "splits": {
            "train": {"count": 10, "images_per_class": dict.fromkeys(share, 10), "pixel_share": share},
            "test-min3": {"count": 0, "error": "mars: split 'test' is empty"},
        },
    }
    P.plot_dataset_classes(info, tmp_path / "classes.png")
    train, unreadable = figures[0].axes
    assert train.get_title() == "ai4mars — train (10 images)"
    colours = [tuple(np.round(np.array(bar.get_facecolor()[:3]) * 255).astype(int)) for bar in train.patches]
    assert colours == [tuple(c) for c in palette_for(list(share))]  # the colours of overlays and reports
    assert unreadable.get_title() == "ai4mars — test-min3 (0 images)"
    assert "split 'test' is empty" in unreadable.texts[0].get_text()
