"""Reading PyTorch files (checkpoints, weights) without unpickling code, naming the file in every error.

At the bottom floor next to :mod:`marsvision.atomic` (which writes them), so that models and training read
them the same way.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any


class RefusedPickleError(pickle.UnpicklingError, ValueError):
    """A file holds pickled objects that weights-only loading refuses (a ``ValueError`` naming the file)."""


def load_problem(path: Path, error: Exception) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in a few words (not torch's advice to unpickle anyway)."""
    if isinstance(error, pickle.UnpicklingError):
        return "holds pickled Python objects beyond tensors and containers: refused (weights only; they could run code)"
    if path.is_file() and path.stat().st_size == 0:
        return "empty file (0 bytes)"
    first = str(error).split(". ")[0].strip()
    return f"truncated or not a PyTorch file ({type(error).__name__}{': ' + first if first else ''})"


def safe_torch_load(path: str | Path, map_location: Any = "cpu", what: str = "checkpoint") -> Any:
    """``torch.load`` restricted to tensors and plain containers (``weights_only=True``), with the path in errors.

    Raises:
        FileNotFoundError: ``path`` is missing or a folder.
        ValueError: the file is torn, empty or not a PyTorch file (``what`` names it); a file with pickled objects
            raises :class:`RefusedPickleError`, also a ``pickle.UnpicklingError``.
    """
    import torch  # here, not at the top: the ONNX prediction path imports marsvision without PyTorch

    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path}: a folder, not a {what} file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file does not exist")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # the refusal below says it all
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for torn or foreign files
        kind = RefusedPickleError if isinstance(error, pickle.UnpicklingError) else ValueError
        raise kind(f"{path}: not a loadable {what}: {load_problem(path, error)}") from error
