"""CCT: the feature perturbations, the auxiliary decoder and the method's wiring."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from marsvision.models.pixel_shuffle_decoder import PixelShuffleDecoder
from marsvision.training.cct import CrossConsistencySegmentation, feature_drop, feature_noise, vat_perturbation
from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo

TINY = ["model.head=deeplabv3plus", "model.encoder=resnet18", "semiseg.embedding_dim=8"]


def test_feature_drop_zeroes_the_most_active_locations_only() -> None:
    z = torch.ones(2, 3, 4, 4)
    z[0, :, 1, 2] = 10.0  # one hot spot in image 0; image 1 is flat
    dropped = feature_drop(z, torch.Generator().manual_seed(0))
    assert torch.equal(dropped[0, :, 1, 2], torch.zeros(3))
    assert (dropped[0].sum(dim=0) > 0).sum() == 15  # everything else kept
    assert torch.equal(dropped[1], torch.zeros(3, 4, 4))  # flat: every location reaches γ × max


def test_feature_noise_scales_each_feature_by_one_plus_shared_uniform_noise() -> None:
    z = torch.rand(3, 2, 4, 4) + 0.5
    noisy = feature_noise(z, 0.3, torch.Generator().manual_seed(1))
    factor = noisy / z
    assert ((factor >= 0.7) & (factor <= 1.3)).all()
    torch.testing.assert_close(factor[0], factor[2])  # one draw for the batch
    torch.testing.assert_close(feature_noise(z, 0.0, torch.Generator()), z)


def test_vat_perturbation_has_norm_eps_and_raises_the_divergence_more_than_random() -> None:
    torch.manual_seed(0)
    decoder = PixelShuffleDecoder(in_channels=6, num_classes=3, upscale=2)
    z = torch.randn(2, 6, 4, 4)
    r = vat_perturbation(z, decoder, xi=1e-6, eps=2.0, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(r.flatten(1).norm(dim=1), torch.full((2,), 2.0), rtol=1e-4, atol=1e-4)
    assert all(p.grad is None for p in decoder.parameters())

    def divergence(delta: torch.Tensor) -> float:
        with torch.no_grad():
            clean = decoder(z).softmax(dim=1)
            return float(F.kl_div(decoder(z + delta).log_softmax(dim=1), clean, reduction="batchmean"))

    random = torch.randn(2, 6, 4, 4)
    random = 2.0 * random / random.flatten(1).norm(dim=1).view(2, 1, 1, 1)
    assert divergence(r) > divergence(random)


def test_pixel_shuffle_decoder_upsamples_and_starts_as_nearest_neighbour() -> None:
    decoder = PixelShuffleDecoder(in_channels=5, num_classes=3, upscale=8)
    x = torch.randn(2, 5, 3, 4)
    out = decoder(x)
    assert out.shape == (2, 3, 24, 32)
    # ICNR: the four sub-pixel kernels of each output channel start equal; without biases every 8 × 8 block of
    # the output is then constant (nearest-neighbour upsampling)
    for layer in decoder.layers:
        if isinstance(layer, torch.nn.Conv2d) and layer.out_channels == 12:
            kernels = layer.weight.view(3, 4, -1)
            torch.testing.assert_close(kernels, kernels[:, :1].expand_as(kernels))
            torch.nn.init.zeros_(layer.bias)
    blocks = decoder(x).unfold(2, 8, 8).unfold(3, 8, 8)  # (2, 3, 3, 4, 8, 8)
    torch.testing.assert_close(blocks, blocks[..., :1, :1].expand_as(blocks))
    with pytest.raises(ValueError):
        PixelShuffleDecoder(5, 3, upscale=6)


def test_cct_builds_its_decoders_on_deeplabv3plus_only() -> None:
    config = load_config(None, [*TINY, "cct.vat_decoders=1", "cct.dropout_decoders=0", "cct.feature_drop_decoders=2"])
    module = CrossConsistencySegmentation(config, ClassInfo(["a", "b", "c"]))
    assert module.perturbations == ["vat", "feature-drop", "feature-drop", "feature-noise"] + ["feature-noise"] * 5
    assert len(module.auxiliary_decoders) == 9
    with pytest.raises(ValueError, match="deeplabv3plus"):
        CrossConsistencySegmentation(load_config(None, ["model.encoder=r18_0.25x_sk0"]), ClassInfo(["a", "b"]))
    none = [*TINY, *(f"cct.{k}_decoders=0" for k in ("vat", "dropout", "feature_drop", "feature_noise"))]
    with pytest.raises(ValueError, match="at least one"):
        CrossConsistencySegmentation(load_config(None, none), ClassInfo(["a", "b"]))
