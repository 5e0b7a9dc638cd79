import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from marsvision.evaluation.aggregate import fraction_series, mean_std, swept_keys
from marsvision.evaluation.report import write_report
from marsvision.evaluation.runlogs import RunLogError, load_sweep, metric_key

IMG_SRC = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]*)\"")
MD_IMG = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


def check_self_contained(html_path: Path, md_path: Path, n_figures: int) -> str:
    html = html_path.read_text()
    srcs = IMG_SRC.findall(html)
    assert html.count("<img") == n_figures == len(srcs)
    assert all(s.startswith("data:image/png;base64,") and len(s) > 1000 for s in srcs)
    assert "<script" not in html.lower()
    assert not re.search(r"(href|src)=\"(?!data:)", html), "page must have no external links"
    md = md_path.read_text()
    refs = MD_IMG.findall(md)
    assert len(refs) == n_figures
    for ref in refs:
        assert ref.startswith("figures/")
        assert (md_path.parent / ref).is_file(), ref
    assert not list(html_path.parent.glob(".*.tmp"))
    return html


def test_full_run_report(run_report):
    run_dir, html_path, md_path = run_report
    assert (html_path, md_path) == (run_dir / "report.html", run_dir / "report.md")
    # learning curves, losses, confusion matrix, per-class, class distribution, qualitative, t-SNE
    html = check_self_contained(html_path, md_path, 7)
    for text in ("Final metrics", "FACC", "mIoU", "big rock", "label_fraction: 0.1", "abc1234"):
        assert text in html
    assert "omitted" not in html
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == [
        "class_distribution.png",
        "confusion_matrix.png",
        "learning_curves.png",
        "losses.png",
        "per_class.png",
        "qualitative.png",
        "tsne.png",
    ]
    # metrics table is computed from eval.json's confusion matrix
    cm = np.array(json.loads((run_dir / "eval.json").read_text())["confusion_matrix"])
    assert f"{100 * np.trace(cm) / cm.sum():.2f}" in html


def test_minimal_run_report_omits_optional_sections(tmp_path, make_run):
    run = make_run(tmp_path / "pretrain", with_eval=False, with_qualitative=False, with_features=False)
    html_path, md_path = write_report(run)
    html = check_self_contained(html_path, md_path, 2)  # learning curves + losses
    assert "No eval.json" in html and "No qualitative" in html and "No features.npz" in html
    assert "No eval.json" in md_path.read_text()


def test_unreadable_optional_input_becomes_note(tmp_path, make_run):
    run = make_run(tmp_path / "r", with_qualitative=False)
    (run / "features.npz").write_bytes(b"not a zip file")
    html_path, md_path = write_report(run)
    html = check_self_contained(html_path, md_path, 5)
    assert "features.npz" in html and "omitted" in html


@pytest.mark.parametrize("missing", ["config.yaml", "meta.json", "metrics.jsonl"])
def test_missing_required_file_is_named(tmp_path, missing, make_run):
    run = make_run(tmp_path / "r", with_qualitative=False, with_features=False)
    (run / missing).unlink()
    with pytest.raises(RunLogError, match=re.escape(missing)):
        write_report(run)


def test_malformed_files_are_named(tmp_path, make_run):
    run = make_run(tmp_path / "r", with_qualitative=False, with_features=False)
    with (run / "metrics.jsonl").open("a") as f:
        f.write("{not json\n")
    with pytest.raises(RunLogError, match=r"metrics\.jsonl: line 19"):
        write_report(run)
    run2 = make_run(tmp_path / "r2", with_qualitative=False, with_features=False)
    (run2 / "eval.json").write_text(json.dumps({"class_names": ["a", "b"], "confusion_matrix": [[1, 2, 3]]}))
    with pytest.raises(RunLogError, match=r"eval\.json: confusion_matrix"):
        write_report(run2)


def test_not_a_run_or_sweep(tmp_path):
    with pytest.raises(RunLogError, match="neither a run"):
        write_report(tmp_path)
    with pytest.raises(RunLogError, match="does not exist"):
        write_report(tmp_path / "nope")


def test_sweep_report(sweep_report):
    sweep_dir, html_path, md_path = sweep_report
    # label efficiency (acc, mIoU), big-rock recall, 2 methods x {1 %, 100 %} confusion matrices, one comparison
    html = check_self_contained(html_path, md_path, 8)
    figures = sweep_dir / "figures"
    for name in ("confusion_pretrained_0.01.png", "confusion_supervised_1.png", "qualitative_comparison.png"):
        assert (figures / name).is_file(), name
    assert "2 seed(s) summed" in html
    assert "pretrained" in html and "supervised" in html
    # pretrained at fraction 0.01: acc 0.9005 and 0.9105 -> mean 90.55, sample std 0.71
    assert "90.55 ± 0.71" in html
    assert (sweep_dir / "figures" / "big_rock_recall.png").is_file()


def test_sweep_from_csv_without_fraction(tmp_path):
    root = tmp_path / "lambda-sweep"
    root.mkdir()
    rows = [
        "lambda,seed,acc,miou",
        "0.1,0,0.90,0.60",
        "0.1,1,0.92,0.62",
        "0.01,0,0.93,0.66",
        "0.01,1,0.95,0.68",
    ]
    (root / "results.csv").write_text("\n".join(rows) + "\n")
    html_path, md_path = write_report(root)
    html = check_self_contained(html_path, md_path, 0)
    assert "Not a label-fraction sweep" in html and "No summary.json" in html
    assert "94.00 ± 1.41" in html


