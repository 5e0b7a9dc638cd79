"""The accuracy harness: its tuning folder, its metric summary and its reuse of finished runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # as in test_accuracy_peers.py: `benchmarks` must be the repository's folder
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import data  # noqa: E402
from benchmarks.accuracy.run import (  # noqa: E402
    Row,
    _cli_in_this_process,
    _finished_run,
    _marsvision,
    _percent,
    _run_file,
    _run_here,
    pretraining_cache,
    trained_by_this_library,
    write_summary,
)

from marsvision.data.msl import MslV1, msl_v1_unlisted_images  # noqa: E402
from marsvision.data.synth import synthesize_msl_v1, synthesize_paired_folder  # noqa: E402
from marsvision.training.config import recipe_chain  # noqa: E402


def test_dev_folder_is_the_pool_without_the_test_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    synthesize_paired_folder(shared / "ai4mars-msl-256-train", num_images=24, size=32, seed=0)
    monkeypatch.setenv("MARSVISION_SHARED_DATA", str(shared))
    monkeypatch.setattr(data, "SEG_TEST_IMAGES", 6)

    linked = data.write_segmentation_dev_folder(tmp_path / "dev")

    test = {image.name for image in data.segmentation_split(None).test_images}
    dev_images = {path.name for path in (tmp_path / "dev" / "images").iterdir()}
    every_image = {path.name for path in (shared / "ai4mars-msl-256-train" / "images").iterdir()}
    assert (linked, len(test)) == (18, 6)
    assert dev_images.isdisjoint(test) and dev_images | test == every_image
    dev_labels = {path.stem for path in (tmp_path / "dev" / "labels").iterdir()}
    assert dev_labels == {Path(name).stem for name in dev_images}
    assert all(path.resolve().is_file() for path in (tmp_path / "dev" / "labels").iterdir())


def test_quick_data_is_a_slice_the_readers_and_the_split_policy_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    synthesize_paired_folder(shared / "ai4mars-msl-256-train", num_images=16, size=32, seed=0)
    synthesize_msl_v1(shared / "msl-images-v1", num_images=60, size=32, seed=0, unlisted=3)
    monkeypatch.setattr(data, "QUICK_SEG_IMAGES", 10)
    monkeypatch.setattr(data, "QUICK_SEG_TEST_IMAGES", 4)
    monkeypatch.setattr(data, "QUICK_MSL_LINES", {"train": 7, "val": 5})

    quick = data.write_quick_shared_data(shared, tmp_path / "quick")
    monkeypatch.setenv("MARSVISION_SHARED_DATA", str(quick))

    pairs = sorted((shared / "ai4mars-msl-256-train" / "images").iterdir())[:10]
    split = data.segmentation_split(None, quick=True)
    assert sorted(image.name for image in split.test_images + [image for image, _ in split.train]) == [
        image.name for image in pairs
    ]
    assert (len(split.test_images), len(split.train)) == (4, 6)
    assert all(Path(str(label)).stem == image.stem for image, label in split.train)
    msl = shared / "msl-images-v1"
    for name, count in (("train", 7), ("val", 5)):
        lines = (msl / f"{name}-calibrated-shuffled.txt").read_text().splitlines()[:count]
        listed = [(Path(line.split()[0]).name, int(line.split()[1])) for line in lines]
        reader = MslV1(quick / "msl-images-v1", split=name)
        kept = [(Path(sample.image).name, reader.class_ids[sample.target]) for sample in reader.samples]
        assert kept == listed
    assert msl_v1_unlisted_images(quick / "msl-images-v1") == []  # the original's 3 unlisted stay out
    assert len(data.classification_split().test_images) == 5


def test_a_quick_row_that_fails_says_why_and_leaves_no_result(tmp_path: Path) -> None:
    row = Row("classification", "all", "no-such-recipe", (0,))

    failure = _run_here(row, 0, tmp_path)

    assert failure is not None and "unknown recipe 'no-such-recipe'" in failure.splitlines()[-1]
    assert not _run_file(row, 0, tmp_path).exists()


def test_a_command_run_in_this_process_answers_as_in_a_child() -> None:
    assert _marsvision(["recipes"], in_process=True) == _marsvision(["recipes"])
    with pytest.raises(RuntimeError, match="unknown recipe 'no-such-recipe'"):
        _marsvision(["train", "-r", "no-such-recipe"], in_process=True)


def test_a_command_run_in_this_process_leaves_the_process_as_it_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import torch

    import marsvision.cli

    def a_run_that_changes_the_process(args: list[str]) -> None:
        os.environ["MARSVISION_RUN_DIR"] = "/somewhere"  # what a multi-device run sets for its workers
        torch.set_num_threads(1)
        raise SystemExit(0)

    threads = torch.get_num_threads()
    monkeypatch.delenv("MARSVISION_RUN_DIR", raising=False)
    monkeypatch.setattr(marsvision.cli, "main", a_run_that_changes_the_process)

    assert _cli_in_this_process(["train"])[0] == 0
    assert "MARSVISION_RUN_DIR" not in os.environ and torch.get_num_threads() == threads

    def interrupted(args: list[str]) -> None:
        raise SystemExit(marsvision.cli.EXIT_INTERRUPTED)

    monkeypatch.setattr(marsvision.cli, "main", interrupted)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C stops the driver, as it stopped a driver with children
        _cli_in_this_process(["train"])


def test_classes_missing_from_the_test_set_have_no_per_class_accuracy() -> None:
    metrics = {"top1": 0.5, "macc": 0.25, "per_class_accuracy": {"wheel": 0.5, "scoop": None}}
    assert _percent("classification", metrics) == {"top1": 50.0, "mean_class_acc": 25.0, "acc/wheel": 50.0}


def test_the_table_rounds_the_mean_once(tmp_path: Path) -> None:
    row = Row("classification", "all", "cls-peer-ce", (0, 1))
    for seed, top1 in ((0, 78.9), (1, 78.992)):  # mean 78.946: 78.9 in the table, 78.95 in the JSON
        seen = {"labeled": 1, "unlabeled": 0}
        run = {"seed": seed, "metrics": {"top1": top1}, "wall_s": 10.0 + 2 * seed, "images_seen": seen}
        path = tmp_path / "runs" / row.key / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run))
    summary = write_summary((row,), tmp_path, tmp_path)
    std = ((78.9 - 78.946) ** 2 + (78.992 - 78.946) ** 2) ** 0.5  # sample std of two values, by hand: 0.0650...
    assert summary["rows"][0]["metrics"]["top1"] == {"mean": 78.95, "std": round(std, 2)}
    assert json.loads((tmp_path / "accuracy.json").read_text()) == summary
    assert "| cls-peer-ce | 0,1 | 78.9 ± 0.1 | – | 11 | 1 / 0 |" in (tmp_path / "accuracy.md").read_text()


def _commit(repo: Path, path: str, text: str) -> str:
    """Write ``text`` to ``repo/path`` and commit it; the new commit's hash."""
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True, capture_output=True)
    subprocess.run([*git, "commit", "-qm", path], check=True, capture_output=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def _run_folder(
    work: Path, name: str, commit: str | None, finished: bool = True, command: list[str] | None = None
) -> None:
    (work / name).mkdir(parents=True)
    (work / name / "result.json").write_text(json.dumps({"run_dir": name}))
    (work / name / "meta.json").write_text(json.dumps({"git_commit": commit, "command": command}))
    if finished:
        (work / name / "eval.json").write_text("{}")


def test_a_finished_run_of_this_library_is_reused_and_no_other(tmp_path: Path) -> None:
    repo, work = tmp_path / "repo", tmp_path / "work"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    first = _commit(repo, "src/marsvision/method.py", "x = 1\n")
    _run_folder(work, "cls-ce-seed0-20261130-010000", first)
    _run_folder(work, "cls-ce-seed0-20261130-020000", first, finished=False)
    _run_folder(work, "cls-ce-seed2-20261130-010000", None)
    _commit(repo, "docs/results.md", "a table\n")  # not library code: the run is still this library's

    assert _finished_run(work, "cls-ce-seed0", repo) == {"run_dir": "cls-ce-seed0-20261130-010000"}
    assert _finished_run(work, "cls-ce-seed1", repo) is None
    assert _finished_run(work, "cls-ce-seed2", repo) is None  # no commit recorded

    _commit(repo, "src/marsvision/method.py", "x = 2\n")
    assert not trained_by_this_library(work / "cls-ce-seed0-20261130-010000", repo)
    assert _finished_run(work, "cls-ce-seed0", repo) is None


def test_a_run_goes_stale_with_its_own_recipes_only(tmp_path: Path) -> None:
    repo, work = tmp_path / "repo", tmp_path / "work"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert recipe_chain("best-cls-msl128-cpu") == ["best-cls-msl128-cpu", "cls-ce-msl128-cpu"]  # the bundled base
    for name in ("best-cls-msl128-cpu", "cls-ce-msl128-cpu", "wang-cls-msl"):
        first = _commit(repo, f"src/marsvision/recipes/{name}.yaml", f"name: {name}\n")
    _run_folder(work, "best-seed0-1", first, command=["cli.py", "train", "-r", "best-cls-msl128-cpu", "seed=0"])
    _run_folder(work, "unnamed-seed0-1", first, command=["cli.py", "train"])

    _commit(repo, "src/marsvision/recipes/wang-cls-msl.yaml", "name: changed\n")
    assert trained_by_this_library(work / "best-seed0-1", repo)
    assert not trained_by_this_library(work / "unnamed-seed0-1", repo)  # no recipe named: every recipe counts

    _commit(repo, "src/marsvision/recipes/cls-ce-msl128-cpu.yaml", "name: changed\n")  # the run's base recipe
    assert not trained_by_this_library(work / "best-seed0-1", repo)


def test_pretraining_is_shared_by_rows_with_the_same_overrides_only(tmp_path: Path) -> None:
    def row(name: str, *overrides: str) -> Row:
        return Row("segmentation", 100, name, (0,), pretrain="simclr-x", pretrain_overrides=overrides)

    plain, batched = row("a"), row("b", "simclr.batched_views=true")
    assert pretraining_cache(plain, 1, tmp_path, quick=False) == tmp_path / "simclr-x-seed1.json"
    assert (
        pretraining_cache(batched, 1, tmp_path, quick=True).name
        == "simclr-x-simclr.batched_views-true-seed1-quick.json"
    )
    assert pretraining_cache(row("c", "simclr.batched_views=true"), 1, tmp_path, quick=True) == pretraining_cache(
        batched, 1, tmp_path, quick=True
    )


def test_a_full_run_stops_before_its_first_row_on_a_cpu_without_native_bf16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.accuracy import run

    started: list[str] = []
    monkeypatch.setattr(run, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(run, "_run_in_child", lambda row, seed, out: started.append(row.key))
    monkeypatch.setattr(run, "RESULTS", tmp_path)  # the summary of a full run goes there, not over the committed one

    assert run.main(["--only", "cls-all-cls-peer-ce", "--seed", "0", "--out", str(tmp_path)]) == 2
    assert started == [] and "no native bfloat16" in capsys.readouterr().err

    assert run.main(["--only", "cls-all-cls-peer-ce", "--seed", "0", "--out", str(tmp_path), "--any-machine"]) == 0
    assert started == ["cls-all-cls-peer-ce"]


def test_the_table_says_when_a_rows_seeds_ran_on_different_cpus(tmp_path: Path) -> None:
    row = Row("classification", "all", "cls-peer-ce", (0, 1, 2))
    for seed, cpu in ((0, "AMD EPYC"), (1, "Intel Xeon Platinum"), (2, None)):  # seed 2 predates the record
        run = {"seed": seed, "metrics": {"top1": 60.0}, "wall_s": 10.0, "images_seen": {"labeled": 1, "unlabeled": 0}}
        path = tmp_path / "runs" / row.key / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run | ({"cpu": cpu} if cpu else {})))

    summary = write_summary((row,), tmp_path, tmp_path)

    assert summary["rows"][0]["cpus"] == ["AMD EPYC", "Intel Xeon Platinum"]
    assert "| cls-peer-ce | 0,1,2 (2 kinds of CPU) |" in (tmp_path / "accuracy.md").read_text()
