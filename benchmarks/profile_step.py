"""Profile marsvision's training step as ``overhead`` runs it, to find the largest cost when a goal is missed.

    python benchmarks/profile_step.py --task segmentation --size tiny --steps 60          # cProfile, Python side
    python benchmarks/profile_step.py --task semiseg --size cpu --tool torch --steps 10   # torch.profiler, ops

``cprofile`` prints the functions with the largest cumulative time (hooks, logging, reseeding, optimiser);
``torch`` prints the operator table of ``torch.profiler`` sorted by self CPU (or CUDA) time. Both profile the
module under marsvision's own trainer (``build_trainer``) on an in-memory batch, warm-up steps included.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as run_all.py
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("segmentation", "semiseg"), default="segmentation")
    parser.add_argument("--size", choices=("tiny", "cpu", "gpu"), default="tiny")
    parser.add_argument("--tool", choices=("cprofile", "torch"), default="cprofile")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)

    import torch

    from benchmarks.common import batch_loader, device_for, pick, quiet_lightning
    from benchmarks.overhead import _config, build_module, synthetic_batch
    from marsvision.training.trainer import build_trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = device_for(args.size)
    image_size = pick(args.size, tiny=32, cpu=None, gpu=None)
    batch_size = pick(args.size, tiny=2, cpu=None, gpu=None)
    config = _config(args.task, args.size, device, image_size, batch_size)
    classes = 4 if config.data.class_mode == "terrain4" else 6
    batch = synthetic_batch(config.data.batch_size, config.data.channels, config.data.image_size, classes)
    module = build_module(args.task, config, classes)
    print(
        f"{config.name}: {config.model.encoder}, {config.data.image_size}², batch {config.data.batch_size}, "
        f"{args.steps} steps, {torch.get_num_threads()} threads, {device.type}"
    )
    with quiet_lightning(), tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(config, Path(tmp), has_validation=False, max_epochs=1)
        loader = batch_loader({"labeled": batch}, args.steps)
        if args.tool == "cprofile":
            profiler = cProfile.Profile()
            profiler.enable()
            trainer.fit(module, train_dataloaders=loader)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
        else:
            from torch.profiler import ProfilerActivity, profile

            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
            with profile(activities=activities) as prof:
                trainer.fit(module, train_dataloaders=loader)
            key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            print(prof.key_averages().table(sort_by=key, row_limit=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
