import pytest
import torch
from torch import nn

from marsvision.training.config import ConfigError, OptimConfig, load_config
from marsvision.training.optim import build_optimizer, check_backbone_start
from marsvision.training.reproducibility import seed_torch
from marsvision.training.sweep import run_sweep


def _layers() -> tuple[nn.Linear, nn.Linear]:
    torch.manual_seed(0)
    return nn.Linear(3, 4), nn.Linear(4, 2)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_first_adam_step_by_hand(name):
    """Adam's first step is lr · ĝ/(|ĝ| + eps) per element, ĝ = g + wd·p for Adam's L2 on decayed weights only
    (AdamW: p·(1 − lr·wd) first, g unchanged); the backbone moves at backbone_lr, biases never decay."""
    backbone, head = _layers()
    config = OptimConfig(name=name, lr=1e-2, backbone_lr=1e-3, weight_decay=0.5)
    optimizer = build_optimizer(config, list(backbone.parameters()), list(head.parameters()))
    assert optimizer.defaults["fused"] is True  # CPU float parameters take the fused kernel
    before = {p: p.detach().double().clone() for p in [*backbone.parameters(), *head.parameters()]}
    for p in before:
        p.grad = torch.randn_like(p)
    grads = {p: p.grad.double().clone() for p in before}
    optimizer.step()
    for module, lr in ((backbone, 1e-3), (head, 1e-2)):
        for p in module.parameters():
            wd = 0.5 if p.ndim > 1 else 0.0
            g, start = grads[p], before[p]
            if name == "adam":
                g = g + wd * start
            else:
                start = start * (1 - lr * wd)
            expected = start - lr * g / (g.abs() + 1e-8)
            torch.testing.assert_close(p.detach().double(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_a_parameter_whose_first_gradient_comes_late_is_updated(name):
    """Stage-wise training (semi-supervised segmentation) gives the classifier head its first gradient only
    after the encoder has taken steps; the optimiser must then start that head's state."""
    backbone, head = _layers()
    optimizer = build_optimizer(OptimConfig(name=name, lr=0.1), list(backbone.parameters()), list(head.parameters()))
    for p in backbone.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    start = head.weight.detach().clone()
    for p in [*backbone.parameters(), *head.parameters()]:
        p.grad = torch.ones_like(p)
    optimizer.step()
    torch.testing.assert_close(head.weight.detach(), start - 0.1)  # Adam's first step ≈ lr·sign(g); SGD's lr·g


def test_fused_sgd_with_a_late_parameter_matches_torchs_loop_implementation():
    """Zero momentum buffers set up front (for the fused kernel) give the same updates as torch's own SGD."""
    backbone, head = _layers()
    reference_backbone, reference_head = _layers()
    config = OptimConfig(name="sgd", lr=0.1, momentum=0.9)
    fused = build_optimizer(config, list(backbone.parameters()), list(head.parameters()))
    assert fused.defaults["fused"] is True
    references = [*reference_backbone.parameters(), *reference_head.parameters()]
    loop = torch.optim.SGD(references, lr=0.1, momentum=0.9, foreach=False)
    generator = torch.Generator().manual_seed(0)
    for step in range(4):
        pairs = [*zip(backbone.parameters(), reference_backbone.parameters(), strict=True)]
        if step >= 2:  # the head's first gradient comes at the third step
            pairs += zip(head.parameters(), reference_head.parameters(), strict=True)
        for ours, reference in pairs:
            gradient = torch.randn(ours.shape, generator=generator)
            ours.grad, reference.grad = gradient.clone(), gradient.clone()
        fused.step()
        loop.step()
    for ours, reference in zip(
        [*backbone.parameters(), *head.parameters()],
        [*reference_backbone.parameters(), *reference_head.parameters()],
        strict=True,
    ):
        torch.testing.assert_close(ours, reference)


def test_parameters_off_cpu_and_cuda_use_the_loop_implementation():
    layer = nn.Linear(3, 2, device="meta")
    optimizer = build_optimizer(OptimConfig(), list(layer.parameters()), [])
    assert not optimizer.defaults["fused"]


def test_seed_torch_seeds_the_cpu_generator_like_a_fresh_generator():
    seed_torch(1234)
    drawn = torch.rand(5)
    torch.testing.assert_close(drawn, torch.rand(5, generator=torch.Generator().manual_seed(1234)))


def test_a_random_backbone_at_a_near_zero_learning_rate_is_refused_unless_meant():
    config = load_config("cls-ce")  # paper 002: backbone 1e-6 against heads 1e-3, weights given by path
    with pytest.raises(ConfigError, match=r"optim.backbone_lr=1e-06 with model.weights=null .*allow_frozen_random"):
        check_backbone_start(config)
    check_backbone_start(load_config("cls-ce", ["model.weights=/weights/moco_v2.pth"]))
    check_backbone_start(load_config("cls-ce", ["optim.allow_frozen_random_backbone=true"]))
    check_backbone_start(load_config("cls-ce", ["optim.backbone_lr=0.001"]))  # a backbone that learns
    check_backbone_start(load_config("cls-ce", ["optim.backbone_lr=null"]))  # one learning rate for all


def test_table_5_gives_each_backbone_its_own_weights():
    overrides = ["model.weights_by_encoder.resnet18=/w/r18.pth", "model.weights_by_encoder.vgg16=/w/vgg.pth"]
    config = load_config("wang-cls-backbones", overrides)
    assert config.model.initial_weights is None, "resnet50 (the base encoder) has no entry yet"
    assert set(config.sweep.grid["model.encoder"]) >= {"resnet18", "vgg16", "mobilenet_v2", "regnet_x_1_6gf"}
    for encoder, expected in (("resnet18", "/w/r18.pth"), ("vgg16", "/w/vgg.pth")):
        point = load_config("wang-cls-backbones", [*overrides, f"model.encoder={encoder}"])
        assert point.model.initial_weights == expected
        check_backbone_start(point)
    with pytest.raises(ConfigError, match=r"model.weights_by_encoder.resnet34=PATH"):
        check_backbone_start(load_config("wang-cls-backbones", [*overrides, "model.encoder=resnet34"]))


def test_a_sweep_refuses_a_frozen_random_backbone_before_making_its_folder(tmp_path):
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError, match=r"model\.weights_by_encoder\.resnet18"):
        run_sweep("wang-cls-backbones", [], seeds=[0], out=out)
    assert not out.exists()
