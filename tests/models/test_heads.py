import pytest
import torch

from marsvision.models.heads import AtrousHead, ProjectionHead, ScaleOnlyBatchNorm1d


def test_simclrv2_projection_head_structure() -> None:
    head = ProjectionHead(in_dim=16, out_dim=8)
    keys = set(head.state_dict())
    assert len(head.layers) == 3
    assert "layers.0.linear.bias" not in keys  # BN's shift replaces the bias
    assert {"layers.0.bn.weight", "layers.0.bn.bias", "layers.1.bn.bias"} <= keys
    assert isinstance(head.layers[2].bn, ScaleOnlyBatchNorm1d)
    assert "layers.2.bn.weight" in keys and "layers.2.bn.bias" not in keys  # last BN: scale, no shift
    assert head(torch.randn(4, 16)).shape == (4, 8)
    # in·in + in·in + in·out weights, BN scales/shifts 2·in + 2·in + out
    assert sum(p.numel() for p in head.parameters()) == 16 * 16 * 2 + 16 * 8 + 4 * 16 + 8


def test_last_layer_has_no_relu_and_middle_layers_do() -> None:
    torch.manual_seed(0)
    head = ProjectionHead(in_dim=8, out_dim=8)
    layers = head.forward_layers(torch.randn(32, 8))
    assert len(layers) == 4
    assert (layers[1] >= 0).all() and (layers[2] >= 0).all()
    assert (layers[3] < 0).any()


def test_forward_layers_returns_the_input_and_a_middle_layer() -> None:
    head = ProjectionHead(in_dim=8, out_dim=4, hidden_dim=6)
    h = torch.randn(5, 8)
    upto_one = head.forward_layers(h, upto=1)
    assert len(upto_one) == 2
    assert upto_one[0] is h
    assert upto_one[1].shape == (5, 6)
    assert [head.layer_dim(i) for i in range(4)] == [8, 6, 6, 4]
    torch.testing.assert_close(head.forward_layers(h)[-1], head(h))


def test_simclr_v1_head_is_two_linear_layers_with_biases() -> None:
    head = ProjectionHead.simclr_v1(in_dim=8, out_dim=4)
    assert len(head.layers) == 2
    assert sum(p.numel() for p in head.parameters()) == 8 * 8 + 8 + 8 * 4 + 4
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in head.modules())


def test_projection_head_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="num_layers"):
        ProjectionHead(8, num_layers=0)


def test_atrous_head_parameter_count_by_hand() -> None:
    c, k = 10, 3
    head = AtrousHead(in_channels=c, num_classes=k, channels=4)
    expected = (
        c * 4  # image pool 1×1, no bias
        + c * 4
        + 4
        + 2 * 4  # 1×1 with bias + BN
        + 3 * (9 * c * 4 + 2 * 4)  # three dilated 3×3, no bias, + BN
        + 5 * 4 * 4
        + 2 * 4  # projection 1×1 of the concatenation, no bias, + BN
        + 4 * k  # classifier, no bias
    )
    assert sum(p.numel() for p in head.parameters()) == expected


@pytest.mark.parametrize("relu", [False, True])
def test_atrous_head_output_size(relu: bool) -> None:
    head = AtrousHead(in_channels=16, num_classes=6, channels=8, relu=relu)
    assert head(torch.randn(2, 16, 4, 5), (64, 80)).shape == (2, 6, 64, 80)


def test_paper_variant_is_affine_and_relu_variant_is_not() -> None:
    # Without ReLU the paper's block (BN in eval mode, linear resize) is an affine map of the features:
    # f(a) + f(b) - f(0) = f(a + b). With ReLUs that identity breaks.
    torch.manual_seed(0)
    a, b, zero = torch.randn(1, 8, 3, 3), torch.randn(1, 8, 3, 3), torch.zeros(1, 8, 3, 3)
    for relu, affine in ((False, True), (True, False)):
        head = AtrousHead(in_channels=8, num_classes=3, channels=4, relu=relu).eval()
        with torch.no_grad():
            lhs = head(a, (12, 12)) + head(b, (12, 12)) - head(zero, (12, 12))
            rhs = head(a + b, (12, 12))
        assert torch.allclose(lhs, rhs, atol=1e-5) is affine


def test_classify_then_resize_equals_resize_then_classify() -> None:
    torch.manual_seed(0)
    head = AtrousHead(in_channels=8, num_classes=3, channels=4).eval()
    features = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        logits = head(features, (32, 32))
        # The paper's order: resize the 256-channel (here 4) map, then the 1×1 classifier.
        h, w = features.shape[-2:]
        pooled = head.pool_conv(features.mean(dim=(-2, -1), keepdim=True)).expand(-1, -1, h, w)
        branches = [pooled, head.bn1x1(head.conv1x1(features))]
        branches += [bn(conv(features)) for conv, bn in zip(head.atrous, head.atrous_bn, strict=True)]
        x = head.project_bn(head.project(torch.cat(branches, dim=1)))
        x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        torch.testing.assert_close(logits, head.classifier(x), atol=1e-5, rtol=1e-5)
