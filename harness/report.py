"""`harness report`: tables, plots, JSON and Markdown from run directories, and the selected
patch per issue as SWE-bench predictions (for sb-cli and the official harness)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from harness.errors import UserError
from harness.metrics import PowerLaw, curve_ks, dataset_curve, log_spaced_ks
from harness.store import RunStore
from harness.summary import official_report, summarize
from harness.tables import fitted


def load_summary(
    run_dir: Path, include_flagged: bool | None = None
) -> tuple[RunStore, dict[str, Any]]:
    store = RunStore(run_dir)
    if store.manifest() is None:
        raise UserError(f"{run_dir} is not a run directory (no manifest.json)")
    summary = summarize(store, include_flagged=include_flagged)
    if not summary["n_issues"]:
        raise UserError(f"{run_dir} holds no samples yet: nothing to report")
    return store, summary


def dollars_per_sample(summary: dict) -> float:
    samples = sum(i["samples"] for i in summary["issues"].values()) or 1
    return summary["cost"]["dollars"] / samples


def coverage_tables(summaries: list[dict], width: int) -> list[Table]:
    """coverage@k (and what it cost), the official rules, selection and the verdict mix per
    run, as tables that fit `width` without cutting a figure."""
    ks = sorted({int(k) for s in summaries for k in s.get("coverage_at", {})})
    columns = [("run", "left"), *((f"k={k}", "right") for k in ks)]
    columns += [(name, "right") for name in COVERAGE_COLUMNS]
    rows = [_coverage_row(s, ks) for s in summaries]
    title = "coverage@k (unbiased estimator), with the cost of k samples per issue"
    return fitted(title, columns, rows, width)


COVERAGE_COLUMNS = (
    "official@n",
    "majority",
    "semantic vote",
    "first valid",
    "suspicious",
    "flagged",
    "apply failed",
    "timeout",
    "error",
    "missing",
)


def _coverage_row(s: dict, ks: list[int]) -> list[str]:
    cells = [s["run_id"]]
    for k in ks:
        cov = s.get("coverage_at", {}).get(str(k))
        cost = dollars_per_sample(s) * k * s["n_issues"]
        cells.append("-" if cov is None else f"{cov:.1%}" + (f"\n${cost:,.2f}" if cost else ""))
    official = s.get("official_coverage_at", {})
    last = max(official, key=int) if official else None
    return [
        *cells,
        f"{official[last]:.1%}" if last else "-",
        f"{s['selection']['majority_vote']:.1%}",
        f"{s['selection'].get('semantic_vote', 0):.1%}",
        f"{s['selection']['first_valid']:.1%}",
        str(s["patch_statuses"].get("suspicious", 0)),
        str(sum(s.get("flags", {}).values())),
        *(str(s["patch_statuses"].get(k, 0)) for k in ("apply_failed", "timeout", "error")),
        str(s.get("missing", {}).get("samples", 0)),
    ]


def plot(summaries: list[dict], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    paths = []
    for x_kind in ("samples", "cost"):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        styles = itertools.cycle(PLOT_STYLES)
        highest = 0.0
        for s in summaries:
            ks, cov = s["curve"]["k"], s["curve"]["coverage"]
            if not ks:
                continue
            scale = dollars_per_sample(s) * s["n_issues"] if x_kind == "cost" else 1
            if x_kind == "cost" and not scale:
                continue
            xs = [k * scale for k in ks]
            highest = max(highest, *cov)
            (line,) = ax.plot(xs, cov, marker="o", ms=3, lw=2, label=s["run_id"])
            _plot_selection(ax, s, scale, styles)
            if s.get("fit"):
                law = PowerLaw(s["fit"]["a"], s["fit"]["b"])
                fine = [k / 4 for k in range(4, 4 * min(max(ks), 75) + 1)]
                fine += [float(k) for k in curve_ks(4 * max(ks)) if k > 75]
                ax.plot(
                    [k * scale for k in fine],
                    [law.coverage(k) for k in fine],
                    "--",
                    color=line.get_color(),
                    alpha=0.7,
                    label=f"{s['run_id']} fit",
                )
        ax.set_xscale("log")
        # plain numbers (1, 10, 100) rather than powers of ten: k and dollars read as counts
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_ylim(0, min(1.0, max(highest * 1.15, 0.02)))  # scaled to the data
        ax.set_xlabel("samples per issue (k)" if x_kind == "samples" else "cost (USD)")
        ax.set_ylabel("coverage (issues solved by any of k samples)")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no cost lines when nothing was priced
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside
        path = out_dir / f"coverage_vs_{x_kind}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")  # the legend beside the axes
        plt.close(fig)
        paths.append(path)
    return paths


PLOT_STYLES = tuple(
    zip(
        ("tab:red", "tab:green", "tab:purple", "tab:orange", "tab:cyan", "tab:brown", "tab:pink"),
        ("--", ":", "-.", (0, (5, 1)), (0, (1, 1)), (0, (3, 1, 1, 1)), (0, (8, 2))),
        "xs^Dv*P",
        strict=True,
    )
)
"""A colour, a dash and a marker per selector curve: told apart without reading markers."""


def _plot_selection(ax, summary: dict, scale: float, styles) -> None:
    """Each selector's selection@k under its run's coverage line, each in its own colour,
    dash and marker."""
    for name, curve in summary.get("selection_at", {}).items():
        color, dash, marker = next(styles)
        xs = [k * scale for k in curve["k"]]
        label = f"{summary['run_id']}: {name}"
        ax.plot(xs, curve["mean"], ls=dash, marker=marker, ms=4, mfc="none", color=color,
                label=label)  # fmt: skip


def selection_gap(summary: dict) -> str:
    """Coverage and each selector at the largest k of the selection curves, and the gap."""
    curves = summary.get("selection_at") or {}
    if not curves:
        return ""
    k = next(iter(curves.values()))["k"][-1]
    coverage = summary.get("coverage_at", {}).get(str(k))
    if coverage is None:
        return ""
    parts = [
        f"{name} {c['mean'][-1]:.1%} (gap {coverage - c['mean'][-1]:+.1%})"
        for name, c in curves.items()
    ]
    return f"at k = {k}: coverage {coverage:.1%}; " + "; ".join(parts)


def selection_cost(summary: dict) -> str:
    """What the signals behind the selectors cost (`harness signals`)."""
    cost = summary.get("selection_cost") or {}
    container = cost.get("regression_container_s", 0) + cost.get("reproduction_container_s", 0)
    tokens = cost.get("tokens") or {}
    return (
        f"{container:,.0f} container s (regression and reproduction tests), "
        f"{tokens.get('prompt', 0):,} prompt + {tokens.get('completion', 0):,} completion "
        f"tokens (tests written, judge), ${cost.get('dollars', 0):,.2f}"
    )


def predictions(
    store: RunStore, summary: dict, model_name: str, chosen_by: str = "vote"
) -> list[dict[str, str]]:
    """As SWE-bench predictions: in predictions mode an issue's one prediction as the file held
    it; else the patch the named selector picks among those that apply ("" when none does)."""
    from harness.selection import selector

    selector(chosen_by)  # a one-line error for an unknown name
    as_given = summary.get("mode") == "predictions"
    return [
        {
            "instance_id": iid,
            "model_name_or_path": model_name,
            "model_patch": _predicted(store.issue_candidates(iid, as_given), issue, chosen_by),
        }
        for iid, issue in summary["issues"].items()
        if issue["samples"] or not as_given  # an issue the file has no row for: none
    ]


def _predicted(cands: list, issue: dict, chosen_by: str) -> str:
    if issue.get("prediction"):  # predictions mode: the file's own patch, whatever our verdict
        index = issue["prediction"]["sample_index"]
        return next((c.raw_output or "" for c in cands if c.sample_index == index), "")
    pick = issue["picks"][chosen_by]
    return next((c.patch for c in cands if pick and c.patch_sha == pick), "")


def coverage_at(summary: dict, k: int) -> float:
    """coverage@k of a run, from its curve or (a k between its points) from its issues."""
    curve = summary["curve"]
    at = dict(zip(curve["k"], curve["coverage"], strict=True))
    if k in at:
        return at[k]
    return dataset_curve([(i["n"], i["c"]) for i in summary["issues"].values()], [k])[0]


def flops_matched(a: dict, b: dict) -> list[dict]:
    """For each k of run b, the k of run a that spends the same FLOPs per issue, and both
    coverages: a small model with many samples against a larger one with few."""
    fa, fb = a["cost"].get("flops_per_sample"), b["cost"].get("flops_per_sample")
    if not fa or not fb:
        return []
    rows = []
    for kb in log_spaced_ks(b["samples_per_issue"]):
        ka = round(kb * fb / fa)
        if 1 <= ka <= a["samples_per_issue"]:
            rows.append(
                {
                    "flops_per_issue": kb * fb,
                    a["run_id"]: {"k": ka, "coverage": coverage_at(a, ka)},
                    b["run_id"]: {"k": kb, "coverage": coverage_at(b, kb)},
                }
            )
    return rows


def markdown(summaries: list[dict], plots: list[Path], matched: list[dict]) -> str:
    lines = ["# swe-monkeys report", ""]
    for s in summaries:
        lines += [
            f"## {s['run_id']}",
            "",
            f"- model: `{s.get('model')}`, dataset: `{s.get('dataset')}`, "
            f"{s['n_issues']} issues x {s['samples_per_issue']} samples"
            + ("" if s.get("complete") else " (incomplete)"),
            f"- solved by any sample: {s['resolved_any']:.1%}; majority vote "
            f"{s['selection']['majority_vote']:.1%}; "
            f"first valid {s['selection']['first_valid']:.1%}; semantic vote "
            f"{s['selection'].get('semantic_vote', 0):.1%}",
            f"- selection without the hidden tests, {selection_gap(s) or 'no curve'}",
            f"- selection cost: {selection_cost(s)}",
            f"- distinct patches: {_statuses(s)}; samples missing: "
            f"{s.get('missing', {}).get('samples', 0)} ({s.get('convention', '')})",
            f"- tokens: {s['tokens']['prompt']:,} prompt + {s['tokens']['completion']:,} "
            f"completion; cost ${s['cost']['dollars']:,.2f}"
            + (f"; {s['cost']['flops']:.3g} FLOPs" if s["cost"].get("flops") else ""),
        ]
        if s.get("fit"):
            f = s["fit"]
            lines.append(
                f"- fit: log(coverage) = {f['a']:.3f} * k^{f['b']:.3f}; "
                f"50% at k = {f['k_for_50pct']:.3g}, 80% at k = {f['k_for_80pct']:.3g}"
            )
        flags = ", ".join(f"{n} {rule}" for rule, n in sorted(s.get("flags", {}).items()))
        lines.append(
            f"- integrity screen: {flags or 'nothing flagged'}; flagged candidates are "
            + ("counted" if s.get("include_flagged") else "excluded from coverage and selection")
        )
        official = s.get("official_coverage_at", {})
        flagged_in = s.get("coverage_with_flagged_at", {})
        if flagged_in:
            lines.append(
                f"- {s['resolving_flagged']} resolving sample(s) flagged: coverage with them "
                "counted is its own column"
            )
        header = "| k | coverage | official rules |" + (" with flagged |" if flagged_in else "")
        lines += ["", header, "|---:|---:|---:|" + ("---:|" if flagged_in else "")]
        for k, v in s.get("coverage_at", {}).items():
            row = f"| {k} | {v:.1%} | " + (f"{official[k]:.1%}" if k in official else "-") + " |"
            lines.append(row + (f" {flagged_in[k]:.1%} |" if k in flagged_in else ""))
        lines.append("")
    if matched:
        lines += [
            "## FLOPs-matched comparison",
            "",
            "```",
            json.dumps(matched, indent=1),
            "```",
            "",
        ]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def _statuses(summary: dict) -> str:
    counts = summary.get("patch_statuses", {})
    order = (
        "resolved",
        "unresolved",
        "suspicious",
        "apply_failed",
        "timeout",
        "error",
        "unverified",
    )
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in order)


def official_report_name(summary: dict) -> str:
    """As the official harness names its run report: <model with / as __>.<run id>.json."""
    return f"{str(summary.get('model') or 'unknown').replace('/', '__')}.{summary['run_id']}.json"


def write_report(
    run_dirs: list[Path],
    out_dir: Path,
    include_flagged: bool | None = None,
    chosen_by: str = "vote",
    html_dir: Path | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """The report's files in out_dir and, given html_dir, the site there. Runs are read an
    issue at a time; the site is written before the plots and the stores' indexes let go
    between, so matplotlib's fixed ~55 MB add to as little as they can (bench_store)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = [load_summary(d, include_flagged) for d in run_dirs]
    summaries = [s for _, s in loaded]
    for store, s in loaded:
        store.write_json("summary.json", s)
        preds = predictions(store, s, s.get("model") or "swe-monkeys", chosen_by)
        (out_dir / f"{store.run_id}.predictions.jsonl").write_text(
            "".join(json.dumps(p) + "\n" for p in preds)
        )
        (out_dir / official_report_name(s)).write_text(
            json.dumps(official_report(s, chosen_by), indent=4) + "\n"
        )
    site = None
    if html_dir is not None:
        from harness.html_report import write_html

        site = write_html(loaded, html_dir)
    for store, _ in loaded:
        store.forget()
    drawn = plot(summaries, out_dir) if plots else []
    matched = flops_matched(summaries[0], summaries[1]) if len(summaries) == 2 else []
    (out_dir / "report.md").write_text(markdown(summaries, drawn, matched))
    (out_dir / "summary.json").write_text(
        json.dumps({"runs": summaries, "flops_matched": matched}, indent=2, sort_keys=True)
    )
    return {"summaries": summaries, "plots": drawn, "matched": matched, "site": site}
