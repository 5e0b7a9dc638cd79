from pathlib import Path

import numpy as np
import pytest
import torch

from marsvision.models.convert_tf import convert_simclrv2, infer_simclrv2_config, load_tf_variables
from marsvision.models.heads import ProjectionHead
from marsvision.models.simclrv2_resnet import SimCLRv2ResNet
from marsvision.models.weights import load_encoder_weights

BLOCKS_R50 = (3, 4, 6, 3)
WIDTH = 0.125


def _tf_name(base: str, index: int) -> str:
    return base if index == 0 else f"{base}_{index}"


def tf1_variables(sk: bool, in_channels: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random variables named and shaped as the TF1 SimCLRv2 code creates them, in its creation order.

    Written from the TF code's structure (stem, then per block: projection, 1×1, 3×3 or SK, 1×1), independent
    of the PyTorch module layout.
    """
    rng = np.random.default_rng(seed)
    convs: list[tuple[int, int, int, int]] = []  # HWIO
    bns: list[int] = []

    def conv(k: int, cin: int, cout: int) -> None:
        convs.append((k, k, cin, cout))

    base = int(64 * WIDTH)
    if sk:
        conv(3, in_channels, base // 2)
        bns.append(base // 2)
        conv(3, base // 2, base // 2)
        bns.append(base // 2)
        conv(3, base // 2, base)
    else:
        conv(7, in_channels, base)
    bns.append(base)
    cin = base
    for group, blocks in enumerate(BLOCKS_R50):
        f = int(64 * 2**group * WIDTH)
        for b in range(blocks):
            if b == 0:
                conv(1, cin, 4 * f)
                bns.append(4 * f)
            conv(1, cin, f)
            bns.append(f)
            if sk:
                mid = max(f // 16, 32)
                conv(3, f, 2 * f)
                bns.append(2 * f)
                conv(1, f, mid)
                bns.append(mid)
                conv(1, mid, 2 * f)
            else:
                conv(3, f, f)
                bns.append(f)
            conv(1, f, 4 * f)
            bns.append(4 * f)
            cin = 4 * f
    variables: dict[str, np.ndarray] = {"global_step": np.array(1000)}
    for i, shape in enumerate(convs):
        kernel = rng.normal(0, 1 / np.sqrt(np.prod(shape[:3])), shape).astype(np.float32)
        variables[f"base_model/{_tf_name('conv2d', i)}/kernel"] = kernel
        variables[f"base_model/{_tf_name('conv2d', i)}/kernel/Momentum"] = np.zeros(shape, np.float32)
    for i, c in enumerate(bns):
        prefix = f"base_model/{_tf_name('batch_normalization', i)}"
        variables[f"{prefix}/gamma"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        variables[f"{prefix}/beta"] = rng.normal(0, 0.1, c).astype(np.float32)
        variables[f"{prefix}/moving_mean"] = rng.normal(0, 0.1, c).astype(np.float32)
        variables[f"{prefix}/moving_variance"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
    dims = [cin, cin, cin, 16]  # SimCLRv2 head: 3 layers, hidden = feature width, out 16 (128 in the paper)
    for j in range(3):
        prefix = f"head_contrastive/nl_{j}"
        variables[f"{prefix}/dense/kernel"] = rng.normal(0, 0.1, (dims[j], dims[j + 1])).astype(np.float32)
        variables[f"{prefix}/batch_normalization/gamma"] = rng.uniform(0.5, 1.5, dims[j + 1]).astype(np.float32)
        if j < 2:  # the last layer's BN has center=False
            variables[f"{prefix}/batch_normalization/beta"] = rng.normal(0, 0.1, dims[j + 1]).astype(np.float32)
        variables[f"{prefix}/batch_normalization/moving_mean"] = np.zeros(dims[j + 1], np.float32)
        variables[f"{prefix}/batch_normalization/moving_variance"] = np.ones(dims[j + 1], np.float32)
    variables["head_supervised/linear_layer/dense/kernel"] = rng.normal(0, 0.1, (cin, 10)).astype(np.float32)
    variables["head_supervised/linear_layer/dense/bias"] = rng.normal(0, 0.1, 10).astype(np.float32)
    return variables


def np_conv(x: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    """TF conv2d_fixed_padding in NHWC numpy: pad (k-1)//2 before and the rest after, VALID conv."""
    k = kernel.shape[0]
    before, after = (k - 1) // 2, (k - 1) - (k - 1) // 2
    x = np.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))
    out_h = (x.shape[1] - k) // stride + 1
    out_w = (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]), np.float64)
    for i in range(k):
        for j in range(k):
            patch = x[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride, :]
            out += patch @ kernel[i, j]
    return out


