import numpy as np
import pytest

from marsvision.data.classes import PAPER6
from marsvision.evaluation.palette import AI4MARS_COLORS, IGNORE_COLOR, colorize, generic_palette, palette_for


def test_ai4mars_palette_is_distinct_and_covers_paper6():
    pal = palette_for(PAPER6)
    assert pal.shape == (6, 3) and pal.dtype == np.uint8
    assert len({tuple(c) for c in pal.tolist()}) == 6
    assert tuple(pal[3]) == AI4MARS_COLORS["big rock"]
    assert IGNORE_COLOR not in {tuple(c) for c in pal.tolist()}


@pytest.mark.parametrize("n", [0, 1, 24, 40])
def test_generic_palette_distinct(n):
    pal = generic_palette(n)
    assert pal.shape == (n, 3)
    assert len({tuple(c) for c in pal.tolist()}) == n


def test_colorize_maps_classes_and_ignore():
    pal = palette_for(["soil", "bedrock"])
    out = colorize(np.array([[0, 1], [255, 0]]), pal)
    assert out.shape == (2, 2, 3)
    assert tuple(out[0, 1]) == AI4MARS_COLORS["bedrock"]
    assert tuple(out[1, 0]) == IGNORE_COLOR
    with pytest.raises(ValueError, match="outside"):
        colorize(np.array([[2]]), pal)
