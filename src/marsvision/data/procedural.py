"""Procedural Mars scenes for the synthetic datasets (vectorised numpy, deterministic by generator).

Terrain scenes (AI4Mars-like): soil (fine noise), bedrock (layering and cracks), sand (ripples), big rocks
(shaded blobs with shadows), a far region beyond a horizon, an optional rover body in the lower part.
Soil/sand and bedrock/rock share their mean brightness so that only texture separates them.
Object images (MSL-like): one class-specific procedural object (shape, texture, colour) on a ground texture.
All constants below are design choices of this generator, not measurements of real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

SOIL, BEDROCK, SAND, ROCK = 0, 1, 2, 3


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Return value noise (``float32``, about unit variance) with ``cells`` random knots per side."""
    cells = max(2, cells)
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)


def fractal_noise(rng: np.random.Generator, size: int, cells: int, octaves: int) -> np.ndarray:
    """Return a sum of ``octaves`` value-noise layers, each twice as fine and half as strong."""
    total = np.zeros((size, size), np.float32)
    for octave in range(octaves):
        total += smooth_noise(rng, size, size, cells * 2**octave) / 2**octave
    return total


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def class_boundaries(label: np.ndarray, width: int) -> np.ndarray:
    """Return a boolean band of ``width`` pixels around the borders between different label values."""
    edge = np.zeros(label.shape, bool)
    edge[1:] |= label[1:] != label[:-1]
    edge[:, 1:] |= label[:, 1:] != label[:, :-1]
    return _dilate(edge, max(0, width - 1))


@dataclass
class TerrainScene:
    """One rendered terrain image with its true label and masks."""

    image: np.ndarray
    """``uint8`` ``(S, S)`` grayscale image."""
    label: np.ndarray
    """``uint8`` ``(S, S)`` true terrain class per pixel (0-3)."""
    rover: np.ndarray
    """Boolean rover-body mask (mxy == 1)."""
    far: np.ndarray
    """Boolean beyond-30-m mask (rng-30m == 1)."""


def terrain_proportions(t: float) -> np.ndarray:
    """Return the soil/bedrock/sand weights at mission time ``t`` in [0, 1] (more bedrock later)."""
    return np.array([1.0 - 0.6 * t, 0.25 + 0.75 * t, 0.3 + 0.4 * np.sin(np.pi * t)], dtype=np.float32)


