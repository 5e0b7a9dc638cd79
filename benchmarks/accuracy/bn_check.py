"""How much a classification run's BatchNorm running statistics cost it, measured on train images only.

For each checkpoint: eval-mode accuracy on ``--held`` train images with the statistics the run ended with, then
with statistics recomputed on ``--calibration`` other train images (clean: the evaluation transform), on the same
held images. A large gain says the run folded statistics of other images (strong views, unlabeled images) into
the averages evaluation uses. No image of the evaluation split is read, so the check is safe to run while tuning.

    python -m benchmarks.accuracy.bn_check RUN/checkpoints/last.ckpt [...] --held 600 --calibration 1200
"""

from __future__ import annotations

import argparse
from collections.abc import Sized
from pathlib import Path
from typing import cast

import torch
from torch.utils.data import DataLoader, Subset

from marsvision.training.api import load_module
from marsvision.training.batchnorm import recompute_running_statistics
from marsvision.training.data import build_eval_dataset


@torch.no_grad()
def accuracy(module: torch.nn.Module, loader: DataLoader) -> float:
    module.eval()
    right = total = 0
    for batch in loader:
        right += int((module(batch["image"]).argmax(1) == batch["label"]).sum())
        total += len(batch["label"])
    return 100 * right / total


def check(checkpoint: Path, held: int, calibration: int, batch_size: int = 64) -> dict[str, float | str]:
    module, config = load_module(checkpoint)
    dataset, _, _ = build_eval_dataset(config, config.data.train_split)
    order = torch.randperm(len(cast(Sized, dataset)), generator=torch.Generator().manual_seed(0)).tolist()
    held_loader = DataLoader(Subset(dataset, order[:held]), batch_size=batch_size)
    calibration_images = Subset(dataset, order[held : held + calibration])
    before = accuracy(module, held_loader)
    recompute_running_statistics(module, (b["image"] for b in DataLoader(calibration_images, batch_size=32)))
    return {
        "checkpoint": str(checkpoint),
        "held_train_images": held,
        "calibration_train_images": len(calibration_images),
        "accuracy_run_statistics": before,
        "accuracy_recomputed_statistics": accuracy(module, held_loader),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--held", type=int, default=600, help="train images the accuracy is measured on")
    parser.add_argument("--calibration", type=int, default=1200, help="other train images for the statistics")
    args = parser.parse_args(argv)
    for checkpoint in args.checkpoints:
        print(check(checkpoint, args.held, args.calibration), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
