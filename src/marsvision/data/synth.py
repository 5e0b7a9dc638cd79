"""Synthetic Mars datasets written in the official on-disk layouts, read back unchanged by the readers.

``synthesize_ai4mars`` (release 0.1 or 0.6 layout), ``synthesize_msl_v1`` and ``synthesize_paired_folder``
each write into a new folder atomically (a temporary sibling renamed at the end) and return a summary dict.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from marsvision.data.classes import MSL_V1_NAMES, MSL_V1_UNUSED_IDS
from marsvision.data.errors import DatasetError
from marsvision.data.msl import V1_CLASS_FILE, V1_IMAGE_DIR, V1_LISTS
from marsvision.data.names import MER_SCLK_AT_SOL1, MSL_SCLK_AT_SOL0, SECONDS_PER_SOL
from marsvision.data.procedural import crowd_label, gold_labels, render_ground, render_object, render_terrain
from marsvision.progress import progress

JPEG_QUALITY = 92
MSL_MAX_SOL = 2500
"""Synthetic AI4Mars sols span 1…2500, about the MSL mission span of AI4Mars (paper 002: sols up to 2579)."""
MSL_V1_SOLS = (3, 1060)
"""Sol range of MSL surface v1 (DATASETS.md §2)."""
MSL_V1_SPLIT_SHARES = (0.56, 0.245)
"""Train and val shares of v1 (3,746 and 1,640 of 6,691 images); the rest is test (DATASETS.md §2)."""
AGREEMENTS = ("min1", "min2", "min3")
MER_MAX_SOL = 2000
"""Synthetic MER sols span 1…2000 (a design choice; Opportunity worked for over 5,000 sols)."""
MER_MERGED_MAX = 60
"""MER train labels are named ``<stem>_merged<N>`` with N from 1 to 60 (DATASETS.md §1)."""
MER_TEST_SHARE = 0.2
ROVER_IN_VIEW_SHARE = 0.6
"""Share of synthetic NAVCAM scenes that show the rover body (a design choice)."""


@contextlib.contextmanager
def _atomic_folder(out: str | Path) -> Iterator[Path]:
    target = Path(out)
    if target.exists():
        raise DatasetError(target, "already exists; synthetic data is only written into a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield temporary
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _save(array: np.ndarray, path: Path, jpeg: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if jpeg:
        image.save(path, quality=JPEG_QUALITY)
    else:
        image.save(path)


def navcam_stem(sclk: int, index: int, product: str = "EDR") -> str:
    """Return a valid MSL NAVCAM product id (DATASETS.md §1) for a spacecraft clock value."""
    site, drive = 1 + index // 40, (index * 7) % 10000
    return f"NLA_{sclk:09d}{product}_F{site:03d}{drive:04d}NCAM00{index % 1000:03d}M1"


def _increasing_sols(rng: np.random.Generator, count: int, low: float, high: float) -> np.ndarray:
    return np.sort(rng.uniform(low, high, count))


def _write_ai4mars_msl(
    base: Path, rng: np.random.Generator, num_images: int, size: int, test_fraction: float, missing_masks: int
) -> dict[str, Any]:
    sols = _increasing_sols(rng, num_images, 1, MSL_MAX_SOL)
    test_count = min(num_images - 1, max(1, round(test_fraction * num_images))) if num_images > 1 else 0
    test = set(rng.choice(num_images, test_count, replace=False).tolist())
    no_mask = set(rng.choice(num_images, min(missing_masks, num_images), replace=False).tolist())
    pixel_counts = np.zeros(4, np.int64)
    previous = -1
    for index, sol in progress(enumerate(sols), "synth msl", "image", total=num_images):
        sclk = max(previous + 1, int(MSL_SCLK_AT_SOL0 + sol * SECONDS_PER_SOL))
        previous = sclk
        t = float(sol / MSL_MAX_SOL)
        scene = render_terrain(rng, size, t, with_rover=bool(rng.random() < ROVER_IN_VIEW_SHARE))
        stem = navcam_stem(sclk, index)
        _save(scene.image, base / "images" / "edr" / f"{stem}.JPG", jpeg=True)
        if index not in no_mask:
            _save(
                scene.rover.astype(np.uint8),
                base / "images" / "mxy" / f"{navcam_stem(sclk, index, 'MXY')}.png",
            )
        _save(scene.far.astype(np.uint8), base / "images" / "rng-30m" / f"{navcam_stem(sclk, index, 'RNG')}.png")
        if index in test:
            for level, label in gold_labels(rng, scene).items():
                folder = base / "labels" / "test" / f"masked-gold-{level}-100agree"
                _save(label, folder / f"{stem}_merged.png")
        else:
            _save(crowd_label(rng, scene), base / "labels" / "train" / f"{stem}.png")
        pixel_counts += np.bincount(scene.label.ravel(), minlength=4)[:4]
    return {
        "train": num_images - test_count,
        "test": test_count,
        "missing_rover_masks": len(no_mask),
        "true_pixel_share": (pixel_counts / pixel_counts.sum()).round(4).tolist(),
        "sols": [float(sols[0]), float(sols[-1])] if num_images else [],
    }


def _write_mer(base: Path, rng: np.random.Generator, num_images: int, size: int) -> dict[str, Any]:
    sols = _increasing_sols(rng, num_images, 1, MER_MAX_SOL)
    test_count = max(1, round(MER_TEST_SHARE * num_images)) if num_images > 1 else 0
    test = set(rng.choice(num_images, test_count, replace=False).tolist())

    for index, sol in progress(enumerate(sols), "synth mer", "image", total=num_images):
        sclk = int(MER_SCLK_AT_SOL1["1"] + (sol - 1) * SECONDS_PER_SOL) + index
        stem = f"1n{sclk:09d}eff{index % 100:02d}{index // 100:02d}p{index % 10000:04d}l0m1"
        scene = render_terrain(rng, size, float(sol / MER_MAX_SOL), with_rover=False)
        _save(scene.image, base / "images" / "eff" / f"{stem}.JPG", jpeg=True)
        if index in test:
            _save(scene.image, base / "images" / "test" / f"{stem}.JPG", jpeg=True)
            for level, label in gold_labels(rng, scene).items():
                folder = base / "labels" / "test" / f"masked-gold-{level}-100agree"
                _save(label, folder / f"{stem}_{index:03d}_T{index % 7:02d}_merged.png")
        else:
            label = crowd_label(rng, scene)
            merged = 1 + int(rng.integers(0, MER_MERGED_MAX))
            _save(label, base / "labels" / "train" / "merged-unmasked" / f"{stem}_merged{merged}.png")
    return {"train": num_images - test_count, "test": test_count}


def _write_mcam_decoy(base: Path, rng: np.random.Generator, size: int) -> None:
    """Write a Mastcam folder beside ``ncam`` that readers must never pick up (DATASETS.md §1)."""
    scene = render_terrain(rng, size, 0.5, with_rover=False)
    stem = "0100ML0005780000102730E01_DRCL"
    _save(np.repeat(scene.image[:, :, None], 3, axis=2), base / "images" / "edr" / f"{stem}.JPG", jpeg=True)
    _save(scene.label, base / "labels" / "train" / f"{stem}.png")


def synthesize_ai4mars(
    out: str | Path,
    num_images: int = 200,
    size: int = 256,
    seed: int = 0,
    release: str = "0.1",
    test_fraction: float = 0.1,
    missing_masks: int = 0,
    mer_images: int | None = None,
) -> dict[str, Any]:
    """Write an AI4Mars-like dataset in the official layout of ``release`` ("0.1" or "0.6") to ``out``.

    MSL NAVCAM names carry increasing SCLKs; EDRs are grayscale JPEG; train crowd labels, masked-gold min1/2/3
    test labels (255 under the rover and range masks), mxy and rng-30m masks. Class proportions and lighting
    drift with the sol. Release 0.6 adds a ``msl/mcam`` decoy and a MER tree (``mer_images``, default a third
    of ``num_images``) with ``_merged<N>`` train labels and ``_<n>_T<n>_merged`` test labels.
    """
    if release not in ("0.1", "0.6"):
        raise ValueError(f"release must be '0.1' or '0.6', got {release!r}")
    if num_images < 2 or size < 16:
        raise ValueError(f"need num_images >= 2 and size >= 16, got {num_images}, {size}")
    rng = np.random.default_rng(seed)
    summary: dict[str, Any] = {"kind": "ai4mars", "release": release, "seed": seed, "size": size}
    with _atomic_folder(out) as root:
        if release == "0.1":
            summary["msl"] = _write_ai4mars_msl(root / "msl", rng, num_images, size, test_fraction, missing_masks)
        else:
            mer = num_images // 3 if mer_images is None else mer_images
            msl_count = num_images - mer if mer_images is None else num_images
            ncam = root / "msl" / "ncam"
            summary["msl"] = _write_ai4mars_msl(ncam, rng, msl_count, size, test_fraction, missing_masks)
            _write_mcam_decoy(root / "msl" / "mcam", rng, size)
            if mer > 0:
                summary["mer"] = _write_mer(root / "mer", rng, mer, size)
    summary["root"] = str(Path(out))
    return summary


def _zipf(count: int, exponent: float, order: np.ndarray) -> np.ndarray:
    weights = np.empty(count)
    weights[order] = 1.0 / np.arange(1, count + 1) ** exponent
    return weights / weights.sum()


def synthesize_msl_v1(
    out: str | Path,
    num_images: int = 200,
    size: int = 128,
    seed: int = 0,
    unlisted: int = 2,
    grayscale_share: float = 0.03,
) -> dict[str, Any]:
    """Write an MSL-v1-like classification set (``calibrated/``, three lists split by sol, class file).

    24 procedural object classes (official ids 0-24 without 22 'sun'), long-tailed with a class distribution
    that drifts with the sol; every class appears in train. A few images are grayscale; ``unlisted`` are in no
    list.
    """
    used = [c for c in range(len(MSL_V1_NAMES)) if c not in MSL_V1_UNUSED_IDS]
    if num_images < len(used) * 2:
        raise ValueError(f"need num_images >= {2 * len(used)} so that every class appears, got {num_images}")
    rng = np.random.default_rng(seed)
    sols = np.sort(rng.integers(MSL_V1_SOLS[0], MSL_V1_SOLS[1] + 1, num_images))
    t = (sols - MSL_V1_SOLS[0]) / (MSL_V1_SOLS[1] - MSL_V1_SOLS[0])
    early = _zipf(len(used), 1.1, rng.permutation(len(used)))
    late = _zipf(len(used), 1.1, rng.permutation(len(used)))
    classes = np.array([rng.choice(len(used), p=(1 - ti) * early + ti * late) for ti in t])
    n_train = round(MSL_V1_SPLIT_SHARES[0] * num_images)
    n_val = round(MSL_V1_SPLIT_SHARES[1] * num_images)
    classes[rng.choice(n_train, len(used), replace=False)] = np.arange(len(used))  # every class in train
    split_of = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * (num_images - n_train - n_val))
    lines: dict[str, list[str]] = {split: [] for split in V1_LISTS}
    with _atomic_folder(out) as root:
        folder = root / V1_IMAGE_DIR
        for index in progress(range(num_images + unlisted), "synth msl-v1", "image"):
            listed = index < num_images
            sol = int(sols[index]) if listed else int(sols[-1])
            ti = float(t[index]) if listed else 1.0
            contiguous = int(classes[index]) if listed else int(rng.integers(0, len(used)))
            official = used[contiguous]
            height = size if rng.random() < 0.6 else int(size * rng.uniform(0.6, 1.0))
            name = MSL_V1_NAMES[official]
            if name == "ground":
                image = render_ground(rng, height, size, False, ti)
            elif name == "horizon":
                image = render_ground(rng, height, size, True, ti)
            else:
                image = render_object(rng, height, size, contiguous, ti)
            camera = ("ML", "MR", "MH")[index % 3]
            file = f"{sol:04d}{camera}{index:06d}000{index % 100:02d}{index % 100000:05d}E01_DRCL.JPG"
            if rng.random() < grayscale_share:
                image = np.asarray(Image.fromarray(image).convert("L"))
            _save(image, folder / file, jpeg=True)
            if listed:
                lines[str(split_of[index])].append(f"{V1_IMAGE_DIR}/{file} {official}")
        for split, entries in lines.items():  # the official lists are shuffled
            shuffled = [entries[i] for i in rng.permutation(len(entries))]
            (root / V1_LISTS[split]).write_text("".join(line + "\n" for line in shuffled))
        (root / V1_CLASS_FILE).write_text("".join(f"{i}\t{n}\n" for i, n in enumerate(MSL_V1_NAMES)))
        (root / "README.txt").write_text("Synthetic MSL-surface-v1-like data written by marsvision (not real).\n")
    counts = {split: len(entries) for split, entries in lines.items()}
    return {
        "kind": "msl-v1",
        "root": str(Path(out)),
        "seed": seed,
        "size": size,
        "splits": counts,
        "unlisted": unlisted,
        "images_per_class": {MSL_V1_NAMES[used[c]]: int((classes == c).sum()) for c in range(len(used))},
    }


def synthesize_paired_folder(out: str | Path, num_images: int = 100, size: int = 256, seed: int = 0) -> dict[str, Any]:
    """Write ``images/<id>.jpg`` ↔ ``labels/<id>.png`` terrain pairs (crowd-style labels: 0-3, 255)."""
    if num_images < 1:
        raise ValueError(f"num_images must be positive, got {num_images}")

    rng = np.random.default_rng(seed)
    sols = _increasing_sols(rng, num_images, 1, MSL_MAX_SOL)
    with _atomic_folder(out) as root:
        for index, sol in progress(enumerate(sols), "synth paired-folder", "image", total=num_images):
            sclk = int(MSL_SCLK_AT_SOL0 + sol * SECONDS_PER_SOL) + index
            scene = render_terrain(
                rng, size, float(sol / MSL_MAX_SOL), with_rover=bool(rng.random() < ROVER_IN_VIEW_SHARE)
            )
            stem = navcam_stem(sclk, index)
            _save(scene.image, root / "images" / f"{stem}.jpg", jpeg=True)
            _save(crowd_label(rng, scene), root / "labels" / f"{stem}.png")
    return {
        "kind": "paired-folder",
        "root": str(Path(out)),
        "seed": seed,
        "size": size,
        "num_images": num_images,
    }


SYNTHESIZERS = {
    "ai4mars": synthesize_ai4mars,
    "ai4mars-0.6": functools.partial(synthesize_ai4mars, release="0.6"),
    "msl-v1": synthesize_msl_v1,
    "paired-folder": synthesize_paired_folder,
}
"""Synthetic dataset writers by the ``--kind`` name of ``marsvision data synth`` (``ai4mars`` writes the 0.1 layout)."""
