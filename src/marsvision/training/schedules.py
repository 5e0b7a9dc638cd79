"""Learning-rate schedules as pure functions: optimizer step → multiplier of the base learning rate."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise

from marsvision.training.config import OptimConfig


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up from 1/warmup_steps to 1 over the first ``warmup_steps`` steps (1 afterwards)."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return (step + 1) / warmup_steps


def cosine_factor(step: int, total_steps: int) -> float:
    """Half-cosine decay from 1 at step 0 to 0 at ``total_steps`` (SimCLR's schedule after warm-up)."""
    progress = min(max(step, 0), total_steps) / max(total_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def poly_factor(step: int, total_steps: int, power: float = 0.9) -> float:
    """DeepLab's polynomial decay ``(1 - step/total)^power`` (paper 002 segmentation, power 0.9)."""
    progress = min(max(step, 0), total_steps) / max(total_steps, 1)
    return float((1.0 - progress) ** power)


def step_factor(epoch: int, milestones: list[int], gamma: float = 0.1) -> float:
    """Multiply by ``gamma`` at each milestone epoch passed (paper 002 classification: ×0.1 at 20 and 25)."""
    return float(gamma ** sum(epoch >= m for m in milestones))


def lr_multiplier(config: OptimConfig, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
    """The schedule named in ``config`` as a step → multiplier function, warm-up included."""
    warmup_steps = config.warmup_epochs * steps_per_epoch
    decay_steps = max(total_steps - warmup_steps, 1)

    def decay(step: int) -> float:
        after = step - warmup_steps
        if config.schedule == "constant":
            return 1.0
        if config.schedule == "cosine":
            return cosine_factor(after, decay_steps)
        if config.schedule == "poly":
            return poly_factor(after, decay_steps, config.poly_power)
        return step_factor(step // max(steps_per_epoch, 1), config.milestones, config.gamma)  # "step"

    def multiplier(step: int) -> float:
        return warmup_factor(step, warmup_steps) * decay(step)

    return multiplier


def stage_at(epoch: int, stage_epochs: Sequence[int], names: Sequence[str]) -> str:
    """Name of the stage an epoch belongs to: epochs run through the stages in order, skipping empty ones."""
    boundary = 0
    for name, length in zip(names, stage_epochs, strict=True):
        boundary += length
        if epoch < boundary:
            return name
    return names[-1]


def restarted_per_stage(
    config: OptimConfig, steps_per_epoch: int, stage_epochs: Sequence[int]
) -> Callable[[int], float]:
    """The schedule named in ``config``, run afresh over each stage's own steps (a stage that trains anew)."""
    starts = [0]
    for length in stage_epochs:
        starts.append(starts[-1] + length * steps_per_epoch)
    schedules = [lr_multiplier(config, steps_per_epoch, max(end - start, 1)) for start, end in pairwise(starts)]

    def multiplier(step: int) -> float:
        stage = max(k for k in range(len(stage_epochs)) if step >= starts[k])
        return schedules[stage](step - starts[stage])

    return multiplier
