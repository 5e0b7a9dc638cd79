"""SimCLR pretraining throughput: marsvision's ``SimCLRModule`` vs lightly's SimCLR, images/s (goal ratio ≥ 1).

Same backbone (``create_encoder`` of the recipe, seeded alike), batch, view size, projection size,
temperature, optimiser (the recipe's: Adam, or LARS from lightly; same lr and weight decay) and thread count:

- ``marsvision``: ``SimCLRModule`` (``ProjectionHead`` + ``nt_xent_loss``), once under marsvision's own trainer
  (``build_trainer``) and once under the bare Lightning trainer;
- ``lightly``: the backbone + ``lightly.models.modules.SimCLRProjectionHead`` + ``lightly.loss.NTXentLoss`` in
  a LightningModule written the way lightly's examples write it, under the same bare trainer.

``step``: training throughput with both views already in memory (timed per step as in ``overhead``).
``augment``: views/s of each library's own SimCLR view transform on one 1-channel image of the recipe's size,
set to the same crop scale, jitter strength (brightness/contrast only for one channel), blur probability
and flip (one thread, as in a DataLoader worker). ``end_to_end``: both in series (``num_workers=0``),
1 / (1/step + 2/augment) images/s. Ratios are marsvision / lightly.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, cast

import torch

from benchmarks.common import device_for, lightning_step_times, pick

GOAL = 1.0


def _config(size: str, device: torch.device) -> Any:
    from marsvision.training.config import load_config

    recipe = pick(size, tiny="demo-simclr", cpu="simclr-ai4mars256-cpu", gpu="simclr-ai4mars")
    overrides = [
        "trainer.progress_bar=false",
        f"trainer.device={'cuda' if device.type == 'cuda' else 'cpu'}",
        "trainer.max_epochs=1",
    ]
    batch = pick(size, tiny=8, cpu=32, gpu=32)  # the recipe's 256 pairs of 512² views do not fit one GPU
    if batch is not None:
        overrides.append(f"data.batch_size={batch}")
    if size == "tiny":
        overrides += ["data.image_size=32"]
    config = load_config(recipe, overrides)
    if device.type == "cpu" or config.trainer.precision not in ("32", "bf16-mixed"):
        config.trainer.precision = "32"
    return config


def lightly_module(config: Any) -> Any:
    import lightning as L
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    from marsvision.models.encoders import create_encoder

    class LightlySimCLR(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = create_encoder(config.model.encoder, in_channels=config.data.channels)
            dim = cast(int, self.backbone.feature_channels)
            self.projection_head = SimCLRProjectionHead(
                dim, dim, config.model.projection_dim, num_layers=config.model.projection_layers
            )
            self.criterion = NTXentLoss(temperature=config.simclr.temperature)

        def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
            x0, x1 = batch["views"][:2]
            z0 = self.projection_head(self.backbone(x0))
            z1 = self.projection_head(self.backbone(x1))
            loss: torch.Tensor = self.criterion(z0, z1)
            return loss

        def configure_optimizers(self) -> Any:
            if config.optim.name == "lars":
                from lightly.utils.lars import LARS

                return LARS(
                    self.parameters(),
                    lr=config.optim.lr,
                    momentum=config.optim.momentum,
                    weight_decay=config.optim.weight_decay,
                )
            return torch.optim.Adam(self.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)

    return LightlySimCLR()


def step_throughput(size: str, config: Any, device: torch.device) -> dict:
    from marsvision.training.pretrain import SimCLRModule

    side = config.simclr.crop_size or config.data.image_size
    n = config.data.batch_size
    generator = torch.Generator().manual_seed(0)
    views = [torch.rand(n, config.data.channels, side, side, generator=generator) for _ in range(2)]
    batch = {"views": views}
    warmup = pick(size, tiny=2, cpu=2, gpu=10)
    steps = pick(size, tiny=3, cpu=5, gpu=30)
    repeats = pick(size, tiny=1, cpu=2, gpu=3)
    times: dict[str, list[float]] = {"marsvision": [], "marsvision_bare_trainer": [], "lightly": []}
    for _ in range(repeats):
        for name in times:
            torch.manual_seed(0)
            module = lightly_module(config) if name == "lightly" else SimCLRModule(config)
            stream_batch = batch if name == "lightly" else {"simclr-views": batch}
            times[name] += lightning_step_times(
                module, config, stream_batch, device, warmup, steps, marsvision=name == "marsvision"
            ).loop
    ips = {name: n / statistics.median(values) for name, values in times.items()}
    return {
        "view_side": side,
        "batch_size": n,
        "step_ms": {name: 1e3 * statistics.median(values) for name, values in times.items()},
        "images_per_s": ips,
        "ratio": ips["marsvision"] / ips["lightly"],
        "ratio_bare_trainer": ips["marsvision_bare_trainer"] / ips["lightly"],
    }


def augment_throughput(size: str, config: Any) -> dict:
    import numpy as np
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    from marsvision.data.views import simclr_view_transform

    side = config.simclr.crop_size or config.data.image_size
    source = config.data.image_size
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (source, source), dtype=np.uint8)
    tensor = torch.from_numpy(pixels).float().div(255).unsqueeze(0)  # (1, H, W) in [0, 1], as the reader gives
    pil = Image.fromarray(pixels, mode="L")
    ours = simclr_view_transform(
        side,
        channels=config.data.channels,
        strength=config.simclr.jitter_strength,
        crop_scale=(config.simclr.crop_scale_min, 1.0),
        blur_prob=config.simclr.blur_probability,
    )
    theirs = SimCLRTransform(
        input_size=side,
        cj_strength=config.simclr.jitter_strength,
        cj_sat=0.0,
        cj_hue=0.0,
        min_scale=config.simclr.crop_scale_min,
        random_gray_scale=0.0,
        gaussian_blur=config.simclr.blur_probability,
        normalize=None,
    )
    count = pick(size, tiny=20, cpu=200, gpu=400)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rates = {}
        for name, fn in (("marsvision", lambda: [ours(tensor), ours(tensor)]), ("lightly", lambda: theirs(pil))):
            fn()
            start = time.perf_counter()
            for _ in range(count):
                fn()
            rates[name] = 2 * count / (time.perf_counter() - start)  # views per second
    finally:
        torch.set_num_threads(threads)
    return {
        "source_side": source,
        "view_side": side,
        "views_per_s": rates,
        "ratio": rates["marsvision"] / rates["lightly"],
    }


def run(size: str) -> dict:
    device = device_for(size)
    config = _config(size, device)
    step = step_throughput(size, config, device)
    augment = augment_throughput(size, config)
    end_to_end = {
        name: 1 / (1 / step["images_per_s"][name] + 2 / augment["views_per_s"][name])
        for name in ("marsvision", "lightly")
    }
    ratio = step["ratio"]
    return {
        "device": device.type,
        "recipe": config.name,
        "encoder": config.model.encoder,
        "projection": [config.model.projection_dim, config.model.projection_layers],
        "precision": config.trainer.precision,
        "optimizer": config.optim.name,
        "step": step,
        "augment": augment,
        "end_to_end_images_per_s": end_to_end,
        "end_to_end_ratio": end_to_end["marsvision"] / end_to_end["lightly"],
        "goal": f"step ratio >= {GOAL}",
        "goal_met": ratio >= GOAL,
    }
