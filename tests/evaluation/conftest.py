"""Builders of fake run and sweep directories in the documented formats (docs/ARCHITECTURE.md)."""

import json
from pathlib import Path

import numpy as np
import pytest

from marsvision.data.classes import IGNORE_INDEX, TERRAIN4


def _cm(rng: np.random.Generator, quality: float) -> list[list[int]]:
    k = len(TERRAIN4)
    support = np.array([5000, 3000, 1500, 300])
    cm = np.zeros((k, k), dtype=np.int64)
    for t in range(k):
        correct = int(support[t] * quality)
        cm[t, t] = correct
        cm[t] += rng.multinomial(support[t] - correct, np.ones(k) / k)
    return cm.tolist()


def write_run(
    root: Path,
    *,
    quality: float = 0.9,
    seed: int = 0,
    with_eval: bool = True,
    with_qualitative: bool = True,
    with_features: bool = True,
) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text("method: bseg\ndata:\n  dataset: ai4mars\n  label_fraction: 0.1\nseed: 0\n")
    meta = {
        "git_commit": "abc1234",
        "python": "3.11.9",
        "torch": "2.14.1",
        "host": "test",
        "command": "marsvision train",
    }
    (root / "meta.json").write_text(json.dumps(meta))
    lines = []
    step = 0
    for stage in ("pretrain", "joint", "pseudo"):
        for epoch in range(3):
            step += 10
            for split in ("train", "val"):
                rec = {
                    "epoch": epoch,
                    "step": step,
                    "stage": stage,
                    "split": split,
                    "loss": 1.0 / (epoch + 1),
                }
                if stage != "pretrain":
                    bonus = 0.02 if split == "train" else 0.0
                    rec |= {"acc": 0.8 + 0.03 * epoch + bonus, "miou": 0.5 + 0.05 * epoch}
                lines.append(json.dumps(rec))
    (root / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if with_eval:
        ev = {
            "task": "segmentation",
            "split": "test",
            "class_names": list(TERRAIN4),
            "confusion_matrix": _cm(rng, quality),
            "metrics": {"acc": quality},
        }
        (root / "eval.json").write_text(json.dumps(ev))
    if with_qualitative:
        (root / "qualitative").mkdir(exist_ok=True)
        for i in range(2):
            label = rng.integers(0, 4, (24, 32))
            label[:3] = IGNORE_INDEX
            np.savez(
                root / "qualitative" / f"img{i}.npz",
                image=rng.random((24, 32)).astype(np.float32),
                label=label,
                pred_baseline=rng.integers(0, 4, (24, 32)),
                pred_ours=np.where(label == IGNORE_INDEX, 0, label),
            )
    if with_features:
        labels = rng.integers(0, 4, 60)
        np.savez(
            root / "features.npz",
            features_baseline=rng.normal(size=(60, 8)).astype(np.float32),
            labels_baseline=labels,
            features_ours=(np.eye(4)[labels] @ rng.normal(size=(4, 8)) * 4 + rng.normal(size=(60, 8))).astype(
                np.float32
            ),
            labels_ours=labels,
        )
    return root


def write_sweep(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for method, base in (("pretrained", 0.9), ("supervised", 0.8)):
        for fraction in (0.01, 0.1, 1.0):
            for seed in (0, 1):
                name = f"{method}-f{fraction}-s{seed}"
                quality = base + 0.05 * fraction + 0.01 * seed
                write_run(root / name, quality=quality, seed=seed, with_qualitative=seed == 0, with_features=False)
                rows.append(
                    {
                        "method": method,
                        "label_fraction": fraction,
                        "seed": seed,
                        "run_dir": name,
                        "acc": quality,
                        "miou": quality - 0.2,
                    }
                )
    (root / "results.json").write_text(json.dumps(rows))
    header = list(rows[0])
    (root / "results.csv").write_text(
        "\n".join([",".join(header)] + [",".join(str(r[h]) for h in header) for r in rows]) + "\n"
    )
    (root / "summary.json").write_text(
        json.dumps({"settings": [{"method": "pretrained", "acc": {"mean": 0.9, "std": 0.01}}]})
    )
    return root


@pytest.fixture
def make_run():
    return write_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "bseg-20260101-000000")


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    return write_sweep(tmp_path / "sweep-fig3")


@pytest.fixture(scope="session")
def run_report(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A full run directory and its report, built once: (run dir, html, md)."""
    from marsvision.evaluation.report import write_report

    root = write_run(tmp_path_factory.mktemp("run") / "bseg-20260101-000000")
    return (root, *write_report(root))


@pytest.fixture(scope="session")
def sweep_report(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A sweep directory and its report, built once: (sweep dir, html, md)."""
    from marsvision.evaluation.report import write_report

    root = write_sweep(tmp_path_factory.mktemp("sweep") / "sweep-fig3")
    return (root, *write_report(root))


def write_pretraining_sweep(root: Path) -> Path:
    """A sweep as ``marsvision sweep`` writes it: random init vs latest:demo-simclr at two fractions, one seed each
    except pretrained at 100 % (two seeds); the big-rock class is never predicted."""
    from marsvision.training.sweep import summarise

    root.mkdir(parents=True)
    rows = []
    for weights, tag, base in ((None, "random", 0.6), ("latest:demo-simclr", "pretrained", 0.7)):
        for fraction in (0.1, 1.0):
            for seed in (0, 1) if (tag, fraction) == ("pretrained", 1.0) else (0,):
                name = f"{tag}-{fraction}-s{seed}"
                quality = base + 0.1 * fraction + 0.02 * seed
                write_run(root / name, quality=quality, seed=seed, with_qualitative=False, with_features=False)
                evaluation = json.loads((root / name / "eval.json").read_text())
                for row in evaluation["confusion_matrix"]:
                    row[0] += row[3]  # no pixel is ever predicted "big rock"
                    row[3] = 0
                (root / name / "eval.json").write_text(json.dumps(evaluation))
                metrics = {"acc": quality, "miou": quality - 0.2}
                point = {"model.weights": weights, "data.label_fraction": fraction}
                rows.append({**point, "seed": seed, "run_dir": name, "metrics": metrics})
    (root / "results.json").write_text(json.dumps(rows))
    keys = ["model.weights", "data.label_fraction"]
    (root / "summary.json").write_text(json.dumps(summarise(rows, keys)))
    return root


@pytest.fixture
def trust_sweep(tmp_path: Path) -> Path:
    return write_pretraining_sweep(tmp_path / "label-fractions-sweep")
