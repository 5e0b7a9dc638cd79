"""Logits → class probabilities, with optional test-time augmentation; numpy only, for both backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, cast, get_args

import numpy as np

LogitsFn = Callable[[np.ndarray], np.ndarray]
"""``float32`` ``(N, C, S, S)`` model input → logits ``(N, K, S, S)`` (segmentation) or ``(N, K)``."""

TtaMode = Literal["none", "flip"]
TTA_MODES: tuple[TtaMode, ...] = get_args(TtaMode)


def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """Return the softmax of ``logits`` along ``axis`` in float32 (max-subtracted, so no overflow)."""
    shifted = logits.astype(np.float32) - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    out: np.ndarray = exp / exp.sum(axis=axis, keepdims=True)
    return out


def check_tta(tta: str | None) -> TtaMode:
    """Return the TTA mode (``None`` → ``"none"``); raise ``ValueError`` for an unknown one."""
    mode = tta or "none"
    if mode not in TTA_MODES:
        raise ValueError(f"unknown tta {tta!r}; choose one of {', '.join(TTA_MODES)}")
    return cast(TtaMode, mode)


def class_probabilities(logits_fn: LogitsFn, batch: np.ndarray, tta: str = "none") -> np.ndarray:
    """Return softmax probabilities of ``batch``; ``tta="flip"`` averages them with the horizontal flip's.

    For dense outputs the flipped prediction is flipped back before averaging, so pixel (i, j) of both
    predictions describes the same scene point.
    """
    probs = softmax(logits_fn(batch))
    if check_tta(tta) == "flip":
        flipped = softmax(logits_fn(np.ascontiguousarray(batch[..., ::-1])))
        if flipped.ndim == 4:
            flipped = flipped[..., ::-1]
        probs = (probs + flipped) / np.float32(2.0)
    return np.ascontiguousarray(probs, dtype=np.float32)
