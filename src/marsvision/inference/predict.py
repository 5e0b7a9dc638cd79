"""``marsvision predict``: label maps (segmentation) or top-k classes (classification) for images and folders.

Size rule. The model was trained on images resized to ``image_size`` (S) with the checkpoint's preprocessing.

* Default (``tile=None``): the whole image is resized to S × S exactly like training did, predicted, and the
  S × S label map is mapped back to the input size by nearest neighbour.
* ``tile=T``: sliding windows of T × T input pixels with 25 % overlap, each resized to S × S like training,
  softmax averaged where windows overlap (see :mod:`marsvision.inference.tiling`). T = the side of the
  training images before resizing reproduces the training scale; T = S feeds native pixels. Memory stays
  that of one S × S batch whatever the input size. Classification ignores ``tile`` (one label per image).

Outputs always have the input image's size. Unreadable inputs are skipped and listed; they never stop a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from marsvision.data.errors import DatasetError
from marsvision.evaluation.probabilities import check_tta, class_probabilities
from marsvision.inference.inputs import InputImage, expand_inputs
from marsvision.inference.outputs import (
    AREAS_CSV,
    PREDICTIONS_CSV,
    CsvTable,
    areas_header,
    class_shares,
    predictions_header,
    top_k,
    write_label,
    write_overlay,
)
from marsvision.inference.preprocessing import load_image, model_input
from marsvision.inference.resample import nearest_resize
from marsvision.inference.spec import ModelSpec
from marsvision.inference.tiling import DEFAULT_OVERLAP, tiled_probabilities
from marsvision.progress import Progress

TOP_K = 5
"""Classes listed per image in ``predictions.csv`` (fewer if the model has fewer)."""


class Model(Protocol):
    """What the pipeline needs of a backend (checkpoint or ONNX)."""

    spec: ModelSpec

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


class Predictor:
    """Images (``uint8`` ``(H, W, C)``) → probabilities with one model, one TTA mode and one size rule."""

    def __init__(
        self,
        model: Model,
        *,
        tta: str = "none",
        tile: int | None = None,
        overlap: float = DEFAULT_OVERLAP,
        batch_size: int = 4,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if tile is not None and tile < 1:
            raise ValueError(f"tile must be positive, got {tile}")
        self.model = model
        self.spec = model.spec
        self.tta = check_tta(tta)
        self.tile = tile
        self.overlap = overlap
        self.batch_size = batch_size

    def _probabilities(self, windows: list[np.ndarray]) -> np.ndarray:
        """Probabilities at S × S (or ``(N, K)``) of windows resized like training."""
        batch = np.stack([model_input(window, self.spec) for window in windows])
        return class_probabilities(self.model.logits, batch, self.tta)

    def _window_probabilities(self, windows: list[np.ndarray]) -> np.ndarray:
        """Probabilities of windows mapped back to the windows' own size (for tiling)."""
        height, width = windows[0].shape[:2]
        return nearest_resize(self._probabilities(windows), height, width)

    def labels(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Return one ``uint8`` class-id map per image, each of the image's size (segmentation models)."""
        if self.tile is not None:
            return [
                tiled_probabilities(
                    image,
                    self._window_probabilities,
                    tile=self.tile,
                    overlap=self.overlap,
                    batch_size=self.batch_size,
                )
                .argmax(0)
                .astype(np.uint8)
                for image in images
            ]
        small = self._probabilities(images).argmax(1).astype(np.uint8)  # (N, S, S)
        return [nearest_resize(label, *image.shape[:2]) for label, image in zip(small, images, strict=True)]

    def classes(self, images: list[np.ndarray]) -> np.ndarray:
        """Return ``(N, K)`` class probabilities (classification models)."""
        return self._probabilities(images)


def _load_model(checkpoint: Path | None, onnx: Path | None, device: str | None) -> Model:
    if (checkpoint is None) == (onnx is None):
        raise ValueError("give exactly one of --checkpoint and --onnx")
    if onnx is not None:
        from marsvision.inference.onnx_runtime import load_onnx

        return load_onnx(onnx)
    assert checkpoint is not None
    if checkpoint.is_dir():  # a run directory: the checkpoint it selected
        from marsvision import runfolder

        checkpoint = runfolder.best_checkpoint(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: checkpoint does not exist")
    from marsvision.inference.network import load_checkpoint
    from marsvision.training.trainer import resolve_device

    return load_checkpoint(checkpoint, device=str(resolve_device(device)))


Loaded = list[tuple[InputImage, np.ndarray]]


def _load_chunk(chunk: Sequence[InputImage], spec: ModelSpec, failed: list[dict[str, str]]) -> Loaded:
    """Decode the images of ``chunk``; an unreadable one is appended to ``failed`` and skipped."""
    loaded: Loaded = []
    for item in chunk:
        try:
            loaded.append((item, load_image(item.path, spec)))
        except (DatasetError, OSError) as error:
            failed.append({"path": str(item.path), "error": str(getattr(error, "problem", error))})
    return loaded


def _write_segmentation(
    out: Path, predictor: Predictor, loaded: Loaded, table: CsvTable, failed: list[dict[str, str]]
) -> int:
    """Write label PNG, overlay and ``areas.csv`` row of each image; return how many were written."""
    written = 0
    spec = predictor.spec
    labels = predictor.labels([array for _, array in loaded])
    for (item, array), label in zip(loaded, labels, strict=True):
        try:
            write_label(out, item.key, label)
            write_overlay(out, item.key, array, label, spec.class_names)
        except OSError as error:  # a full disk or a bad name fails this image, not the run
            failed.append({"path": str(item.path), "error": f"cannot write outputs ({error})"})
            continue
        shares = class_shares(label, spec.num_classes)
        table.write([item.key, array.shape[1], array.shape[0], *map(float, shares)])
        written += 1
    return written


def _write_classification(predictor: Predictor, loaded: Loaded, table: CsvTable, k: int) -> int:
    """Write the top-``k`` classes and probabilities of each image to ``predictions.csv``."""
    names = predictor.spec.class_names
    for (item, _), probs in zip(loaded, predictor.classes([array for _, array in loaded]), strict=True):
        row: list[object] = [item.key]
        for class_id, probability in top_k(probs, k):
            row += [names[class_id], predictor.spec.class_id(class_id), probability]
        table.write(row)
    return len(loaded)


def check_output_folder(out: Path, table_name: str, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, or that holds an earlier run's table unless ``overwrite``.

    Raises:
        FileExistsError: with the remedy in the message.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder; --out names the folder predictions go to")
    if (out / table_name).is_file() and not overwrite:
        raise FileExistsError(
            f"{out}: holds the predictions of an earlier run ({table_name}); add --overwrite to replace them "
            "(earlier rows are dropped) or choose another --out"
        )


def predict_paths(
    inputs: Sequence[str],
    *,
    out: Path,
    checkpoint: Path | None = None,
    onnx: Path | None = None,
    tta: str | None = None,
    batch_size: int = 4,
    tile: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Predict every image named by ``inputs`` (files, folders searched recursively, globs) into ``out``.

    Exactly one of ``checkpoint`` and ``onnx`` gives the model; either carries its classes and
    preprocessing; a checkpoint runs on ``device`` (``auto``: CUDA when present). ``tta="flip"`` averages the
    softmax of the image and of its mirror image. See the module docstring for the size rule and
    :mod:`marsvision.inference.outputs` for what is written. An ``out`` with an earlier run's table is refused
    unless ``overwrite`` (which replaces that table and the outputs of the same images).

    Returns:
        ``{"written": int, "failed": [{"path", "error"}], "out", "task", "class_names", "table", ...}``;
        ``failed`` lists inputs that named no image and images that could not be decoded or written.
    """
    out = Path(out)
    for table_name in (AREAS_CSV, PREDICTIONS_CSV):
        check_output_folder(out, table_name, overwrite)
    model = _load_model(checkpoint, onnx, device)
    spec = model.spec
    predictor = Predictor(model, tta=check_tta(tta), tile=tile, batch_size=batch_size)
    images, failed = expand_inputs(inputs)
    out.mkdir(parents=True, exist_ok=True)
    k = min(TOP_K, spec.num_classes)
    table_path = out / (AREAS_CSV if spec.dense else PREDICTIONS_CSV)
    header = areas_header(spec.class_names) if spec.dense else predictions_header(k)
    written = 0
    with CsvTable(table_path, header) as table, Progress("predict", len(images), "image") as progress:
        for first in range(0, len(images), batch_size):
            chunk = images[first : first + batch_size]
            loaded = _load_chunk(chunk, spec, failed)
            if loaded and spec.dense:
                written += _write_segmentation(out, predictor, loaded, table, failed)
            elif loaded:
                written += _write_classification(predictor, loaded, table, k)
            progress.update(len(chunk))
    return {
        "written": written,
        "failed": failed,
        "out": str(out),
        "table": str(table_path),
        "task": spec.task,
        "class_names": list(spec.class_names),
        "backend": "onnx" if onnx is not None else "checkpoint",
        "tta": predictor.tta,
        "tile": tile if spec.dense else None,  # classification predicts whole images: no tiling
    }
