"""Load pretrained weights into an encoder from a file: torchvision, MoCo v2, marsvision, SimCLRv2.

Files are read with ``torch.load(path, map_location="cpu", weights_only=True)`` only (``.npz`` dumps of
SimCLRv2 TF checkpoints with ``numpy.load``). Nothing is ever downloaded.

Kinds:
    * ``torchvision``: a plain state dict of a torchvision classifier (``fc.*`` / ``classifier.*`` dropped);
    * ``mocov2``: a MoCo v2 checkpoint ``{"state_dict": {"module.encoder_q.<key>": ...}}`` (query encoder
      kept, its MLP ``fc.*`` dropped);
    * ``marsvision``: a Lightning checkpoint ``{"state_dict": {"encoder.<key>": ...}}`` (also with a longer
      prefix ending in ``encoder.``, e.g. ``model.encoder.``) or an exported encoder file
      ``{"encoder_name": str, "state_dict": {...}}``;
    * ``simclrv2``: the output of ``marsvision.models.convert_tf`` (a ``.pt`` with ``encoder_name`` and
      ``state_dict``) or an ``.npz`` dump of the TF variables, converted on the fly;
    * ``auto``: decided from the file (suffix ``.npz``, then the keys).

An encoder with one input channel takes 3-channel weights by summing its first conv over the input channels
(a gray image replicated to RGB gives the same response).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from torch import Tensor, nn

from marsvision.atomic import atomic_torch_save
from marsvision.models.convert_tf import convert_simclrv2, load_tf_variables
from marsvision.torchfiles import safe_torch_load

WeightsKind = Literal["auto", "torchvision", "mocov2", "marsvision", "simclrv2"]

_log = logging.getLogger(__name__)
_CLASSIFIER_PREFIXES = ("fc.", "classifier.")


@dataclass(frozen=True)
class LoadReport:
    """What ``load_encoder_weights`` did: the keys loaded, left missing, ignored, and adapted to 1 channel."""

    path: str
    kind: str
    loaded: list[str]
    missing: list[str]
    unexpected: list[str]
    dropped: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)


def _read(path: Path) -> object:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    if path.suffix == ".npz":
        return load_tf_variables(path)
    return safe_torch_load(path, what="weights file")


def _as_mapping(path: Path, obj: object) -> Mapping[str, object]:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a dict, found {type(obj).__name__}")
    return obj


def _detect(path: Path, file_obj: object) -> str:
    if path.suffix == ".npz":
        return "simclrv2"
    obj = _as_mapping(path, file_obj)
    if "encoder_name" in obj:
        return "marsvision"
    inner = obj.get("state_dict")
    if isinstance(inner, Mapping):
        if any(str(k).startswith("module.encoder_q.") for k in inner):
            return "mocov2"
        return "marsvision"
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        return "torchvision"
    raise ValueError(f"{path}: cannot tell the checkpoint kind; pass kind= one of {KINDS[1:]}")


def _strip_encoder_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out = {}
    for key, value in state.items():
        if key.startswith("encoder."):
            out[key[len("encoder.") :]] = value
        elif ".encoder." in key:
            out[key.split(".encoder.", 1)[1]] = value
    return out


def _wrapped_state(path: Path, checkpoint: Mapping[str, object], kind: str) -> Mapping[str, Tensor]:
    """The ``state_dict`` inside a checkpoint dict (every kind but torchvision's wraps its weights so)."""
    inner = checkpoint.get("state_dict")
    if not isinstance(inner, Mapping):
        raise ValueError(f"{path}: no 'state_dict' in the file (kind={kind})")
    return inner


def _torchvision_state(path: Path, obj: object) -> tuple[dict[str, Tensor], list[str]]:
    flat = cast(Mapping[str, Tensor], _as_mapping(path, obj))
    dropped = [k for k in flat if k.startswith(_CLASSIFIER_PREFIXES)]
    return {k: v for k, v in flat.items() if k not in dropped}, dropped


def _mocov2_state(path: Path, obj: object) -> tuple[dict[str, Tensor], list[str]]:
    prefix = "module.encoder_q."
    inner = _wrapped_state(path, _as_mapping(path, obj), "mocov2")
    query = {k[len(prefix) :]: v for k, v in inner.items() if k.startswith(prefix)}
    dropped = [k for k in query if k.startswith("fc.")]
    return {k: v for k, v in query.items() if k not in dropped}, dropped


def _marsvision_state(path: Path, obj: object) -> tuple[dict[str, Tensor], list[str]]:
    checkpoint = _as_mapping(path, obj)
    inner = _wrapped_state(path, checkpoint, "marsvision")
    if "encoder_name" in checkpoint:  # an exported encoder: its keys are the encoder's
        return dict(inner), []
    return _strip_encoder_prefix(inner), []


def _simclrv2_state(path: Path, obj: object) -> tuple[dict[str, Tensor], list[str]]:
    if path.suffix == ".npz":
        obj = convert_simclrv2(obj)  # type: ignore[arg-type]
    checkpoint = _as_mapping(path, obj)
    inner = _wrapped_state(path, checkpoint, "simclrv2")
    if "encoder_name" not in checkpoint:
        raise ValueError(f"{path}: a simclrv2 file needs 'encoder_name' and 'state_dict' (run convert_tf first)")
    return dict(inner), []


_STATE_READERS: dict[str, Callable[[Path, object], tuple[dict[str, Tensor], list[str]]]] = {
    "torchvision": _torchvision_state,
    "mocov2": _mocov2_state,
    "marsvision": _marsvision_state,
    "simclrv2": _simclrv2_state,
}
"""Each file kind's reader: (the encoder's state dict from the file, keys deliberately dropped)."""
KINDS: tuple[str, ...] = ("auto", *_STATE_READERS)


def _adapt_first_conv(state: dict[str, Tensor], target: Mapping[str, Tensor]) -> list[str]:
    """Sum 3-channel conv kernels over their inputs where the encoder's conv takes one channel."""
    adapted = []
    for key, value in state.items():
        want = target.get(key)
        if (
            want is not None
            and value.ndim == 4
            and want.ndim == 4
            and want.shape[1] == 1
            and value.shape[1] != 1
            and value.shape[0] == want.shape[0]
            and value.shape[2:] == want.shape[2:]
        ):
            state[key] = value.sum(dim=1, keepdim=True)  # (out, 3, k, k) → (out, 1, k, k)
            adapted.append(key)
    return adapted


def load_encoder_weights(
    encoder: nn.Module, path: str | Path, kind: WeightsKind = "auto", strict: bool = False
) -> LoadReport:
    """Load the weights in ``path`` into ``encoder`` and report what matched.

    Args:
        encoder: an encoder from ``create_encoder``.
        path: the weights file.
        kind: the file kind (module docstring), or "auto".
        strict: raise if any encoder key is missing or any file key unexpected.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown kind, unreadable layout, shape mismatches, no key in common with the encoder
            (the message names the file), or (``strict``) missing/unexpected keys.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown weights kind {kind!r}; choose from {KINDS}")
    file = Path(path)
    obj = _read(file)
    resolved = _detect(file, obj) if kind == "auto" else kind
    state, dropped = _STATE_READERS[resolved](file, obj)
    target = encoder.state_dict()
    adapted = _adapt_first_conv(state, target)
    matched = sorted(set(state) & set(target))
    if not matched:
        raise ValueError(
            f"{file}: no weights match the encoder ({resolved} layout); file keys start with "
            f"{sorted(state)[:3]}, the encoder expects {sorted(target)[:3]}"
        )
    mismatched = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
        for k in matched
        if state[k].shape != target[k].shape
    ]
    if mismatched:
        raise ValueError(f"{file}: shape mismatch (file vs encoder) for {len(mismatched)} keys: {mismatched[:5]}")
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    if strict and (missing or unexpected):
        raise ValueError(f"{file}: missing keys {missing[:10]}, unexpected keys {unexpected[:10]}")
    encoder.load_state_dict({k: state[k] for k in matched}, strict=False)
    if missing or unexpected:
        _log.warning(
            "%s: %d missing keys %s, %d unexpected keys %s",
            file,
            len(missing),
            missing[:5],
            len(unexpected),
            unexpected[:5],
        )
    return LoadReport(str(file), resolved, matched, missing, unexpected, dropped, adapted)


def load_projection_head_weights(head: nn.Module, path: str | Path) -> None:
    """Load the SimCLR projection head g stored next to an encoder's weights into ``head`` (all keys must fit).

    Read from: an exported encoder or a converted SimCLRv2 checkpoint (``{"projection_head": {...}}``), or a
    marsvision pretraining checkpoint (``state_dict`` keys ``projection_head.*``). A task head that sits on a
    middle layer of g (SimCLRv2 style) fine-tunes these layers.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no projection head, or one of another shape (the message names the file).
    """
    file = Path(path)
    obj = _read(file)
    if file.suffix == ".npz":
        obj = convert_simclrv2(obj)  # type: ignore[arg-type]
    state: Mapping[str, Tensor] | None = None
    if isinstance(obj, Mapping) and isinstance(obj.get("projection_head"), Mapping):
        state = obj["projection_head"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        prefix = "projection_head."
        found = {k[len(prefix) :]: v for k, v in obj["state_dict"].items() if str(k).startswith(prefix)}
        state = found or None
    if state is None:
        raise ValueError(
            f"{file}: no projection head in the file; model.projection_layer > 0 needs g's weights (a marsvision "
            "SimCLR run's encoder.pt or checkpoint, or a converted SimCLRv2 checkpoint with head_contrastive)"
        )
    try:
        head.load_state_dict(dict(state), strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"{file}: its projection head does not fit model.projection_layers/projection_dim: {error}"
        ) from error


def export_encoder(
    encoder: nn.Module, encoder_name: str, path: str | Path, projection_head: nn.Module | None = None
) -> Path:
    """Save ``{"encoder_name", "state_dict"}`` atomically (a pretraining run's ``encoder.pt``).

    The SimCLR projection head's weights go under ``"projection_head"`` when given. This is the exported-encoder
    file that ``load_encoder_weights`` (and ``load_projection_head_weights``) read.
    """
    exported: dict[str, object] = {"encoder_name": encoder_name, "state_dict": encoder.state_dict()}
    if projection_head is not None:
        exported["projection_head"] = projection_head.state_dict()
    return atomic_torch_save(exported, path)


__all__ = [
    "KINDS",
    "LoadReport",
    "WeightsKind",
    "export_encoder",
    "load_encoder_weights",
    "load_projection_head_weights",
]