def np_bn_relu(x: np.ndarray, variables: dict[str, np.ndarray], index: int, relu: bool = True) -> np.ndarray:
    prefix = f"base_model/{_tf_name('batch_normalization', index)}"
    y = (x - variables[f"{prefix}/moving_mean"]) / np.sqrt(variables[f"{prefix}/moving_variance"] + 1e-5)
    y = y * variables[f"{prefix}/gamma"] + variables[f"{prefix}/beta"]
    return np.maximum(y, 0) if relu else y


def np_max_pool_same(x: np.ndarray) -> np.ndarray:
    """TF max_pooling2d(3, 2, 'SAME') for even sizes: one padding row/column at the end."""
    x = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=-np.inf)
    out_h, out_w = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
    windows = [x[:, i : i + 2 * out_h : 2, j : j + 2 * out_w : 2] for i in range(3) for j in range(3)]
    return np.max(windows, axis=0)


@pytest.mark.parametrize(("sk", "in_channels"), [(False, 3), (True, 3), (True, 1)])
def test_converted_stem_matches_numpy_tf_semantics(sk: bool, in_channels: int) -> None:
    variables = tf1_variables(sk, in_channels)
    converted = convert_simclrv2(variables)
    assert converted["encoder_name"] == f"r50_{WIDTH:g}x_sk{int(sk)}"
    model = SimCLRv2ResNet(50, WIDTH, sk, in_channels=in_channels).eval()
    model.load_state_dict(converted["state_dict"], strict=True)

    x = np.random.default_rng(1).random((2, 16, 16, in_channels)).astype(np.float32)  # NHWC
    kernel = lambda i: variables[f"base_model/{_tf_name('conv2d', i)}/kernel"]  # noqa: E731
    if sk:
        y = np_bn_relu(np_conv(x, kernel(0), 2), variables, 0)
        y = np_bn_relu(np_conv(y, kernel(1), 1), variables, 1)
        y = np_bn_relu(np_conv(y, kernel(2), 1), variables, 2)
    else:
        y = np_bn_relu(np_conv(x, kernel(0), 2), variables, 0)
    expected = np_max_pool_same(y).transpose(0, 3, 1, 2)  # NHWC → NCHW
    with torch.no_grad():
        got = model.stem(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sk", [False, True])
def test_every_conv_and_bn_lands_in_the_right_module(sk: bool) -> None:
    variables = tf1_variables(sk, 3)
    model = SimCLRv2ResNet(50, WIDTH, sk)
    model.load_state_dict(convert_simclrv2(variables)["state_dict"], strict=True)
    last = len([n for n in variables if n.endswith("/kernel") and "conv2d" in n and "Momentum" not in n]) - 1
    tf_last = variables[f"base_model/conv2d_{last}/kernel"]
    # The last conv of the TF graph is the last block's expanding 1×1: check it by applying both.
    x = np.random.default_rng(2).random((1, 2, 2, tf_last.shape[2])).astype(np.float32)
    with torch.no_grad():
        got = model.layer4[2].conv3(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(got.numpy(), np_conv(x, tf_last, 1).transpose(0, 3, 1, 2), rtol=1e-4, atol=1e-5)
    # The first projection shortcut is the second conv after the stem's (TF creates the shortcut first).
    first_block = 3 if sk else 1
    torch.testing.assert_close(
        model.layer1[0].shortcut.conv.weight,
        torch.from_numpy(variables[f"base_model/conv2d_{first_block}/kernel"].transpose(3, 2, 0, 1).copy()),
    )
    if sk:  # block 1 of group 1: conv1, SK conv, fc1, fc2, conv3 follow the shortcut
        fc2 = variables[f"base_model/conv2d_{first_block + 4}/kernel"]
        torch.testing.assert_close(model.layer1[0].conv2.fc2.weight, torch.from_numpy(fc2.transpose(3, 2, 0, 1).copy()))
    bns = sum(1 for n in variables if n.startswith("base_model/batch_normalization") and n.endswith("/gamma"))
    bn_last = variables[f"base_model/batch_normalization_{bns - 1}/moving_variance"]
    torch.testing.assert_close(model.layer4[2].bn3.running_var, torch.from_numpy(bn_last))


def test_converted_sk_conv_matches_numpy_tf_semantics() -> None:
    """The first SK conv (group 1, block 0), eval mode, against the TF code's sk_conv2d written in numpy."""
    variables = tf1_variables(True, 3)
    model = SimCLRv2ResNet(50, WIDTH, sk=True).eval()
    model.load_state_dict(convert_simclrv2(variables)["state_dict"], strict=True)
    # TF creation order: stem convs 0-2 / BNs 0-2, shortcut conv 3 / BN 3, conv1 4 / BN 4, then the SK conv:
    # conv 5 → BN 5 → ReLU, fc1 conv 6 → BN 6 → ReLU, fc2 conv 7.
    kernel = lambda i: variables[f"base_model/conv2d_{i}/kernel"]  # noqa: E731
    f = kernel(5).shape[3] // 2
    x = np.random.default_rng(3).normal(size=(2, 6, 6, kernel(5).shape[2])).astype(np.float32)
    streams = np_bn_relu(np_conv(x, kernel(5), 1), variables, 5)
    a, b = streams[..., :f], streams[..., f:]  # tf.split along channels
    pooled = (a + b).mean(axis=(1, 2), keepdims=True)
    mixing = np_conv(np_bn_relu(np_conv(pooled, kernel(6), 1), variables, 6), kernel(7), 1)
    wa, wb = mixing[..., :f], mixing[..., f:]
    softmax_a = 1 / (1 + np.exp(wb - wa))
    expected = (a * softmax_a + b * (1 - softmax_a)).transpose(0, 3, 1, 2)
    with torch.no_grad():
        got = model.layer1[0].conv2(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_heads_are_converted() -> None:
    variables = tf1_variables(True, 3)
    converted = convert_simclrv2(variables)
    head = ProjectionHead(256, out_dim=16, num_layers=3)
    head.load_state_dict(converted["projection_head"], strict=True)
    torch.testing.assert_close(
        head.layers[2].linear.weight, torch.from_numpy(variables["head_contrastive/nl_2/dense/kernel"].T.copy())
    )
    supervised = converted["supervised_head"]
    assert supervised["weight"].shape == (10, 256) and supervised["bias"].shape == (10,)


def test_infer_config() -> None:
    config, in_channels = infer_simclrv2_config(tf1_variables(True, 1))
    assert (config.depth, config.width, config.sk, in_channels) == (50, WIDTH, True, 1)


def test_npz_round_trip_and_loading_through_weights(tmp_path: Path) -> None:
    variables = tf1_variables(False, 3)
    path = tmp_path / "r50.npz"
    np.savez(path, **variables)
    assert set(load_tf_variables(path)) == set(variables)
    model = SimCLRv2ResNet(50, WIDTH, sk=False)
    report = load_encoder_weights(model, path)
    assert report.kind == "simclrv2" and not report.missing and not report.unexpected
    converted = tmp_path / "r50.pt"
    torch.save(convert_simclrv2(variables), converted)
    assert load_encoder_weights(SimCLRv2ResNet(50, WIDTH, sk=False), converted, kind="simclrv2").missing == []


def test_incomplete_checkpoint_raises() -> None:
    variables = tf1_variables(False, 3)
    del variables["base_model/batch_normalization_5/gamma"]
    with pytest.raises(ValueError, match="gamma"):
        convert_simclrv2(variables)
    with pytest.raises(ValueError, match="not a SimCLRv2"):
        convert_simclrv2({"global_step": np.array(1)})


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from marsvision.models.convert_tf import main

    np.savez(tmp_path / "in.npz", **tf1_variables(True, 3))
    main([str(tmp_path / "in.npz"), str(tmp_path / "out.pt")])
    assert "r50_0.125x_sk1" in capsys.readouterr().out
    saved = torch.load(tmp_path / "out.pt", weights_only=True)
    SimCLRv2ResNet(50, WIDTH, sk=True).load_state_dict(saved["state_dict"], strict=True)
