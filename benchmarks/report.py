"""The Markdown view of a results document: a headline table (figure, value, goal) and one table per benchmark."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        size = abs(value)
        if size == 0 or 1e-3 <= size < 1:
            return f"{value:.{digits}g}"
        if 1 <= size < 10:
            return f"{value:.{digits}f}"
        if 10 <= size < 1e6:
            return f"{value:,.1f}" if size < 1000 else f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_num(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _overhead(r: dict) -> tuple[list[list[Any]], list[str]]:
    head, lines = [], []
    rows = []
    for key in ("finetune", "semiseg"):
        part = r[key]
        steps = part["step_ms"]
        head.append(
            [
                f"overhead {key}: marsvision / plain step",
                part["ratio_marsvision_vs_plain"],
                part["goal"],
                part["goal_met"],
            ]
        )
        rows.append(
            [
                key,
                f"{part['encoder']} {part['image_size']}px b{part['batch_size']}",
                steps["marsvision"]["median_ms"],
                steps["lightning"]["median_ms"],
                steps["plain"]["median_ms"],
                steps["plain_fused"]["median_ms"],
                part["ratio_marsvision_vs_plain"],
                part["ratio_lightning_vs_plain"],
                part["ratio_marsvision_vs_plain_fused"],
            ]
        )
    lines += _table(
        [
            "step",
            "model",
            "marsvision ms",
            "bare Lightning ms",
            "plain ms",
            "plain fused ms",
            "ratio",
            "Lightning ratio",
            "ratio vs plain fused",
        ],
        rows,
    )
    return head, lines


def _utilisation(r: dict) -> tuple[list[list[Any]], list[str]]:
    head, rows = [], []
    for device, part in r.items():
        if not isinstance(part, dict):
            continue
        for key, item in part.items():
            if not (isinstance(item, dict) and "utilisation" in item):
                continue
            reference = part[f"matmul_{item['precision']}"]["reference"]
            head.append([f"utilisation {device} {key}", item["utilisation"], "<= 1 (report)", item["utilisation"] <= 1])
            rows.append(
                [
                    device,
                    key,
                    item["encoder"],
                    item["precision"],
                    item["gflop_per_step"],
                    item["step_ms"],
                    item["achieved_gflops"],
                    reference["gflops"],
                    item["utilisation"],
                ]
            )
    return head, _table(
        ["device", "step", "encoder", "precision", "GFLOP/step", "step ms", "GFLOP/s", "matmul GFLOP/s", "utilisation"],
        rows,
    )


def _membank(r: dict) -> tuple[list[list[Any]], list[str]]:
    share = r["share_of_step"]
    head = [["memory-bank loss share of a semiseg step", share["share"], share["goal"], share["goal_met"]]]
    rows = [
        [
            row["side"],
            row["locations"],
            row["memory_bank_ms"],
            row["memory_bank_peak_mib"],
            row.get("naive_ms", row.get("naive_skipped")),
            row.get("naive_peak_mib"),
        ]
        for row in r["curve"]["rows"]
    ]
    lines = _table(["side", "locations", "bank ms", "bank peak MiB", "naive ms", "naive peak MiB"], rows)
    fits = r["curve"]["power_fits"]
    exponents = ", ".join(f"{k}: L^{v['k']:.2f}" for k, v in fits.items() if v)
    lines += [f"Power-law fits (three largest points): {exponents}.", ""]
    for name, limit in r["curve"]["naive_limit_from_fit"].items():
        lines.append(
            f"- naive loss reaches {name} at {limit['locations']:,} locations (side {limit['side_at_batch']})."
        )
    return head, [*lines, ""]


def _data_pipeline(r: dict) -> tuple[list[list[Any]], list[str]]:
    head, rows = [], []
    for case in r["cases"]:
        rates, model = case["per_worker"], case["model"]
        name = f"{case['source_side']}²→{case['train_side']}²"
        head.append(
            [f"data {name}: workers to feed the model (cached)", case["workers_needed_with_cache"], "(report)", None]
        )
        rows.append(
            [
                name,
                rates["decode_only_images_per_s"],
                rates["no_cache_images_per_s"],
                rates["cache_cold_images_per_s"],
                rates["cache_warm_images_per_s"],
                f"{model['encoder']} ({model['device']})",
                model["images_per_s"],
            ]
        )
    return head, _table(
        ["JPEG → training", "decode img/s", "no cache img/s", "cache cold", "cache warm", "model", "model img/s"], rows
    )


def _inference(r: dict) -> tuple[list[list[Any]], list[str]]:
    head, rows = [], []
    for device, models in r.items():
        for kind, part in models.items():
            for backend in ("eager", "compile", "onnx"):
                item = part.get(backend, {})
                if "latency_ms" in item:
                    rows.append(
                        [
                            device,
                            f"{kind} ({part['encoder']}, {part['image_size']}²)",
                            backend,
                            item["latency_ms"],
                            item["batch"],
                            item["throughput_images_per_s"],
                        ]
                    )
                else:
                    rows.append(
                        [
                            device,
                            f"{kind} ({part['encoder']}, {part['image_size']}²)",
                            backend,
                            item.get("skipped") or item.get("failed"),
                            None,
                            None,
                        ]
                    )
            head.append([f"inference {device} {kind}: eager latency ms", part["eager"]["latency_ms"], "(report)", None])
            for backend in ("compile", "onnx"):
                if "latency_ms" in part.get(backend, {}):
                    speedup = part["eager"]["latency_ms"] / part[backend]["latency_ms"]
                    head.append([f"inference {device} {kind}: eager / {backend} latency", speedup, "(report)", None])
    return head, _table(["device", "model", "backend", "latency ms (1 image)", "batch", "throughput img/s"], rows)


def _simclr(r: dict) -> tuple[list[list[Any]], list[str]]:
    step, pipeline = r["step"], r["end_to_end"]
    head = [
        [
            "SimCLR end to end (decode + views + step), marsvision fast / lightly",
            r["end_to_end_speedup"],
            r["goal"],
            r["goal_met"],
        ],
        [
            "SimCLR end to end, marsvision fast / today",
            pipeline["speedup_vs_today"],
            ">= 2.0",
            pipeline["speedup_vs_today"] >= 2.0,
        ],
        ["SimCLR step images/s (views in memory), marsvision / lightly", step["ratio"], "(report)", None],
    ]
    rows = [[name, step["step_ms"][name], ips] for name, ips in step["images_per_s"].items()]
    lines = _table(["step variant (views in memory)", "step ms", "images/s"], rows)
    rows = [
        [name, pipeline[name]["precision"], pipeline[name]["step_ms"], pipeline[name]["images_per_s"]]
        for name in ("marsvision_today", "marsvision_fast", "lightly")
        if name in pipeline
    ]
    lines += _table(["end to end", "precision", "step ms", "images/s"], rows)
    views = r["augment"]["views_per_s"]
    lines += [
        f"Augmentation, views/s (one thread): marsvision {views['marsvision']:.0f}, lightly {views['lightly']:.0f}.",
        "",
    ]
    return head, lines


def _speedup(r: dict) -> tuple[list[list[Any]], list[str]]:
    head, rows = [], []
    for kind, part in r.items():
        if not isinstance(part, dict):
            continue
        head.append([f"speedup {kind}: fast / today", part["speedup_vs_today"], part["goal"], part["goal_met"]])
        for switch, item in part["switches"].items():
            if "skipped" in item:
                rows.append([kind, switch, item["skipped"], None, None, None])
            else:
                rows.append(
                    [kind, switch, item["precision"], item["step_ms"], item["images_per_s"], item["speedup_vs_today"]]
                )
    return head, _table(["step", "switch", "precision", "step ms", "images/s", "× today"], rows)


def _contention(r: dict) -> tuple[list[list[Any]], list[str]]:
    head, rows = [], []
    for kind, part in r.items():
        if not isinstance(part, dict):
            continue
        head.append(
            [
                f"contention {kind}: beside another job / alone",
                part["contention_slowdown"],
                part["goal"],
                part["goal_met"],
            ]
        )
        rows.append(
            [kind, part["recipe"], part["step_ms_alone"], part["step_ms_beside_other_job"], part["contention_slowdown"]]
        )
    return head, _table(["step", "recipe", "alone ms", "beside another job ms", "slowdown"], rows)


def _breakdown(r: dict) -> tuple[list[list[Any]], list[str]]:
    from benchmarks.breakdown import PARTS

    rows = []
    for kind, part in r.items():
        if not isinstance(part, dict):
            continue
        for variant in ("today", "fast"):
            shares = part[variant]["share"]
            rows.append([kind, variant, part[variant]["step_ms"], *(f"{100 * shares[p]:.0f} %" for p in PARTS)])
    return [], _table(["step", "variant", "ms per step", *PARTS], rows)


def _scaling(r: dict) -> tuple[list[list[Any]], list[str]]:
    meta = r["meta"]
    rows = [
        [side, fit["gib_per_image"], fit["max_batch_24GB_RAM"], fit["max_batch_80GB_GPU"]]
        for side, fit in meta["fits"].items()
    ]
    lines = [f"{meta['encoder']} ({meta['parameters']:,} parameters; weights + Adam {meta['static_gib']:.2f} GiB):", ""]
    lines += _table(["side", "GiB per image", "max batch in 24 GB", "max batch in 80 GB"], rows)
    grid = [[row["side"], row["batch"], row["gflop_per_step"], row["total_gib"]] for row in meta["rows"]]
    lines += _table(["side", "batch", "GFLOP/step", "total GiB"], grid)
    head = []
    for row in meta["rows"]:
        if (row["side"], row["batch"]) == (512, 8):
            head.append(["scaling: paper step (512², batch 8) memory GiB", row["total_gib"], "(report)", None])
    for row in r["measured"]["paper_model_on_this_cpu"]:
        if (row["side"], row["batch"]) == (512, 8):
            head.append(
                [
                    "scaling: paper step (512², batch 8) predicted s on this CPU",
                    row["predicted_step_s"],
                    "(report)",
                    None,
                ]
            )
    fit512 = meta["fits"].get("512")
    if fit512:
        head.append(
            [
                "scaling: paper model max batch at 512² in 24 GB / 80 GB",
                f"{fit512['max_batch_24GB_RAM']} / {fit512['max_batch_80GB_GPU']}",
                "(report)",
                None,
            ]
        )
    check = r.get("rss_check")
    if check:
        head.append(
            [
                f"scaling: real CPU step ({check['side']}², batch {check['batch']}) GiB / meta estimate",
                f"{check['measured_gib']:.2f} / {check['meta_estimate_gib']:.2f}",
                "(report)",
                None,
            ]
        )
    if "cuda" in r:
        lines += _table(
            ["side", "batch", "step ms", "peak GiB"],
            [[x["side"], x["batch"], x.get("step_ms", "OOM"), x.get("peak_gib")] for x in r["cuda"]["rows"]],
        )
    return head, lines


SECTIONS: dict[str, tuple[str, Callable[[dict], tuple[list[list[Any]], list[str]]]]] = {
    "overhead": ("1. Framework overhead", _overhead),
    "utilisation": ("2. Hardware utilisation", _utilisation),
    "membank": ("3. Memory-bank loss cost", _membank),
    "data_pipeline": ("4. Data pipeline (per worker)", _data_pipeline),
    "inference": ("5. Inference at 512²", _inference),
    "simclr_vs_lightly": ("6. SimCLR vs lightly", _simclr),
    "scaling": ("7. Scaling of the paper configuration", _scaling),
    "speedup": ("8. Training throughput per speed switch", _speedup),
    "contention": ("9. Sharing the cores with another job", _contention),
    "breakdown": ("10. Where an epoch's time goes", _breakdown),
}


def _provenance(entry: dict) -> str:
    """When and from which commit an entry came, under what load; older entries recorded only their date."""
    parts = [f"finished {entry['date_utc']}"] if "date_utc" in entry else []
    if entry.get("git_commit"):
        parts.append(f"commit {entry['git_commit']}")
    if entry.get("load_average_at_start") is not None:
        parts.append(f"load average at start {entry['load_average_at_start']}")
    return "; " + ", ".join(parts) if parts else ""


def markdown(document: dict) -> str:
    env = document["environment"]
    lines = [
        f"# marsvision benchmarks: {env['machine']} ({env['size']} size)",
        "",
        f"{env['date_utc']}, commit {env['git_commit']}; {env['cpu']} ({env['cpu_count']} CPUs, "
        f"flags {' '.join(env.get('cpu_flags', [])) or 'unknown'}, native bf16: {env.get('cpu_native_bf16')}), "
        f"torch {env['torch']} with {env['torch_threads']} threads, GPU: {env['cuda'] or 'none'}; "
        f"load average at start {env.get('load_average_at_start')}.",
        "",
    ]
    headline: list[list[Any]] = []
    body: list[str] = []
    for name, entry in document["benchmarks"].items():
        title, render = SECTIONS[name]
        body += [f"## {title}", "", f"{entry['seconds']} s, {entry['torch_threads']} threads{_provenance(entry)}.", ""]
        if entry["status"] == "error":
            headline.append([title, "error", None, None])
            body += ["```", entry["result"].get("error", "").strip(), "```", ""]
            continue
        try:
            head, section = render(entry["result"])
        except (AttributeError, KeyError, TypeError, ZeroDivisionError) as error:
            head, section = [[title, f"cannot summarise: {error!r}", None, None]], []
        head += [[f"{title}: failed check", check, None, False] for check in entry["result"].get("failed_checks", [])]
        headline += head
        body += section
    lines += ["## Headline figures", ""]
    lines += _table(["figure", "value", "goal", "met"], headline)
    return "\n".join(lines + body).rstrip() + "\n"