def render_terrain(rng: np.random.Generator, size: int, t: float, with_rover: bool) -> TerrainScene:
    """Render a NAVCAM-like terrain scene of ``size × size`` at mission time ``t`` in [0, 1]."""
    scale = size / 256.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # Horizon: a gently waving line in the upper third; everything above horizon + band is beyond 30 m.
    horizon = size * (0.18 + 0.14 * rng.random()) + size * 0.03 * smooth_noise(rng, 1, size, 4)[0]
    far = yy < (horizon + size * 0.05)[None, :]
    sky = yy < horizon[None, :]

    # Terrain classes: argmax of per-class noise fields biased by time-dependent proportions.
    weights = terrain_proportions(t) * np.exp(0.4 * rng.standard_normal(3)).astype(np.float32)
    fields = np.stack([smooth_noise(rng, size, size, 3 + int(rng.integers(0, 3))) for _ in range(3)])
    fields += 1.5 * np.log(weights / weights.sum())[:, None, None]
    label = np.argmax(fields, axis=0).astype(np.uint8)

    fine = rng.standard_normal((size, size)).astype(np.float32)
    mid = smooth_noise(rng, size, size, int(32 * scale))
    warp = smooth_noise(rng, size, size, 4)
    theta = rng.uniform(0, np.pi)
    wavelength = rng.uniform(6, 12) * scale
    ripples = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / wavelength + 2.5 * warp)
    layering = np.sin(2 * np.pi * yy / (rng.uniform(10, 20) * scale) + 3.0 * warp)
    crack_field = smooth_noise(rng, size, size, int(10 * scale) + 4)
    cracks = np.abs(crack_field) < 0.05

    soil = 0.45 + 0.07 * fine + 0.03 * mid
    sand = 0.45 + 0.045 * ripples + 0.015 * fine
    bedrock = 0.53 + 0.04 * layering + 0.03 * mid - 0.18 * cracks
    image = np.choose(label, [soil, bedrock, sand]).astype(np.float32)

    # Big rocks: shaded elliptical blobs with a cast shadow, smaller towards the horizon.
    light = rng.uniform(0, 2 * np.pi) + np.pi * t
    lx, ly = np.cos(light), np.sin(light)
    count = rng.poisson(2 + 6 * t)
    for _ in range(count):
        cy = rng.uniform(np.max(horizon) + 0.08 * size, size)
        cx = rng.uniform(0, size)
        depth = (cy - horizon.mean()) / (size - horizon.mean())
        a = max(3.0, size * rng.uniform(0.03, 0.08) * depth)
        b = a * rng.uniform(0.5, 0.9)
        y0, y1 = int(max(0, cy - 2 * a)), int(min(size, cy + 2 * a))
        x0, x1 = int(max(0, cx - 2 * a)), int(min(size, cx + 2 * a))
        if y1 <= y0 or x1 <= x0:
            continue
        dy = (yy[y0:y1, x0:x1] - cy) / b
        dx = (xx[y0:y1, x0:x1] - cx) / a
        inside = dx**2 + dy**2 < 1
        shadow = ((dx + 0.6 * lx) ** 2 + (dy + 0.6 * ly) ** 2 < 1.1) & ~inside
        height = np.sqrt(np.clip(1 - dx**2 - dy**2, 0, 1))
        shade = 0.5 + 0.22 * (-dx * lx - dy * ly) + 0.1 * height + 0.03 * mid[y0:y1, x0:x1]
        patch = image[y0:y1, x0:x1]
        patch[shadow] *= 0.65
        patch[inside] = shade[inside]
        label[y0:y1, x0:x1][inside] = ROCK

    # Far region: hazy, low contrast; sky brighter and smooth.
    haze = 0.55 + 0.04 * smooth_noise(rng, size, size, 6)
    image = np.where(far & ~sky, 0.5 * image + 0.5 * haze, image)
    image = np.where(sky, 0.72 - 0.1 * yy / size, image)

    rover = np.zeros((size, size), bool)
    if with_rover:
        top = size * rng.uniform(0.78, 0.9)
        left, right = np.sort(rng.uniform(0, size, 2))
        slope = rng.uniform(-0.3, 0.3)
        rover = (yy > top + slope * (xx - left)) & (xx > left - 0.2 * (yy - top)) & (xx < right + 0.2 * (yy - top))
        wheel_x = left if rng.random() < 0.5 else right
        rover |= (xx - wheel_x) ** 2 + (yy - size) ** 2 < (0.12 * size) ** 2
        panels = 0.3 + 0.35 * (np.sin(xx / (6 * scale)) > 0) + 0.1 * (np.sin(yy / (9 * scale)) > 0)
        image = np.where(rover, panels, image)

    gain = 0.8 + 0.35 * t + 0.05 * rng.standard_normal()
    vignette = 1.0 - 0.15 * ((xx / size - 0.5) ** 2 + (yy / size - 0.5) ** 2)
    image = (image - 0.5) * gain * vignette + 0.5 + 0.08 * (t - 0.5)
    out = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return TerrainScene(out, label, rover, far)


def crowd_label(rng: np.random.Generator, scene: TerrainScene) -> np.ndarray:
    """Return a crowd-style label: unlabeled gaps and borders, occasional soil/sand confusion, masks → 255."""
    label = scene.label.copy()
    size = label.shape[0]
    if rng.random() < 0.3:
        swap = smooth_noise(rng, size, size, 3) > 0.5
        label[swap & (label == SAND)] = SOIL
    gaps = smooth_noise(rng, size, size, 5) > rng.uniform(0.6, 1.4)
    label[gaps | class_boundaries(scene.label, 2)] = 255
    label[scene.rover | scene.far] = 255
    return label


