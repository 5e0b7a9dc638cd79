"""Rover product names: parsing, acquisition time (SCLK → sol) and the EDR → MXY/RNG mask rule.

Formats are those of DATASETS.md §1 (MSL NAVCAM, MER) and §2 (MSL Mastcam / MAHLI browse images).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MSL_NAVCAM_PATTERN = re.compile(
    r"^(N[LR])([AB])_(\d{9})(EDR|MXY|RNG)_([A-Z])(\d{3})(\d{4})([A-Z0-9_]{9})([A-Z])([0-9A-Z_])$"
)
"""MSL NAVCAM product id, e.g. ``NLA_397681455EDR_F0020000AUT_04096M1`` (DATASETS.md §1)."""

NAVCAM_ID_LENGTH = len("NLA_397681455EDR_F0020000AUT_04096M1")
"""MSL NAVCAM product ids have a fixed length (36 characters); label suffixes follow it."""

MSL_MASTCAM_PATTERN = re.compile(r"^(\d{4})(M[LRH])(\d{6})(\d{3})(\d{2})(\d{5})([A-Z])([0-9A-F])([0-9A-Z])_([A-Z]{4})$")
"""MSL Mastcam/MAHLI browse name without extension, e.g. ``0077ML0005780000102730I01_DRCL`` (DATASETS.md
§2)."""

MER_PATTERN = re.compile(r"^([12])([a-z])(\d{9})([a-z]{3})", re.IGNORECASE)
"""MER product name: rover digit (1 Opportunity, 2 Spirit), camera letter, 9-digit SCLK, product
(DATASETS.md §1)."""

MSL_SCLK_AT_SOL0 = 397_446_660.0
"""MSL SCLK at sol 0 midnight (2012-08-05 13:50 UTC), DATASETS.md §1."""

SECONDS_PER_SOL = 88_775.244
"""Length of a Mars solar day in seconds (DATASETS.md §1)."""

MER_SCLK_AT_SOL1 = {"1": 128_279_164.0, "2": 126_462_964.0}
"""Approximate MER SCLK (seconds since J2000) at landing, which the MER missions count as sol 1.

Derived from the landing times published by NASA: Opportunity 2004-01-25 05:05 UTC, Spirit
2004-01-04 04:35 UTC, and the J2000 epoch (2000-01-01 11:58:56 UTC).
Good to about one sol: used for ordering and splits only.
"""

MER_ROVERS = {"1": "opportunity", "2": "spirit"}


@dataclass(frozen=True)
class Acquisition:
    """When and by what an image was taken, as far as its file name tells."""

    mission: str
    """``"msl"``, ``"opportunity"`` or ``"spirit"``."""
    instrument: str
    """``"navcam"``, ``"mastcam"``, ``"mahli"`` or ``"mer"``."""
    sol: float
    """Sol (Mars day) of acquisition; fractional for SCLK-based names."""
    sclk: float | None
    """Spacecraft clock in seconds, where the name carries it."""


def msl_sclk_to_sol(sclk: float) -> float:
    """Return the (fractional) MSL sol for a spacecraft clock value; ``floor`` gives the sol number."""
    return (sclk - MSL_SCLK_AT_SOL0) / SECONDS_PER_SOL


def mer_sclk_to_sol(sclk: float, rover_digit: str) -> float:
    """Return the approximate (fractional) MER sol for a clock value of rover ``"1"`` or ``"2"``."""
    return 1.0 + (sclk - MER_SCLK_AT_SOL1[rover_digit]) / SECONDS_PER_SOL


def parse_acquisition(stem: str) -> Acquisition | None:
    """Parse a product name (extension and suffixes allowed); ``None`` if no known format matches.

    >>> parse_acquisition("NLA_397681455EDR_F0020000AUT_04096M1").sclk
    397681455.0
    >>> parse_acquisition("0077ML0005780000102730I01_DRCL.JPG").sol
    77.0
    """
    name = stem.rsplit("/", 1)[-1]
    base = name.split(".", 1)[0]
    navcam = MSL_NAVCAM_PATTERN.match(base[:NAVCAM_ID_LENGTH])
    if navcam:
        sclk = float(navcam.group(3))
        return Acquisition("msl", "navcam", msl_sclk_to_sol(sclk), sclk)
    # Strip the v2.1 augmentation suffix (``_DRCL-fh``) before matching Mastcam/MAHLI names.
    mastcam = MSL_MASTCAM_PATTERN.match(base.split("-", 1)[0])
    if mastcam:
        instrument = "mahli" if mastcam.group(2) == "MH" else "mastcam"
        return Acquisition("msl", instrument, float(int(mastcam.group(1))), None)
    mer = MER_PATTERN.match(base)
    if mer:
        sclk = float(mer.group(3))
        return Acquisition(MER_ROVERS[mer.group(1)], "mer", mer_sclk_to_sol(sclk, mer.group(1)), sclk)
    return None


def acquisition_sol(stem: str) -> float | None:
    """Return the sol of acquisition parsed from a name, or ``None``."""
    acquisition = parse_acquisition(stem)
    return None if acquisition is None else acquisition.sol


def sol_number(sol: float) -> int:
    """Return the integer sol containing a fractional sol value."""
    return math.floor(sol)


def edr_to_mask_stem(stem: str, product: str) -> str:
    """Map an MSL NAVCAM EDR stem to the stem of its mask product (``"MXY"`` rover or ``"RNG"`` range).

    The product token follows the 9-digit SCLK (DATASETS.md §1); names that do not parse fall back to
    replacing the first ``EDR``.
    """
    match = MSL_NAVCAM_PATTERN.match(stem)
    if match:
        start, end = match.span(4)
        return stem[:start] + product + stem[end:]
    return stem.replace("EDR", product, 1)


_LABEL_MERGED = re.compile(r"_merged\d*$")
_TRAILING_TOKEN = re.compile(r"_T?\d+$")


def label_stem_candidates(label_stem: str) -> list[str]:
    """Return the image stems a label may belong to, most specific first (the generic rule of DATASETS.md §1).

    Drop ``_merged`` with any digits, then drop trailing ``_<digits>`` / ``_T<digits>`` tokens one at a time.
    """
    stem = _LABEL_MERGED.sub("", label_stem)
    candidates = [stem]
    while _TRAILING_TOKEN.search(stem):
        stem = _TRAILING_TOKEN.sub("", stem)
        candidates.append(stem)
    return candidates
