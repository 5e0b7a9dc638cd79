import math

import pytest

from marsvision.training.config import ConfigError, OptimConfig, load_config
from marsvision.training.schedules import (
    cosine_factor,
    lr_multiplier,
    poly_factor,
    restarted_per_stage,
    stage_at,
    step_factor,
    warmup_factor,
)


def test_endpoints():
    assert warmup_factor(0, 10) == pytest.approx(0.1)
    assert warmup_factor(9, 10) == 1.0
    assert warmup_factor(50, 10) == 1.0
    assert cosine_factor(0, 100) == 1.0
    assert cosine_factor(50, 100) == pytest.approx(0.5)
    assert cosine_factor(100, 100) == pytest.approx(0.0)
    assert poly_factor(0, 100, 0.9) == 1.0
    assert poly_factor(50, 100, 0.9) == pytest.approx(0.5**0.9)
    assert poly_factor(100, 100, 0.9) == 0.0
    assert step_factor(19, [20, 25]) == 1.0
    assert step_factor(20, [20, 25]) == pytest.approx(0.1)
    assert step_factor(29, [20, 25]) == pytest.approx(0.01)


def test_warmup_then_cosine():
    schedule = lr_multiplier(OptimConfig(schedule="cosine", warmup_epochs=1), steps_per_epoch=10, total_steps=110)
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(10) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert schedule(110) == pytest.approx(0.0)


def test_step_schedule_counts_epochs():
    schedule = lr_multiplier(OptimConfig(schedule="step", milestones=[2]), steps_per_epoch=5, total_steps=20)
    assert schedule(9) == 1.0
    assert schedule(10) == pytest.approx(0.1)


def test_unknown_schedule_fails_when_the_config_is_loaded():
    with pytest.raises(ConfigError, match=r"optim\.schedule: 'linear' is not one of \['constant', 'cosine'"):
        load_config(None, ["optim.schedule=linear"])


def test_stages_skip_empty_ones_and_the_last_one_lasts():
    names = ("a", "b", "c")
    assert [stage_at(e, [1, 0, 2], names) for e in range(5)] == ["a", "c", "c", "c", "c"]


def test_schedule_restarted_per_stage():
    schedule = restarted_per_stage(OptimConfig(schedule="poly", poly_power=1.0), 2, [1, 2, 1])
    # poly over each stage's own steps: 2, 4 and 2 steps, each starting at 1
    assert [schedule(s) for s in range(8)] == pytest.approx([1.0, 0.5, 1.0, 0.75, 0.5, 0.25, 1.0, 0.5])
