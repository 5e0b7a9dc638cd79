"""``trainer.precision``: which precision a run trains in on this machine, bfloat16 where the hardware has it.

bfloat16 autocast halves the bytes every convolution moves and runs on the bfloat16 units of recent CPUs (x86
AVX512-BF16 and AMX, Arm's BF16 extension) and GPUs; a CPU without them emulates bfloat16 through float32 and
is slower than float32 itself. So ``auto`` picks ``bf16-mixed`` only where it is native, and ``bf16-mixed``
asked for on a CPU without it falls back to ``32``; either way one log line says what was chosen and why.
"""

from __future__ import annotations

import logging
import platform
import subprocess
from functools import cache
from pathlib import Path

import torch

log = logging.getLogger("marsvision")

CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
"""/proc/cpuinfo flags of native bfloat16 arithmetic: x86 AVX512-BF16 and AMX-BF16, Arm's BF16 (FEAT_BF16)."""
CPUINFO = Path("/proc/cpuinfo")
MAC_BF16_SYSCTL = "hw.optional.arm.FEAT_BF16"
BF16_MIXED = "bf16-mixed"
FLOAT32 = "32"


@cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (Linux: its cpuinfo flags; macOS: its sysctl)."""
    if platform.system() == "Darwin":
        result = subprocess.run(["sysctl", "-n", MAC_BF16_SYSCTL], capture_output=True, text=True, check=False)
        return result.stdout.strip() == "1"
    try:
        lines = CPUINFO.read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return bool(CPU_BF16_FLAGS & set(value.split()))
    return False


def device_has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (a CUDA GPU that supports it, or such a CPU)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_native_bf16()


def resolve_precision(precision: str, device: torch.device) -> str:
    """The Lightning precision to train in on ``device``: ``auto`` resolved, ``bf16-mixed`` kept where native.

    ``auto`` becomes ``bf16-mixed`` where :func:`device_has_native_bf16`, else ``32``. ``bf16-mixed`` on a CPU
    without native bfloat16 becomes ``32`` (a warning). Every other value is returned as given.
    """
    if precision == "auto":
        chosen = BF16_MIXED if device_has_native_bf16(device) else FLOAT32
        log.info("marsvision: trainer.precision=auto: %s on this %s", chosen, device.type)
        return chosen
    if precision == BF16_MIXED and device.type == "cpu" and not cpu_has_native_bf16():
        log.warning("marsvision: this CPU has no native bfloat16 (emulated, it is slower): training in float32")
        return FLOAT32
    return precision
