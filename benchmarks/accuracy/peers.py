"""Peer pipelines of the accuracy comparison: what a user would write with smp, lightly and torchvision.

Each peer is a short training script around its libraries' documented APIs, with the settings fixed by the issue
(no tuning): the segmentation peer is smp's ``DeepLabV3Plus`` (resnet18, 1 channel, 4 classes) trained with Adam and
cross-entropy; the SimCLR peer pretrains that model's encoder with lightly's ``SimCLRTransform``,
``SimCLRProjectionHead`` and ``NTXentLoss``; the classification peer is torchvision's ``resnet18`` from scratch with
Adam and cosine annealing. Every image is decoded once into memory (resized to ``image_size``) before training,
batches come from a seeded ``DataLoader`` with ``num_workers=0``, and the model of the last epoch predicts the test
images. Everything runs on the CPU; the caller sets the thread count.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torchvision
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from lightly.transforms import SimCLRTransform
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms.functional import to_tensor

SEG_CLASSES = 4
IGNORE_INDEX = 255


@dataclass
class PeerOutput:
    """What a supervised peer returns."""

    predictions: np.ndarray
    """Segmentation: (N, H, W) uint8 class indices at ``image_size``; classification: (N,) int64 class indices."""
    wall_s: float
    """Seconds from the start of the call to the last prediction: decoding, training and prediction."""
    images_seen: dict[str, int]
    """``labeled``: distinct labeled images trained on; ``unlabeled``: distinct unlabeled images used here (0: a
    pretrained ``encoder_state`` is counted by whoever pretrained it)."""


def _seed(seed: int) -> torch.Generator:
    """Seed ``random``, numpy and torch; return a generator seeded alike for the DataLoader's shuffling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _decode(
    paths: Sequence[Path], size: int, mode: str | None, resample: Image.Resampling = Image.Resampling.BILINEAR
) -> list[Image.Image]:
    """Decode every file once into memory, converted to ``mode`` (``None``: as stored) and resized to size×size."""
    images = []
    for path in paths:
        with Image.open(path) as file:
            image = file.convert(mode) if mode is not None else file
            images.append(image.resize((size, size), resample))
    return images


def _stack(images: list[Image.Image]) -> torch.Tensor:
    """(N, C, H, W) float tensor in [0, 1], as ``ToTensor`` gives each image."""
    return torch.stack([to_tensor(image) for image in images])


def _seg_model() -> smp.DeepLabV3Plus:
    """The segmentation peer's model, freshly initialised from torch's global generator."""
    return smp.DeepLabV3Plus("resnet18", encoder_weights=None, in_channels=1, classes=SEG_CLASSES)


