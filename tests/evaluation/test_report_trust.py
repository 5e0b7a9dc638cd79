"""Reports a scientist can trust at a glance: initial weights named in words, percentage axes that never go
negative, and files readable by the group (0644 under the usual umask)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from marsvision.evaluation import plots
from marsvision.evaluation.aggregate import fraction_series, value_label
from marsvision.evaluation.plots import Series, plot_metric_vs_fraction
from marsvision.evaluation.report import write_report
from marsvision.evaluation.runlogs import load_sweep


def test_legends_name_the_initialisation_in_words(trust_sweep: Path):
    labels = [s.label for s in fraction_series(load_sweep(trust_sweep), "acc")]
    assert labels == ["random init", "pretrained (demo-simclr)"]
    assert value_label("model.weights", "runs/simclr-ai4mars256-20260101-000000/encoder.pt") == (
        "pretrained (simclr-ai4mars256-20260101-000000)"
    )
    assert value_label("model.weights", "r50_2x_sk1.pt") == "pretrained (r50_2x_sk1)"
    assert value_label("data.label_fraction", 0.1) == "0.1"


def test_a_percentage_axis_never_goes_negative(tmp_path: Path, monkeypatch):
    drawn = []

    def keep(fig, path):
        drawn.append(fig)
        return Path(path)

    monkeypatch.setattr(plots, "_save", keep)
    tiny = Series("random init", [0.1, 1.0], [0.0004, 0.0], [0.004, 0.0])  # ± std reaching below 0 %
    plot_metric_vs_fraction([tiny], tmp_path / "x.png", ylabel="big rock recall (%)")
    low, high = drawn[0].axes[0].get_ylim()
    assert low == 0.0 and 0.4 < high <= 105.0


def test_report_files_get_the_usual_permissions(trust_sweep: Path):
    umask = os.umask(0)
    os.umask(umask)
    for path in write_report(trust_sweep):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
