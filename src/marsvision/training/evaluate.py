"""Evaluate a trained module on a held-out dataset: one confusion matrix, then every metric from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from marsvision import runfolder
from marsvision.data.classes import IGNORE_INDEX
from marsvision.data.labels import downsample_labels
from marsvision.evaluation.confusion import ConfusionMatrix
from marsvision.evaluation.metrics import classification_metrics, segmentation_metrics
from marsvision.evaluation.probabilities import class_probabilities
from marsvision.progress import progress
from marsvision.training import runs
from marsvision.training.config import RunConfig
from marsvision.training.data import make_loader
from marsvision.training.lightning_base import MarsvisionModule

QUALITATIVE_IMAGES = 12
"""Images whose prediction is kept for the report's qualitative panels (Figs. 8-9, 13): enough that paper 000's
Fig. 8 (the pretrained model better) and Fig. 9 (the supervised model better) both find images."""
THUMBNAIL_SIDE = 96
"""Side of the copies of misclassified test images a classification run keeps (paper 002 Figs 9-10)."""
THUMBNAILS = 96
"""At most this many misclassified images are kept, in test-set order."""


class ClassificationPredictions:
    """Every test image's id, class and prediction, and thumbnails of the first misclassified ones."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.targets: list[int] = []
        self.preds: list[int] = []
        self.error_positions: list[int] = []
        self.error_images: list[np.ndarray] = []

    def add(self, images: torch.Tensor, ids: list[str], targets: torch.Tensor, preds: torch.Tensor) -> None:
        """Record a batch: images (N, C, H, W) in [0, 1], ids, targets and predictions (N,)."""
        wrong = torch.nonzero(preds != targets).flatten().tolist()[: THUMBNAILS - len(self.error_images)]
        if wrong:
            small = F.interpolate(images[wrong].float(), size=(THUMBNAIL_SIDE, THUMBNAIL_SIDE), mode="area")
            pixels = (small.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            self.error_images.extend(pixels)  # (side, side, C) each
            self.error_positions.extend(len(self.ids) + i for i in wrong)
        self.ids.extend(ids)
        self.targets.extend(targets.tolist())
        self.preds.extend(preds.tolist())

    def save(self, path: Path) -> None:
        """Write ``ids``, ``targets``, ``preds``, ``error_positions`` and ``error_images`` (M, side, side, C)."""
        channels = self.error_images[0].shape[-1] if self.error_images else 1
        empty = np.zeros((0, THUMBNAIL_SIDE, THUMBNAIL_SIDE, channels), np.uint8)
        np.savez_compressed(
            path,
            ids=np.asarray(self.ids, dtype=str),
            targets=np.asarray(self.targets, np.int64),
            preds=np.asarray(self.preds, np.int64),
            error_positions=np.asarray(self.error_positions, np.int64),
            error_images=np.stack(self.error_images) if self.error_images else empty,
        )


FEATURE_PIXELS = 2000
"""Labeled test pixels whose encoder features go to ``features.npz`` for the t-SNE figure (B-seg Fig. 12)."""


class PixelFeatureSample:
    """A uniform sample, fixed by ``seed``, of at most ``limit`` labeled locations and their features.

    Every location of every batch draws a random key from a seeded generator and the ``limit`` smallest keys
    are kept, so the sample does not depend on how the test set is cut into batches.
    """

    def __init__(self, limit: int = FEATURE_PIXELS, seed: int = 0) -> None:
        self.limit = limit
        self.generator = torch.Generator().manual_seed(seed)
        self.keys = torch.zeros(0)
        self.features: torch.Tensor | None = None
        self.labels = torch.zeros(0, dtype=torch.long)

    def add(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Offer (N, D, h, w) features with their (N, H, W) labels (downsampled nearest to h × w)."""
        d, h, w = features.shape[1:]
        small = downsample_labels(labels.cpu(), (h, w)).reshape(-1).long()  # (N·h·w,)
        keys = torch.rand(len(small), generator=self.generator)
        labeled = torch.nonzero(small != IGNORE_INDEX).flatten()
        order = torch.argsort(torch.cat([self.keys, keys[labeled]]))[: self.limit]
        kept, new = order[order < len(self.keys)], labeled[order[order >= len(self.keys)] - len(self.keys)]
        # only the newly kept locations leave the device
        flat = features.detach().permute(0, 2, 3, 1).reshape(-1, d)[new.to(features.device)].float().cpu()
        previous = self.features if self.features is not None else flat[:0]
        merged_keys = torch.cat([self.keys[kept], keys[new]])
        by_key = torch.argsort(merged_keys)  # rows in key order: the same arrays however the batches fall
        self.keys = merged_keys[by_key]
        self.features = torch.cat([previous[kept], flat])[by_key]
        self.labels = torch.cat([self.labels[kept], small[new]])[by_key]

    def arrays(self) -> dict[str, np.ndarray] | None:
        """``{"features": (n, D) float32, "labels": (n,) int64}``, or None when no labeled location was seen."""
        if self.features is None or len(self.labels) == 0:
            return None
        return {"features": self.features.numpy(), "labels": self.labels.numpy()}


def feature_capture(module: MarsvisionModule) -> tuple[list[torch.Tensor], Callable[[], None]] | None:
    """Hook the encoder output of a segmentation module: a list each forward pass appends to.

    Paper 002 (Fig. 12) visualises "the output of the last layer in the encoder B_seg", for the baseline and for
    its method alike: the last map of the network's ``encode`` (the encoder's deepest features, which both
    DeepLabv3+ decoders and paper 000's atrous head read; after g's layers when that head sits on them). None
    when the network has no ``encode``. Returns the list and the function that removes the hook.
    """
    network = getattr(module, "model", None)
    encode = getattr(network, "encode", None)
    if not isinstance(network, nn.Module) or not callable(encode):
        return None
    captured: list[torch.Tensor] = []

    def encode_and_keep(x: torch.Tensor) -> list[torch.Tensor]:
        features: list[torch.Tensor] = encode(x)
        captured.append(features[-1])  # (N, C, H/s, W/s)
        return features

    network.encode = encode_and_keep  # type: ignore[assignment]  # an instance attribute shadows the method

    def remove() -> None:
        del network.encode

    return captured, remove


@torch.no_grad()
def evaluate_model(
    module: MarsvisionModule,
    dataset: Any,
    config: RunConfig,
    class_names: list[str],
    *,
    run_dir: Path | None = None,
    split: str = "test",
    primary: bool = True,
) -> dict[str, Any]:
    """Confusion matrix and metrics of ``module`` on ``dataset``, written into ``run_dir`` if given.

    Segmentation counts labeled pixels only (255 ignored); classification counts images. The run's own test
    evaluation (``primary``) goes to ``eval.json`` with qualitative panels and t-SNE features; a later
    ``marsvision evaluate --split S`` goes to ``eval-S.json``.
    """
    module.eval()
    device = next(module.parameters()).device
    confusion = ConfusionMatrix(len(class_names))
    panels: dict[str, list[np.ndarray]] = {"image": [], "label": [], "pred": []}
    segmentation = module.task == "segmentation"
    keep_features = segmentation and run_dir is not None and primary
    capture = feature_capture(module) if keep_features else None
    sample = PixelFeatureSample(FEATURE_PIXELS, seed=0)
    predictions = ClassificationPredictions() if not segmentation and run_dir is not None and primary else None
    tta = config.trainer.test_time_augmentation
    passes = 1 if tta == "none" else 2  # forward passes per batch: the image and its mirror

    def logits_of(images: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, module(torch.from_numpy(images).to(device)).float().cpu().numpy())

    try:
        loader = make_loader(dataset, config.data, batch_size=config.data.batch_size)
        for batch in progress(loader, f"evaluate {split}", "batch"):
            if tta == "none":
                pred = module(batch["image"].to(device)).argmax(1).cpu()  # logits (N, K, H, W) or (N, K)
            else:
                probabilities = class_probabilities(logits_of, batch["image"].numpy(), tta)
                pred = torch.from_numpy(probabilities.argmax(1))
            confusion.update(pred=pred, target=batch["label"])
            if predictions is not None:
                ids = list(batch.get("id", [str(len(predictions.ids) + i) for i in range(len(pred))]))
                predictions.add(batch["image"], ids, batch["label"], pred)
            if capture is not None:
                for features in capture[0][: len(capture[0]) // passes]:  # the unmirrored pass, which the labels fit
                    sample.add(features, batch["label"])
                capture[0].clear()
            if segmentation and len(panels["image"]) < QUALITATIVE_IMAGES:
                keep = QUALITATIVE_IMAGES - len(panels["image"])
                panels["image"].extend(batch["image"][:keep].numpy())
                panels["label"].extend(batch["label"][:keep].numpy())
                panels["pred"].extend(pred[:keep].numpy())
    finally:
        if capture is not None:
            capture[1]()  # remove the hook
    matrix = confusion.compute(sync=False)
    metrics = segmentation_metrics(matrix, class_names) if segmentation else classification_metrics(matrix, class_names)
    evaluation = {
        "task": "segmentation" if segmentation else "classification",
        "split": split,
        "class_names": class_names,
        "confusion_matrix": matrix.tolist(),
        "metrics": metrics,
        "test_time_augmentation": tta,
    }
    if run_dir is not None:
        runs.write_json_atomic(run_dir / runfolder.eval_file(None if primary else split, tta), evaluation)
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        runs.append_metrics(run_dir, {"epoch": -1, "step": -1, "stage": "eval", "split": split, **scalars})
        sampled = sample.arrays()
        if sampled is not None:
            np.savez_compressed(run_dir / runfolder.FEATURES_FILE, **sampled)  # type: ignore[arg-type]
        if predictions is not None:
            predictions.save(run_dir / runfolder.PREDICTIONS_FILE)
        if panels["image"]:
            qualitative = run_dir / runfolder.QUALITATIVE_DIR
            qualitative.mkdir(exist_ok=True)
            for index, (image, label, pred) in enumerate(zip(*panels.values(), strict=True)):
                np.savez_compressed(qualitative / f"{split}-{index}.npz", image=image, label=label, pred=pred)
    return evaluation
