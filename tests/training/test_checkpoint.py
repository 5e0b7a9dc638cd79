import os
from pathlib import Path

import pytest
import torch

from marsvision.training import checkpoint as ckpt


def test_round_trip_with_weights_only(tmp_path: Path):
    path = tmp_path / "c.ckpt"
    ckpt.atomic_torch_save({"w": torch.arange(3.0), "epoch": 2, "names": ["soil"]}, path)
    loaded = ckpt.safe_torch_load(path)
    assert loaded["epoch"] == 2 and loaded["names"] == ["soil"]
    assert torch.equal(loaded["w"], torch.arange(3.0))


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch, failing):
    path = tmp_path / "last.ckpt"
    ckpt.atomic_torch_save({"epoch": 1}, path)

    def crash(*args, **kwargs):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(OSError, match="simulated crash"):
        ckpt.atomic_torch_save({"epoch": 2, "big": torch.zeros(10_000)}, path)
    monkeypatch.undo()
    assert ckpt.safe_torch_load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "temp file left behind"


def test_torn_file_gives_an_error_naming_it(tmp_path: Path):
    path = tmp_path / "torn.ckpt"
    ckpt.atomic_torch_save({"w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"torn\.ckpt: not a loadable checkpoint"):
        ckpt.safe_torch_load(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        ckpt.safe_torch_load(tmp_path / "missing.ckpt")


class Payload:
    """An arbitrary class: unpickling it would run code of the file's choosing."""


def test_weights_only_refuses_arbitrary_objects(tmp_path: Path):
    path = tmp_path / "evil.ckpt"
    torch.save({"obj": Payload()}, path)
    with pytest.raises(ValueError, match="not a loadable checkpoint"):
        ckpt.safe_torch_load(path)