def gold_labels(rng: np.random.Generator, scene: TerrainScene) -> dict[str, np.ndarray]:
    """Return expert labels for agreement levels min1 ⊇ min2 ⊇ min3 ."""
    size = scene.label.shape[0]
    doubt = smooth_noise(rng, size, size, 6)
    labels = {}
    for level, (threshold, band) in {"min1": (1.6, 1), "min2": (1.1, 2), "min3": (0.6, 4)}.items():
        label = scene.label.copy()
        label[(doubt > threshold) | class_boundaries(scene.label, band) | scene.rover | scene.far] = 255
        labels[level] = label
    return labels


SHAPES = ("disc", "square", "triangle", "ring", "cross", "stripes", "grid", "diamond", "star")


def _hue_rgb(hue: float) -> np.ndarray:
    angles = 2 * np.pi * (hue + np.array([0.0, 1 / 3, 2 / 3]))
    return (0.5 + 0.45 * np.cos(angles)).astype(np.float32)


def render_object(rng: np.random.Generator, height: int, width: int, class_index: int, t: float) -> np.ndarray:
    """Render an RGB ``uint8`` image of object class ``class_index`` on a Mars-ground background."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ground = np.array([0.62, 0.45, 0.32], np.float32) * (0.9 + 0.2 * rng.random())
    texture = 0.08 * smooth_noise(rng, height, width, 12) + 0.04 * rng.standard_normal((height, width))
    image = ground[None, None, :] + texture[:, :, None].astype(np.float32)
    shape = SHAPES[class_index % len(SHAPES)]
    style = class_index // len(SHAPES)
    radius = min(height, width) * rng.uniform(0.2, 0.38)
    cy, cx = height / 2 + rng.uniform(-0.15, 0.15) * height, width / 2 + rng.uniform(-0.15, 0.15) * width
    angle = rng.uniform(0, 2 * np.pi)
    u = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / radius
    v = (-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)) / radius
    r = np.hypot(u, v)
    masks = {
        "disc": r < 1,
        "square": np.maximum(np.abs(u), np.abs(v)) < 0.8,
        "triangle": (v < 0.6) & (np.abs(u) < (0.6 - v) * 0.6),
        "ring": (r < 1) & (r > 0.6),
        "cross": ((np.abs(u) < 0.25) & (np.abs(v) < 1)) | ((np.abs(v) < 0.25) & (np.abs(u) < 1)),
        "stripes": (np.maximum(np.abs(u), np.abs(v)) < 0.9) & (np.sin(8 * u) > 0),
        "grid": (np.maximum(np.abs(u), np.abs(v)) < 0.9) & ((np.sin(9 * u) > 0.6) | (np.sin(9 * v) > 0.6)),
        "diamond": np.abs(u) + np.abs(v) < 1,
        "star": r < 0.55 + 0.4 * np.cos(5 * np.arctan2(v, u)),
    }
    mask = masks[shape]
    colour = _hue_rgb(class_index * 0.381966)  # golden-ratio hue steps keep neighbouring classes apart
    if style == 1:
        pattern = 0.75 + 0.25 * (np.sin(6 * u) * np.sin(6 * v) > 0)
    elif style == 2:
        pattern = 0.7 + 0.3 * np.clip(1 - r, 0, 1)
    else:
        pattern = np.ones_like(r)
    image[mask] = colour[None, :] * pattern[mask][:, None]
    light = 0.85 + 0.3 * t
    return np.clip(image * light * 255.0 + 0.5, 0, 255).astype(np.uint8)


def render_ground(rng: np.random.Generator, height: int, width: int, with_horizon: bool, t: float) -> np.ndarray:
    """Render an RGB ``uint8`` ground (or ground + sky) scene for the MSL 'ground' / 'horizon' classes."""
    size = max(height, width)
    noise = fractal_noise(rng, size, 4, 3)[:height, :width]
    ground = np.array([0.62, 0.45, 0.32], np.float32)
    image = ground[None, None, :] * (0.9 + 0.12 * noise[:, :, None])
    if with_horizon:
        line = height * rng.uniform(0.25, 0.5)
        yy = np.mgrid[0:height, 0:width][0]
        image[yy < line] = np.array([0.78, 0.66, 0.55], np.float32)
    return np.clip(image * (0.85 + 0.3 * t) * 255.0 + 0.5, 0, 255).astype(np.uint8)
