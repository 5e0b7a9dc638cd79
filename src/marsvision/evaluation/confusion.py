"""The confusion matrix every metric derives from: one ``bincount``, plus a streaming, DDP-aware accumulator.

Rows are the true class, columns the predicted class: ``cm[t, p]`` counts pixels (or images) of true class
``t`` predicted as ``p``. Targets equal to ``ignore_index`` (``IGNORE_INDEX`` = 255) are dropped.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from marsvision.data.classes import IGNORE_INDEX


def confusion_matrix(
    *,
    pred: Tensor,
    target: Tensor,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
    validate: bool = True,
) -> Tensor:
    """Count (true, predicted) class pairs into a ``(K, K)`` int64 matrix, rows = true class.

    Args:
        pred: predicted class indices, any shape (e.g. ``(N, H, W)`` or ``(N,)``), integer dtype.
        target: true class indices, same shape as ``pred``; entries equal to ``ignore_index`` are skipped.
        num_classes: ``K``.
        ignore_index: target value that takes no part.
        validate: check the value ranges (four reductions and, on GPU, a host sync); ``False`` skips the
            check for speed inside training loops, where an out-of-range value then miscounts silently.

    Returns:
        ``LongTensor (K, K)`` on ``pred``'s device.

    Raises:
        ValueError: shapes differ, non-integer inputs, ``num_classes < 1``, or a kept target or prediction
            outside ``[0, K)``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError("pred and target must hold integer class indices (take argmax of logits first)")
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long().to(pred.device)
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    if validate and target.numel() > 0:
        if int(target.min()) < 0 or int(target.max()) >= num_classes:
            raise ValueError(
                f"target values must be in [0, {num_classes}) or {ignore_index}; "
                f"found range [{int(target.min())}, {int(target.max())}]"
            )
        if int(pred.min()) < 0 or int(pred.max()) >= num_classes:
            raise ValueError(
                f"pred values must be in [0, {num_classes}); found range [{int(pred.min())}, {int(pred.max())}]"
            )
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


class ConfusionMatrix:
    """Streaming confusion matrix: ``update`` per batch, ``compute`` at the end, ``reset`` between epochs.

    Under ``torch.distributed`` each process accumulates its own batches; :meth:`compute` (by default) and
    :meth:`sync` return the matrix summed over all processes (one ``all_reduce``) without changing the local
    counts, so calling them twice never double-counts. With the ``gloo`` backend keep the state on CPU, with
    ``nccl`` on the process's GPU (the state follows the device of the first ``update``).
    """

    def __init__(self, num_classes: int, *, ignore_index: int = IGNORE_INDEX, validate: bool = True) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.validate = validate
        self._counts = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def update(self, *, pred: Tensor, target: Tensor) -> None:
        """Add one batch (see :func:`confusion_matrix` for shapes and errors)."""
        batch = confusion_matrix(
            pred=pred,
            target=target,
            num_classes=self.num_classes,
            ignore_index=self.ignore_index,
            validate=self.validate,
        )
        if self._counts.device != batch.device:
            self._counts = self._counts.to(batch.device)
        self._counts += batch

    @property
    def local(self) -> Tensor:
        """A copy of this process's counts (no communication)."""
        return self._counts.clone()

    def sync(self) -> Tensor:
        """Return the counts summed over all processes (a copy); the local counts when not distributed."""
        total = self._counts.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    def compute(self, *, sync: bool = True) -> Tensor:
        """Return the accumulated ``(K, K)`` matrix, summed over processes unless ``sync=False``."""
        return self.sync() if sync else self.local

    def reset(self) -> None:
        """Zero the counts (keeps the device)."""
        self._counts.zero_()