def _fit(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    flip_targets: bool,
    cosine: bool = False,
) -> None:
    """Adam on shuffled batches with random horizontal flips (of the label maps too if ``flip_targets``).

    The last batch is dropped when there is more than one batch, so that no batch of one image reaches the
    BatchNorm layers (DeepLabV3+'s pooled ASPP branch fails on it). ``cosine``: cosine annealing of the learning
    rate over the epochs, stepped once per epoch.
    """
    loader = DataLoader(
        TensorDataset(images, targets),
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(images) > batch_size,
        generator=generator,
        num_workers=0,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs) if cosine else None
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            flip = torch.rand(len(x)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            if flip_targets:
                y = torch.where(flip[:, None, None], y.flip(-1), y)
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()


@torch.inference_mode()
def _predict(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Arg-max class of every image (classification) or pixel (segmentation), in eval mode, no TTA."""
    model.eval()
    return torch.cat([model(batch).argmax(dim=1) for batch in images.split(batch_size)])


def train_seg_peer(
    train: list[tuple[Path, Path]],
    test_images: list[Path],
    *,
    seed: int,
    epochs: int,
    image_size: int = 128,
    batch_size: int = 16,
    lr: float = 1e-3,
    encoder_state: dict[str, torch.Tensor] | None = None,
) -> PeerOutput:
    """Train smp's DeepLabV3+ (resnet18, from scratch or from ``encoder_state``) and segment the test images.

    Args:
        train: (JPEG image, PNG label) pairs; labels hold 0–3, and 255 where a pixel is unlabeled.
        test_images: images to segment.
        seed: seed of the initialisation, shuffling and flips.
        epochs: passes over ``train``; the model of the last one predicts.
        image_size: side the images (bilinear) and labels (nearest) are resized to, and of the predictions.
        batch_size: images per step.
        lr: Adam's learning rate.
        encoder_state: ``state_dict`` loaded (strictly) into ``model.encoder`` before training, e.g. from
            ``pretrain_simclr_peer``.

    Returns:
        (N, image_size, image_size) uint8 predictions, the wall time, and the labeled images used.
    """
    start = time.perf_counter()
    generator = _seed(seed)
    images = _stack(_decode([image for image, _ in train], image_size, "L"))
    labels = _decode([label for _, label in train], image_size, None, Image.Resampling.NEAREST)
    targets = torch.from_numpy(np.stack([np.asarray(label) for label in labels])).long()
    model = _seg_model()
    if encoder_state is not None:
        model.encoder.load_state_dict(encoder_state)
    _fit(
        model,
        images,
        targets,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        generator=generator,
        loss_fn=nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX),
        flip_targets=True,
    )
    predictions = _predict(model, _stack(_decode(test_images, image_size, "L")), batch_size)
    return PeerOutput(
        predictions=predictions.to(torch.uint8).numpy(),
        wall_s=time.perf_counter() - start,
        images_seen={"labeled": len({image for image, _ in train}), "unlabeled": 0},
    )


def pretrain_simclr_peer(
    images: list[Path], *, seed: int, epochs: int = 20, image_size: int = 128, batch_size: int = 64, lr: float = 1e-3
) -> tuple[dict[str, torch.Tensor], float]:
    """Pretrain the segmentation peer's encoder with SimCLR as lightly's documentation does it.

    Views come from lightly's own ``SimCLRTransform`` (it fits: every augmentation the issue asks for is one of
    its arguments): random resized crop of scale 0.3–1 to ``image_size``, horizontal flip, brightness and contrast
    jitter (saturation and hue set to 0, meaningless on one channel; no random grayscale), Gaussian blur, and
    ``normalize=None`` so that views stay in [0, 1] like the segmentation peer's inputs. It is given the decoded
    grayscale PIL images, its documented input: its ``ToTensor`` then yields 1-channel views (tensor inputs work
    too, but its ``GaussianBlur`` round-trips every tensor through an 8-bit PIL image and warns that
    ``to_tensor`` is deprecated).

    Args:
        images: the (unlabeled) JPEG images, read as grayscale.
        seed: seed of the initialisation, shuffling and augmentations.
        epochs: passes over ``images``.
        image_size: side the images are resized to, and of the views.
        batch_size: images per step (two views each); the last incomplete batch is dropped.
        lr: Adam's learning rate.

    Returns:
        The ``state_dict`` of ``DeepLabV3Plus(...).encoder`` and the wall time in seconds.

    Raises:
        ValueError: fewer images than one batch.
    """
    if len(images) < batch_size:
        raise ValueError(f"need at least one batch of {batch_size} images, got {len(images)}")
    start = time.perf_counter()
    generator = _seed(seed)
    pictures = _decode(images, image_size, "L")
    transform = SimCLRTransform(
        input_size=image_size, min_scale=0.3, cj_sat=0.0, cj_hue=0.0, random_gray_scale=0.0, normalize=None
    )

    def collate(batch: list[Image.Image]) -> list[torch.Tensor]:
        views = [transform(picture) for picture in batch]  # [[view 0, view 1] of each picture]
        return [torch.stack(side) for side in zip(*views, strict=True)]

    loader: DataLoader[Image.Image] = DataLoader(
        pictures,  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        generator=generator,
        num_workers=0,
        collate_fn=collate,
    )
    encoder = _seg_model().encoder
    head = SimCLRProjectionHead(input_dim=512, hidden_dim=512, output_dim=128)  # resnet18's last map: 512 channels
    criterion = NTXentLoss()  # temperature 0.5
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=lr)
    encoder.train()
    head.train()
    for _ in range(epochs):
        for x0, x1 in loader:
            z0 = head(encoder(x0)[-1].mean(dim=(2, 3)))  # global average pool of the deepest feature map
            z1 = head(encoder(x1)[-1].mean(dim=(2, 3)))
            optimizer.zero_grad()
            criterion(z0, z1).backward()
            optimizer.step()
    return encoder.state_dict(), time.perf_counter() - start


def train_cls_peer(
    train: list[tuple[Path, int]],
    test_images: list[Path],
    *,
    seed: int,
    epochs: int,
    num_classes: int,
    image_size: int = 128,
    batch_size: int = 32,
    lr: float = 1e-3,
) -> PeerOutput:
    """Train torchvision's resnet18 from scratch and classify the test images.

    Inputs are RGB in [0, 1] (``ToTensor``) without normalisation: BatchNorm after the first convolution of a
    network trained from scratch makes the input scale irrelevant, and there are no pretrained statistics to match.

    Args:
        train: (image, class index) pairs.
        test_images: images to classify.
        seed: seed of the initialisation, shuffling and flips.
        epochs: passes over ``train``, also the period of the cosine schedule; the model of the last one predicts.
        num_classes: outputs of the classifier.
        image_size: side the images are resized to (bilinear).
        batch_size: images per step.
        lr: Adam's initial learning rate.

    Returns:
        (N,) int64 predictions, the wall time, and the labeled images used.
    """
    start = time.perf_counter()
    generator = _seed(seed)
    images = _stack(_decode([image for image, _ in train], image_size, "RGB"))
    targets = torch.tensor([label for _, label in train], dtype=torch.int64)
    model = torchvision.models.resnet18(num_classes=num_classes)
    _fit(
        model,
        images,
        targets,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        generator=generator,
        loss_fn=nn.CrossEntropyLoss(),
        flip_targets=False,
        cosine=True,
    )
    predictions = _predict(model, _stack(_decode(test_images, image_size, "RGB")), batch_size)
    return PeerOutput(
        predictions=predictions.numpy().astype(np.int64),
        wall_s=time.perf_counter() - start,
        images_seen={"labeled": len({image for image, _ in train}), "unlabeled": 0},
    )
