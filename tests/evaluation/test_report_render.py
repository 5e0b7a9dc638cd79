"""The report page renders in headless Chromium (Debian package ``chromium``)."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is required in CI (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return exe


def screenshot(html: Path, workdir: Path) -> Path:
    shot = workdir / "report.png"
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={workdir / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        html.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert shot.is_file(), f"no screenshot; chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return shot


def assert_not_blank(shot: Path) -> None:
    with Image.open(shot) as im:
        assert im.format == "PNG"
        assert im.size == (1280, 2000)
        gray = np.asarray(im.convert("L"), dtype=float)
        colors = len(set(map(tuple, np.asarray(im.convert("RGB")).reshape(-1, 3)[::97].tolist())))
    assert gray.std() > 10, "screenshot is blank"
    assert colors > 20, "screenshot shows no figures"


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_report_renders_in_headless_chromium(kind, request, tmp_path_factory):
    _, html, _ = request.getfixturevalue(f"{kind}_report")
    work = tmp_path_factory.mktemp(f"chromium-{kind}")
    shot = screenshot(html, work)
    assert_not_blank(shot)
    keep = tmp_path_factory.mktemp("screenshots") / f"{kind}_report.png"
    shutil.copy(shot, keep)
    print(f"report screenshot: {keep}")


def test_missing_chromium_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        _chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is required"):
        _chromium()
