"""SimCLR pretraining throughput: marsvision vs lightly, images/s (goal: end to end ≥ 1.4× lightly's).

Same backbone (``create_encoder`` of the recipe, seeded alike), batch, view size, projection size,
temperature, optimiser (the recipe's: Adam, or LARS from lightly; same lr and weight decay) and thread count:

- ``marsvision``: ``SimCLRModule`` (``ProjectionHead`` + ``nt_xent_loss``), once under marsvision's own trainer
  (``build_trainer``) and once under the bare Lightning trainer;
- ``lightly``: the backbone + ``lightly.models.modules.SimCLRProjectionHead`` + ``lightly.loss.NTXentLoss``
  written the way lightly's examples write it.

``step``: training throughput with both views already in memory (timed per step as in ``overhead``), lightly's
module under the same bare trainer. ``augment``: views/s of each library's own SimCLR view transform on one
1-channel image of the recipe's size, set to the same crop scale, jitter (brightness/contrast only for one
channel), blur probability and flip (one thread, as in a DataLoader worker). ``end_to_end`` (the goal): decode,
views and step, timed over the second of two epochs on a synthetic folder of 256² JPEGs; marsvision through its
own pipeline (:mod:`benchmarks.pipelines`) as it was before issue #16 (``marsvision_today``) and with its fast
switches (``marsvision_fast``: bf16 where native, batched views, memory cache, channels_last); lightly
decoding each file with PIL (resized to the recipe's image size, as marsvision's reader does), its
``SimCLRTransform`` in the loader and a plain training loop, under the precision ``marsvision_fast`` trained in
(bfloat16 autocast where native).
``end_to_end_speedup`` = marsvision_fast ÷ lightly images/s; ``speedup_vs_today`` = fast ÷ today (goal ≥ 2).
"""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path
from typing import Any, cast

import torch

from benchmarks.common import device_for, lightning_step_times, pick

GOAL = 1.4
"""marsvision's end-to-end images/s ÷ lightly's (issue #16)."""


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


def lightly_transform(config: Any) -> Any:
    """lightly's ``SimCLRTransform`` set as marsvision's SimCLR views: crop scale, jitter strength and probability
    (brightness and contrast only: one channel), blur probability, flip; no normalisation."""
    from lightly.transforms import SimCLRTransform

    return SimCLRTransform(
        input_size=config.simclr.crop_size or config.data.image_size,
        cj_prob=config.simclr.jitter_probability,
        cj_strength=config.simclr.jitter_strength,
        cj_sat=0.0,
        cj_hue=0.0,
        min_scale=config.simclr.crop_scale_min,
        random_gray_scale=0.0,
        gaussian_blur=config.simclr.blur_probability,
        normalize=None,
    )


def augment_throughput(size: str, config: Any) -> dict:
    import numpy as np
    from PIL import Image

    from marsvision.data.views import view_transform
    from marsvision.training.stream_views import simclr_view

    side = config.simclr.crop_size or config.data.image_size
    source = config.data.image_size
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (source, source), dtype=np.uint8)
    tensor = torch.from_numpy(pixels).float().div(255).unsqueeze(0)  # (1, H, W) in [0, 1], as the reader gives
    pil = Image.fromarray(pixels, mode="L")
    ours = view_transform(simclr_view(config))
    theirs = lightly_transform(config)
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


class DecodedViews(torch.utils.data.Dataset):
    """lightly's side of the end-to-end pipeline: each item decoded from its file (PIL, grayscale, resized to the
    recipe's image size as marsvision's reader does) and given to lightly's ``SimCLRTransform`` (two views)."""

    def __init__(self, files: list[Path], side: int, transform: Any) -> None:
        self.files, self.side, self.transform = files, side, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Any:
        from PIL import Image

        with Image.open(self.files[index]) as picture:
            image = picture.convert("L").resize((self.side, self.side), Image.Resampling.BILINEAR)
        return self.transform(image)


def lightly_end_to_end(config: Any, folder: Path, precision: str, steps: int) -> dict:
    """lightly's pipeline as its documentation writes it, in a plain loop: decode, ``SimCLRTransform``,
    backbone + ``SimCLRProjectionHead`` + ``NTXentLoss``, torch's Adam; the second epoch's steps are timed."""
    from benchmarks.common import autocast

    torch.manual_seed(config.seed)
    transform = lightly_transform(config)
    files = sorted((folder / "images").glob("*.jpg"))
    loader = torch.utils.data.DataLoader(
        DecodedViews(files, config.data.image_size, transform),
        batch_size=config.data.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=config.data.num_workers,
    )
    model = lightly_module(config)
    optimizer = model.configure_optimizers()
    device = torch.device("cpu")
    starts: list[float] = []
    for epoch in range(2):
        for index, (view0, view1) in enumerate(loader):
            if index == steps:
                break
            if epoch == 1:
                starts.append(time.perf_counter())
            optimizer.zero_grad()
            with autocast(device, "32" if precision == "32-true" else precision):
                loss = model.training_step({"views": [view0, view1]}, index)
            loss.backward()
            optimizer.step()
    seconds = statistics.median(after - before for before, after in itertools.pairwise(starts))
    return {"precision": precision, "step_ms": 1e3 * seconds, "images_per_s": config.data.batch_size / seconds}


def end_to_end(size: str, device: torch.device) -> dict:
    """Decode + views + step: marsvision's pipeline before issue #16 (``today``) and with its fast switches, and
    lightly's pipeline at the precision marsvision's fast switches chose, on the same synthetic folder."""
    import tempfile

    from benchmarks.pipelines import describe, kind_config, run_pipeline, steps_for, switches_for, synthetic_folder

    steps = steps_for(size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = synthetic_folder("simclr", size, Path(tmp), steps)
        cache = Path(tmp) / "cache"
        switches = switches_for("simclr")
        today = run_pipeline(kind_config("simclr", size, folder, cache, steps, switches["today"]))
        fast_config = kind_config("simclr", size, folder, cache, steps, switches["fast"])
        fast = run_pipeline(fast_config)
        lightly = lightly_end_to_end(fast_config, folder, fast["precision"], steps) if device.type == "cpu" else None
    result: dict[str, Any] = {
        **describe(fast_config),
        "view_side": fast_config.simclr.crop_size or fast_config.data.image_size,
        "marsvision_today": today,
        "marsvision_fast": fast,
        "speedup_vs_today": fast["images_per_s"] / today["images_per_s"],
    }
    if lightly is not None:
        result["lightly"] = lightly
        result["end_to_end_speedup"] = fast["images_per_s"] / lightly["images_per_s"]
        result["end_to_end_speedup_today"] = today["images_per_s"] / lightly["images_per_s"]
    return result


def run(size: str) -> dict:
    device = device_for(size)
    config = _config(size, device)
    step = step_throughput(size, config, device)
    augment = augment_throughput(size, config)
    pipeline = end_to_end(size, device)
    speedup = pipeline.get("end_to_end_speedup")
    return {
        "device": device.type,
        "recipe": config.name,
        "encoder": config.model.encoder,
        "projection": [config.model.projection_dim, config.model.projection_layers],
        "precision": config.trainer.precision,
        "optimizer": config.optim.name,
        "step": step,
        "augment": augment,
        "end_to_end": pipeline,
        "end_to_end_speedup": speedup,
        "goal": f"end_to_end_speedup >= {GOAL}",
        "goal_met": speedup is not None and speedup >= GOAL,
    }
