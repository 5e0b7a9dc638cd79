"""The report page renders in headless Chromium (Debian package ``chromium``)."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from marsvision.evaluation.report import write_report


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


def dump_dom(html: Path, workdir: Path) -> str:
    """The page as Chromium rendered it (its DOM serialised after layout)."""
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={workdir / 'profile'}",
        "--dump-dom",
        html.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert "<body>" in proc.stdout, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def test_a_pretraining_sweep_reads_at_a_glance(trust_sweep, tmp_path):
    html_path, _ = write_report(trust_sweep)
    dom = dump_dom(html_path, tmp_path)
    assert "random init" in dom and "pretrained (demo-simclr)" in dom
    assert "latest:" not in dom and "<td>None</td>" not in dom
    one_seed = re.search(r"<tr><td>random init</td><td>0.1</td><td>1</td>(.*?)</tr>", dom)
    two_seeds = re.search(r"<tr><td>pretrained \(demo-simclr\)</td><td>1.0</td><td>2</td>(.*?)</tr>", dom)
    assert one_seed and "±" not in one_seed.group(1)  # one seed: its value alone, no "± 0.00"
    assert two_seeds and "81.00 ± 1.41" in two_seeds.group(1)
    assert "<th>seeds</th>" in dom and "(n=1)" not in dom
    assert 'download="summary.json"' in dom and '"acc_mean"' not in dom  # the dump is a link now
    assert "No run found a single big-rock pixel" in dom
    figures = trust_sweep / "figures"
    assert (figures / "confusion_random_init_0.1.png").is_file()
    assert (figures / "confusion_pretrained__demo_simclr_1.png").is_file()


def test_a_class_never_predicted_is_said_in_words(trust_sweep, tmp_path):
    run = trust_sweep / "random-0.1-s0"
    html_path, _ = write_report(run)
    assert "Never predicted on &#x27;test&#x27;: big rock" in html_path.read_text()
    assert "Never predicted on 'test': big rock" in dump_dom(html_path, tmp_path)


def test_the_page_title_names_the_study_not_the_folder(trust_sweep, make_run, tmp_path):
    for run in (p for p in trust_sweep.iterdir() if p.is_dir()):
        meta = json.loads((run / "meta.json").read_text())
        meta["command"] = ["/venv/bin/marsvision", "sweep", "-r", "demo-label-fractions", "--seeds", "0,1"]
        (run / "meta.json").write_text(json.dumps(meta))
    sweep_page = dump_dom(write_report(trust_sweep)[0], tmp_path / "sweep")
    study = "demo-label-fractions: bseg on ai4mars over weights × label fraction"
    assert f"<title>{study} (marsvision sweep report)</title>" in sweep_page
    run = make_run(tmp_path / "bseg-20260101-000000")
    (run / "config.yaml").write_text("name: demo-semiseg\n" + (run / "config.yaml").read_text())
    run_page = dump_dom(write_report(run)[0], tmp_path / "run")
    title = re.search(r"<title>(.*)</title>", run_page)
    assert title and title.group(1) == "demo-semiseg: bseg on ai4mars, 10 % of the labels (marsvision run report)"
    assert "<h1>demo-semiseg: bseg on ai4mars" in run_page and "<td>bseg-20260101-000000</td>" in run_page
