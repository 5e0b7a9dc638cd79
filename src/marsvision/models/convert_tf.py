"""Convert official SimCLRv2 TensorFlow (TF1) checkpoints into marsvision state dicts.

Reading a TF checkpoint needs TensorFlow, which marsvision does not depend on. Dump the variables once, in
an environment that has it::

    import numpy as np, tensorflow as tf
    reader = tf.train.load_checkpoint("r50_2x_sk1/model.ckpt-250228")
    names = reader.get_variable_to_shape_map()
    np.savez("r50_2x_sk1.npz", **{name: reader.get_tensor(name) for name in names})

then ``convert_simclrv2(load_tf_variables("r50_2x_sk1.npz"))`` (or ``load_encoder_weights(encoder,
"r50_2x_sk1.npz", kind="simclrv2")``, or ``python -m marsvision.models.convert_tf in.npz out.pt``).

Variable names (TF1 ``tf.layers`` auto-naming, numbered in creation order)::

    base_model/conv2d[_i]/kernel                                  (kh, kw, in, out)  → (out, in, kh, kw)
    base_model/batch_normalization[_i]/{gamma,beta,moving_mean,moving_variance}
    head_contrastive/nl_{j}/dense/kernel                          (in, out)          → (out, in)
    head_contrastive/nl_{j}/batch_normalization/{gamma,beta,moving_mean,moving_variance}
    head_supervised/linear_layer/dense/{kernel,bias}

The i-th conv / BN in creation order of the TF code maps to the i-th conv / BN of ``tf_creation_order``.
Other variables (``global_step``, optimiser slots such as ``.../Momentum``, EMA copies) are ignored.
TF2-format checkpoints (object-based names) are not supported.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from marsvision.models.simclrv2_resnet import (
    BLOCKS_PER_DEPTH,
    BasicBlock,
    BottleneckBlock,
    SelectiveKernelConv,
    SimCLRv2Config,
    SimCLRv2ResNet,
)

_BASE_RE = re.compile(r"^base_model/(conv2d|batch_normalization)(?:_(\d+))?/(\w+)$")
_HEAD_RE = re.compile(r"^head_contrastive/nl_(\d+)/(dense|batch_normalization)/(\w+)$")
_SUPERVISED_RE = re.compile(r"^head_supervised/linear_layer/dense/(kernel|bias)$")
_BN_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def load_tf_variables(path: str | Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` dump of TF checkpoint variables (name → array)."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def tf_creation_order(model: SimCLRv2ResNet) -> tuple[list[str], list[str]]:
    """Return the model's conv and BN module names in the order the TF1 code creates them.

    Per block the TF code creates the projection shortcut first, then the residual branch; the SK conv
    creates its 2×-wide conv, its BN, the fc1 conv, fc BN and fc2 conv in that order.
    """
    convs: list[str] = []
    bns: list[str] = []
    stem_convs = 3 if model.config.sk else 1
    for k in range(1, stem_convs + 1):
        convs.append(f"stem.conv{k}")
        bns.append(f"stem.bn{k}")
    for g, layer in enumerate((model.layer1, model.layer2, model.layer3, model.layer4), start=1):
        for b, block in enumerate(layer):
            prefix = f"layer{g}.{b}"
            if block.shortcut is not None:
                convs.append(f"{prefix}.shortcut.conv")
                bns.append(f"{prefix}.shortcut.bn")
            convs.append(f"{prefix}.conv1")
            bns.append(f"{prefix}.bn1")
            if isinstance(block, BottleneckBlock) and isinstance(block.conv2, SelectiveKernelConv):
                # TF numbers convs and BNs separately, so only the order within each kind matters.
                convs += [f"{prefix}.conv2.conv", f"{prefix}.conv2.fc1", f"{prefix}.conv2.fc2"]
                bns += [f"{prefix}.conv2.bn", f"{prefix}.conv2.fc_bn"]
            else:
                convs.append(f"{prefix}.conv2")
                bns.append(f"{prefix}.bn2")
            if isinstance(block, BottleneckBlock):
                convs.append(f"{prefix}.conv3")
                bns.append(f"{prefix}.bn3")
            elif not isinstance(block, BasicBlock):
                raise TypeError(f"unexpected block type {type(block).__name__}")
    return convs, bns


def _numbered(
    variables: Mapping[str, np.ndarray],
) -> tuple[dict[int, np.ndarray], dict[int, dict[str, np.ndarray]]]:
    convs: dict[int, np.ndarray] = {}
    bns: dict[int, dict[str, np.ndarray]] = {}
    for name, value in variables.items():
        match = _BASE_RE.match(name)
        if match is None:
            continue
        kind, index, leaf = match.group(1), int(match.group(2) or 0), match.group(3)
        if kind == "conv2d" and leaf == "kernel":
            convs[index] = value
        elif kind == "batch_normalization" and leaf in _BN_NAMES:
            bns.setdefault(index, {})[leaf] = value
    return convs, bns


def infer_simclrv2_config(variables: Mapping[str, np.ndarray]) -> tuple[SimCLRv2Config, int]:
    """Infer (architecture, input channels): SK from the stem kernel size, depth from the conv count."""
    convs, _ = _numbered(variables)
    if not convs:
        raise ValueError("no base_model/conv2d*/kernel variables: not a SimCLRv2 TF1 checkpoint")
    first = convs[0]
    sk = first.shape[0] == 3  # the SK (ResNet-D) stem starts with a 3×3 conv, the standard one with 7×7
    stem = convs[2] if sk else first
    width = stem.shape[3] / 64
    for depth, blocks in BLOCKS_PER_DEPTH.items():
        bottleneck = depth >= 50
        per_block = (5 if sk else 3) if bottleneck else 2
        if len(convs) == (3 if sk else 1) + 4 + per_block * sum(blocks):
            return SimCLRv2Config(depth=depth, width=width, sk=sk), int(first.shape[2])
    raise ValueError(f"cannot infer the depth from {len(convs)} conv kernels")


def _bn_state(prefix: str, values: dict[str, np.ndarray], where: str) -> dict[str, Tensor]:
    state = {}
    for tf_name, torch_name in _BN_NAMES.items():
        if tf_name in values:
            state[f"{prefix}.{torch_name}"] = torch.from_numpy(np.ascontiguousarray(values[tf_name], np.float32))
        elif tf_name != "beta":  # the last projection layer's BN has no shift (center=False)
            raise ValueError(f"{where}: missing {tf_name}")
    state[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return state


def convert_simclrv2(variables: Mapping[str, np.ndarray]) -> dict[str, object]:
    """Convert SimCLRv2 TF1 variables to ``{"encoder_name", "in_channels", "state_dict", ...}``.

    ``state_dict`` loads into ``SimCLRv2ResNet`` with ``strict=True``; ``projection_head`` (if the checkpoint
    has ``head_contrastive``) loads into ``ProjectionHead(feature_channels, out_dim, num_layers=len)``;
    ``supervised_head`` (if present) is ``{"weight": (K, C), "bias": (K,)}``. The result can be saved with
    ``torch.save`` and read by ``load_encoder_weights(..., kind="simclrv2")``.

    Raises:
        ValueError: the variables do not match the inferred architecture (count or shapes).
    """
    config, in_channels = infer_simclrv2_config(variables)
    with torch.device("meta"):
        model = SimCLRv2ResNet(config.depth, config.width, config.sk, in_channels=in_channels)
    expected = model.state_dict()
    conv_names, bn_names = tf_creation_order(model)
    convs, bns = _numbered(variables)
    if sorted(convs) != list(range(len(conv_names))) or sorted(bns) != list(range(len(bn_names))):
        raise ValueError(
            f"{config.name}: expected conv2d 0..{len(conv_names) - 1} and batch_normalization "
            f"0..{len(bn_names) - 1}, found {len(convs)} convs and {len(bns)} BNs"
        )
    state: dict[str, Tensor] = {}
    for index, module in enumerate(conv_names):
        kernel = torch.from_numpy(np.ascontiguousarray(convs[index].transpose(3, 2, 0, 1), np.float32))
        state[f"{module}.weight"] = kernel  # HWIO → OIHW
    for index, module in enumerate(bn_names):
        state.update(_bn_state(module, bns[index], f"base_model/batch_normalization_{index}"))
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{config.name}: {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
    if set(state) != set(expected):
        raise ValueError(f"{config.name}: converted keys differ: {sorted(set(expected) ^ set(state))[:10]}")
    result: dict[str, object] = {"encoder_name": config.name, "in_channels": in_channels, "state_dict": state}
    head = _convert_projection_head(variables)
    if head:
        result["projection_head"] = head
    supervised = {m.group(1): v for n, v in variables.items() if (m := _SUPERVISED_RE.match(n))}
    if supervised:
        result["supervised_head"] = {
            "weight": torch.from_numpy(np.ascontiguousarray(supervised["kernel"].T, np.float32)),
            **({"bias": torch.from_numpy(supervised["bias"].astype(np.float32))} if "bias" in supervised else {}),
        }
    return result


def _convert_projection_head(variables: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
    layers: dict[int, dict[str, np.ndarray]] = {}
    kernels: dict[int, np.ndarray] = {}
    for name, value in variables.items():
        match = _HEAD_RE.match(name)
        if match is None:
            continue
        j, kind, leaf = int(match.group(1)), match.group(2), match.group(3)
        if kind == "dense" and leaf == "kernel":
            kernels[j] = value
        elif kind == "batch_normalization" and leaf in _BN_NAMES:
            layers.setdefault(j, {})[leaf] = value
    state: dict[str, Tensor] = {}
    for j in sorted(kernels):
        state[f"layers.{j}.linear.weight"] = torch.from_numpy(np.ascontiguousarray(kernels[j].T, np.float32))
        state.update(_bn_state(f"layers.{j}.bn", layers.get(j, {}), f"head_contrastive/nl_{j}"))
    return state


def main(argv: list[str] | None = None) -> None:
    """Command line: convert an ``.npz`` dump of a SimCLRv2 TF1 checkpoint to a ``.pt`` file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("npz", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    converted = convert_simclrv2(load_tf_variables(args.npz))
    torch.save(converted, args.out)
    print(f"{args.npz} → {args.out}: {converted['encoder_name']}")


__all__ = ["convert_simclrv2", "infer_simclrv2_config", "load_tf_variables", "main", "tf_creation_order"]


if __name__ == "__main__":
    main()