def test_sweep_nested_rows_and_child_eval(sweep_dir):
    rows = json.loads((sweep_dir / "results.json").read_text())
    nested = [
        {
            "params": {k: r[k] for k in ("method", "label_fraction")},
            "seed": r["seed"],
            "run_dir": r["run_dir"],
            "metrics": {"test": {"acc": r["acc"]}},
        }
        for r in rows
    ]
    (sweep_dir / "results.json").write_text(json.dumps(nested))
    sweep = load_sweep(sweep_dir)
    assert swept_keys(sweep.params) == ["method", "label_fraction"]
    assert sweep.metrics[0]["acc"] == pytest.approx(rows[0]["acc"])
    assert "recall/big rock" in sweep.metrics[0]  # computed from the child run's eval.json
    series = fraction_series(sweep, "acc")
    assert [s.label for s in series] == ["pretrained", "supervised"]
    assert list(series[0].x) == [0.01, 0.1, 1.0]


def test_missing_sweep_results_named(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(RunLogError, match=r"results\.json"):
        write_report(tmp_path)


def test_helpers():
    assert metric_key("test/acc") == "acc" and metric_key("recall/big rock") == "recall/big rock"
    assert metric_key("label_fraction") is None and metric_key("seed") is None
    s = mean_std([0.9, 0.92])
    assert s.mean == pytest.approx(0.91) and s.std == pytest.approx(0.0141421356) and s.n == 2
    assert mean_std([0.5]).std == 0.0 and mean_std([]).n == 0


def test_classification_run_report(tmp_path, make_run):
    run = make_run(tmp_path / "bcls", with_qualitative=False, with_features=False)
    names = ["drill", "ground", "horizon", "wheel", "sun"]
    cm = [[8, 1, 0, 1, 0], [0, 10, 0, 0, 0], [1, 0, 5, 0, 0], [0, 2, 0, 6, 0], [0, 0, 0, 0, 0]]
    ev = {"task": "classification", "split": "test", "class_names": names, "confusion_matrix": cm, "metrics": {}}
    (run / "eval.json").write_text(json.dumps(ev))
    html_path, md_path = write_report(run)
    html = check_self_contained(html_path, md_path, 5)
    assert "top-1 accuracy" in html and f"{100 * 29 / 34:.2f}" in html
    assert "per-class accuracy" in html.lower() and "n/a" in html  # 'sun' has no test image


def test_per_class_comparison_sums_a_sweeps_runs(sweep_dir, tmp_path):
    import shutil

    from marsvision.evaluation.report import write_per_class_comparison

    first, second = sweep_dir, shutil.copytree(sweep_dir, tmp_path / "method-b")
    figure = write_per_class_comparison([first, second], tmp_path / "per_class.png")
    assert figure.is_file() and figure.stat().st_size > 0
    with pytest.raises(RunLogError, match="missing: run directory does not exist"):
        write_per_class_comparison([first, tmp_path / "missing"], tmp_path / "x.png")


def write_two_arm_sweep(root, make_run, supervised_preds, pretrained_preds):
    label = np.zeros((4, 4), np.int64)
    rows = []
    for weights, preds in ((None, supervised_preds), ("latest:simclr-ai4mars", pretrained_preds)):
        for fraction in (0.01, 1.0):
            name = f"{'random' if weights is None else 'pretrained'}-{fraction}"
            run = make_run(root / name, with_qualitative=False, with_features=False)
            (run / "qualitative").mkdir()
            for index, wrong in enumerate(preds):  # the share of image ``index``'s pixels the arm gets wrong
                pred = (np.arange(16).reshape(4, 4) < 16 * wrong).astype(np.int64)
                np.savez(run / "qualitative" / f"test-{index}.npz", image=np.zeros((4, 4)), label=label, pred=pred)
            rows.append({"model.weights": weights, "label_fraction": fraction, "seed": 0, "run_dir": name, "acc": 0.9})
    (root / "results.json").write_text(json.dumps(rows))
    write_report(root)
    return root / "figures", (root / "report.html").read_text()


def test_paper_000_figures_8_and_9_pick_the_images_each_arm_segments_better(tmp_path, make_run):
    """Fig. 8: test images where the pretrained model is better; Fig. 9: where the supervised one is."""
    figures, _ = write_two_arm_sweep(tmp_path / "each", make_run, (0.0, 0.5), (0.25, 0.0))
    assert (figures / "qualitative_pretrained_better.png").is_file()
    assert (figures / "qualitative_supervised_better.png").is_file()
    assert not (figures / "qualitative_comparison.png").exists()
    figures, html = write_two_arm_sweep(tmp_path / "never", make_run, (0.5, 0.5), (0.25, 0.5))  # a tie is no win
    assert (figures / "qualitative_pretrained_better.png").is_file()
    assert not (figures / "qualitative_supervised_better.png").exists()
    assert "No saved test image where random init beats pretrained (simclr-ai4mars) (Fig. 9)" in html


def test_the_report_command_says_when_it_computes_the_t_sne(tmp_path, make_run):
    run = make_run(tmp_path / "bseg-20260101-000000")
    command = [sys.executable, "-m", "marsvision.cli", "report", str(run), "--json"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["t-SNE of at most 2,000 points a panel: 2 panels"]  # the two in features.npz
    assert set(json.loads(done.stdout)) == {"html", "markdown"}
