"""``trainer.compile``: the method's networks compiled with ``torch.compile`` (inductor), in place.

Each child module of the Lightning module that holds parameters (encoder, heads, an EMA teacher) is compiled with
``nn.Module.compile``: the module stays the same object with the same parameters and ``state_dict`` keys, so
checkpoints, the optimiser's parameter groups, DDP's gradient hooks and the loss code (which stays eager) are
untouched; only the module's forward (and its backward) run as compiled kernels. Inductor needs a C++ compiler
to generate CPU kernels and Triton for CUDA ones; where one is missing the run stays eager and says so once.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil

import torch
from torch import nn

log = logging.getLogger("marsvision")

CXX_ENV = "CXX"
CPU_COMPILERS = ("g++", "clang++", "c++")
"""What inductor looks for to build CPU kernels (``$CXX`` first)."""


def compiler_missing(device: torch.device) -> str | None:
    """Why inductor cannot compile for ``device`` here, or None when it can."""
    if device.type == "cuda":
        return None if importlib.util.find_spec("triton") is not None else "Triton is not installed"
    if device.type != "cpu":
        return f"inductor does not compile for {device.type}"
    candidates = [os.environ[CXX_ENV]] if os.environ.get(CXX_ENV) else list(CPU_COMPILERS)
    if any(shutil.which(name) for name in candidates):
        return None
    return f"no C++ compiler found ({' or '.join(candidates)})"


def compile_networks(module: nn.Module, device: torch.device) -> list[str]:
    """Compile, in place, every child of ``module`` that holds parameters; return their names.

    Nothing is compiled (and one line says why) when inductor cannot build kernels for ``device``.
    """
    reason = compiler_missing(device)
    if reason is not None:
        log.warning("marsvision: trainer.compile: %s; training eagerly", reason)
        return []
    names = []
    for name, child in module.named_children():
        if any(True for _ in child.parameters()):
            child.compile()
            names.append(name)
    return names
