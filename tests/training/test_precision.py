"""``trainer.precision``: bfloat16 where the CPU has it natively, float32 (and one log line) where it does not."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from marsvision.training import precision
from marsvision.training.config import load_config
from marsvision.training.precision import cpu_has_native_bf16, resolve_precision
from marsvision.training.trainer import build_trainer

CPU = torch.device("cpu")


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Set whether the CPU is reported to have native bfloat16."""

    def report(native: bool) -> None:
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)

    return report


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "marsvision"]


def test_auto_falls_back_to_float32_on_a_cpu_without_bf16_with_one_line(cpu_bf16, caplog):
    cpu_bf16(False)
    with caplog.at_level(logging.INFO, logger="marsvision"):
        assert resolve_precision("auto", CPU) == "32"
    assert messages(caplog) == ["marsvision: trainer.precision=auto: 32 on this cpu"]


def test_bf16_mixed_asked_for_on_a_cpu_without_bf16_trains_in_float32_and_warns(cpu_bf16, caplog):
    cpu_bf16(False)
    with caplog.at_level(logging.INFO, logger="marsvision"):
        assert resolve_precision("bf16-mixed", CPU) == "32"
    assert [r.levelno for r in caplog.records if r.name == "marsvision"] == [logging.WARNING]
    assert "no native bfloat16" in messages(caplog)[0]


def test_a_cpu_with_bf16_gets_bf16_mixed_and_other_values_pass_through(cpu_bf16):
    cpu_bf16(True)
    assert resolve_precision("auto", CPU) == "bf16-mixed"
    assert resolve_precision("bf16-mixed", CPU) == "bf16-mixed"
    cpu_bf16(False)
    for value in ("32", "16-mixed", "64-true"):
        assert resolve_precision(value, CPU) == value


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16", True),
        ("flags\t\t: fpu sse2 avx2 amx_tile amx_bf16", True),
        ("Features\t: fp asimd bf16 i8mm", True),
        ("flags\t\t: fpu sse2 avx2 avx512f avx512bw", False),
    ],
)
def test_cpuinfo_flags_name_native_bf16(flags, native, tmp_path: Path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: some CPU\n{flags}\n")
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    monkeypatch.setattr(precision.platform, "system", lambda: "Linux")
    cpu_has_native_bf16.cache_clear()
    try:
        assert cpu_has_native_bf16() is native
    finally:
        cpu_has_native_bf16.cache_clear()


def test_the_trainer_of_an_auto_run_trains_in_float32_on_a_cpu_without_bf16(cpu_bf16, tmp_path: Path):
    cpu_bf16(False)
    config = load_config(None, ["trainer.device=cpu", "trainer.precision=auto"])
    trainer = build_trainer(config, tmp_path, has_validation=False)
    assert trainer.precision == "32-true"
    cpu_bf16(True)
    assert build_trainer(config, tmp_path, has_validation=False).precision == "bf16-mixed"
