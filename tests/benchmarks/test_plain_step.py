"""The hand-written step the overhead and utilisation benchmarks compare against trains in the recipe's layout."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the repository's benchmarks/, not this folder (see test_accuracy_peers.py)
    sys.path.insert(0, str(ROOT))

from benchmarks.overhead import _config, build_module, plain_step_fn, synthetic_batch  # noqa: E402


def _losses_and_module(channels_last: bool) -> tuple[list[float], torch.nn.Module]:
    config = _config("segmentation", "tiny", torch.device("cpu"), image_size=32, batch_size=2)
    config.trainer.channels_last = channels_last
    # float64: BatchNorm over the deep layers' 1×1 maps at this size magnifies float32's layout-order rounding
    module = build_module("segmentation", config, num_classes=4).double()
    step = plain_step_fn("segmentation", module, config)
    batch = synthetic_batch(2, config.data.channels, 32, 4)
    batch["image"] = batch["image"].double()
    return [float(step(batch).detach()) for _ in range(2)], module


def test_the_plain_step_trains_in_nhwc_when_the_recipe_does_and_computes_the_same_losses():
    nchw_losses, nchw = _losses_and_module(channels_last=False)
    nhwc_losses, nhwc = _losses_and_module(channels_last=True)
    # kernels with one input channel or 1×1 have the same strides in both layouts
    spatial = [p for p in nhwc.model.parameters() if p.ndim == 4 and p.shape[1] > 1 and p.shape[-1] > 1]
    assert spatial and all(
        p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in spatial
    )
    assert all(p.is_contiguous() for p in nchw.model.parameters())
    # the same seeded weights and batch: the second loss also checks that the update was the same
    torch.testing.assert_close(torch.tensor(nhwc_losses), torch.tensor(nchw_losses), rtol=1e-9, atol=1e-9)
