"""Evaluate a trained module on a held-out dataset: one confusion matrix, then every metric from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from marsvision.evaluation.confusion import ConfusionMatrix
from marsvision.evaluation.metrics import classification_metrics, segmentation_metrics
from marsvision.training import runs
from marsvision.training.config import RunConfig
from marsvision.training.data import make_loader
from marsvision.training.lightning_base import MarsvisionModule

QUALITATIVE_IMAGES = 4
"""Images whose prediction is kept for the report's qualitative panels (Figs. 8-9, 13)."""


@torch.no_grad()
def evaluate_model(
    module: MarsvisionModule,
    dataset: Any,
    config: RunConfig,
    class_names: list[str],
    *,
    run_dir: Path | None = None,
    split: str = "test",
) -> dict[str, Any]:
    """Confusion matrix and metrics of ``module`` on ``dataset``; written to ``run_dir/eval.json`` if given.

    Segmentation counts labeled pixels only (255 ignored); classification counts images.
    """
    module.eval()
    device = next(module.parameters()).device
    confusion = ConfusionMatrix(len(class_names))
    panels: dict[str, list[np.ndarray]] = {"image": [], "label": [], "pred": []}
    segmentation = config.task in ("segmentation", "semiseg")
    for batch in make_loader(dataset, config.data, batch_size=config.data.batch_size):
        images = batch["image"].to(device)
        logits = module(images)  # (N, K, H, W) or (N, K)
        pred = logits.argmax(1).cpu()
        confusion.update(pred=pred, target=batch["label"])
        if segmentation and len(panels["image"]) < QUALITATIVE_IMAGES:
            keep = QUALITATIVE_IMAGES - len(panels["image"])
            panels["image"].extend(batch["image"][:keep].numpy())
            panels["label"].extend(batch["label"][:keep].numpy())
            panels["pred"].extend(pred[:keep].numpy())
    matrix = confusion.compute(sync=False)
    metrics = segmentation_metrics(matrix, class_names) if segmentation else classification_metrics(matrix, class_names)
    evaluation = {
        "task": "segmentation" if segmentation else "classification",
        "split": split,
        "class_names": class_names,
        "confusion_matrix": matrix.tolist(),
        "metrics": metrics,
    }
    if run_dir is not None:
        name = runs.EVAL_FILE if split == config.data.eval_split else f"eval-{split}.json"
        runs.write_json_atomic(run_dir / name, evaluation)
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        runs.append_metrics(run_dir, {"epoch": -1, "step": -1, "stage": "eval", "split": split, **scalars})
        if panels["image"]:
            qualitative = run_dir / "qualitative"
            qualitative.mkdir(exist_ok=True)
            for index, (image, label, pred) in enumerate(zip(*panels.values(), strict=True)):
                np.savez_compressed(qualitative / f"{split}-{index}.npz", image=image, label=label, pred=pred)
    return evaluation
