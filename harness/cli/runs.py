"""Reading runs: report, nightly, show, status, ls. A run is named by its id (under
--runs-dir) or by its directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.app import command, console
from harness.cli.options import RunRef, RunsDir, resolve_run
from harness.errors import UserError


@command()
def report(
    runs: Annotated[
        list[str], typer.Argument(help="Run ids (under --runs-dir) or directories, overlaid.")
    ],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: RUN/report).")] = None,
    include_flagged: Annotated[
        bool | None,
        typer.Option(
            "--include-flagged/--exclude-flagged",
            help="Count screen-flagged candidates (default: as the run was made).",
        ),
    ] = None,
    selector: Annotated[
        str,
        typer.Option(
            help="Which patch per issue the predictions file and the official report hold: "
            "vote (the most frequent normalised patch), semantic-vote (votes pooled over "
            "patches whose code is the same once comments and formatting are left out), "
            "regression-vote (the vote among patches that broke none of the repo's tests near "
            "their edits; run `harness signals` first), reproduction-vote (the patches that pass "
            "the most model-written tests reproducing the issue, then regression-vote; `harness "
            "signals --repro-tests N`), judge (the model judge's choice among the top few; "
            "`harness signals --judge N`) or first-valid. None of them reads the hidden tests.",
        ),
    ] = "vote",
    runs_dir: RunsDir = Path("runs"),
    html: Annotated[
        bool,
        typer.Option(
            "--html",
            help="Also write a static site (OUT/html/index.html) that opens from disk: the "
            "curves, the issue table and every candidate with its diff, verdict and log.",
        ),
    ] = False,
    plots: Annotated[
        bool,
        typer.Option(
            "--plots/--no-plots",
            help="Draw the PNG curves. Drawing them imports matplotlib, about 55 MB of the "
            "report's memory at any run size; the HTML site draws its own.",
        ),
    ] = True,
) -> None:
    """Table, coverage-versus-samples and -cost plots (PNG, with each selector's
    selection@k), JSON, Markdown, and the selected patch per issue as SWE-bench predictions;
    a FLOPs-matched comparison for two runs; with --html, a site to browse the runs."""
    from harness.report import write_report
    from harness.selection import selector as named_selector

    named_selector(selector)  # before any work: a one-line error for an unknown name
    paths = [resolve_run(ref, runs_dir) for ref in runs]
    out = out or (paths[0] / "report")
    site = out / "html" if html else None
    _print_report(write_report(paths, out, include_flagged, selector, site, plots), out)


def _print_report(result: dict, out: Path) -> None:
    from harness.report import coverage_tables, selection_cost, selection_gap

    for table in coverage_tables(result["summaries"], console.width):
        console.print(table)
    if result["site"]:
        console.print(f"HTML report: {result['site']}")
    for s in result["summaries"]:
        if gap := selection_gap(s):
            console.print(f"{s['run_id']}: selection without the hidden tests, {gap}")
            console.print(f"{s['run_id']}: selection cost, {selection_cost(s)}")
    for row in result["matched"]:
        console.print(f"FLOPs-matched: {row}")
    drawn = ", ".join(str(p) for p in result["plots"]) or "none (--no-plots)"
    console.print(f"report: {out / 'report.md'}; plots: {drawn}")


@command()
def nightly(
    config: Annotated[Path, typer.Argument(help="The nightly configuration (TOML).")],
    date: Annotated[str | None, typer.Option(help="The night (YYYY-MM-DD); default today.")] = None,
) -> None:
    """One dated eval per model, then a trend report against earlier nights. Exit status 1
    when coverage dropped by more than the noise between nights. Run it from cron or Slurm."""
    from harness.nightly import run_nightly

    trends, out = run_nightly(config, date)
    for model, t in trends.items():
        console.print(f"{model}: {t['message']}")
    console.print(f"trend: {out / 'trend.md'}")
    raise typer.Exit(1 if any(t["regression"] for t in trends.values()) else 0)


@command()
def show(
    run: RunRef,
    instance: Annotated[str, typer.Argument(help="The instance id.")],
    sample: Annotated[int, typer.Argument(help="The sample index.")],
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """A trajectory of the agentic agent as a readable transcript."""
    from harness.store import RunStore

    path = resolve_run(run, runs_dir)
    data = RunStore(path).trajectory(instance, sample)
    if data is None:
        raise UserError(
            f"no trajectory {instance} #{sample} in {path} (only agentic runs keep them)"
        )
    prompt = sum(s["prompt_tokens"] for s in data["steps"])
    completion = sum(s["completion_tokens"] for s in data["steps"])
    console.print(
        f"[bold]{instance} #{sample}[/]: {len(data['steps'])} steps, "
        f"{data['seconds']:.1f} s, {prompt} + {completion} tokens, "
        f"ended: {data['exit_reason']}"
    )
    for message in data["messages"][1:]:
        role = {"assistant": "[bold cyan]model[/]", "user": "[bold]env[/]"}[message["role"]]
        console.print(f"\n{role}\n{escape(message['content'])}")


@command()
def status(run: RunRef, runs_dir: RunsDir = Path("runs")) -> None:
    """The live view, once, of a run (in progress or finished)."""
    from harness.html_report import site_of
    from harness.progress import RunState, render
    from harness.store import RunStore

    store = RunStore(resolve_run(run, runs_dir))
    console.print(render(RunState.from_store(store)))
    if (site := site_of(store.run_dir)).exists():
        console.print(f"HTML report: {site} (`harness report {store.run_id} --html` renews it)")
    if left := left_behind(store, Engines()):
        console.print(f"[yellow]{left}[/]")


class Engines:
    """Sandbox backends by name, each reached once (None: its engine does not answer)."""

    def __init__(self) -> None:
        self.reached: dict[str, object] = {}

    def sandbox(self, name: str):
        if name not in self.reached:
            from sandbox import backends

            try:
                self.reached[name] = backends.get(name).sandbox()
                self.reached[name].count("")  # reach the engine now, once
            except Exception:  # noqa: BLE001 - no engine here: nothing can be left on it
                self.reached[name] = None
        return self.reached[name]


def left_behind(store, engines: Engines) -> str:
    """A line naming the containers a run left up after its process died, with the command
    that removes them ('' when there are none, or the run is live, or no engine answers)."""
    if store.holder():
        return ""
    name = (store.manifest() or {}).get("sandbox") or "docker"
    box = engines.sandbox(name)
    try:
        count = box.count(store.run_id) if box is not None else 0
    except Exception:  # noqa: BLE001 - an engine that went away leaves nothing to say
        count = 0
    if not count:
        return ""
    clean = f"harness clean --run-id {store.run_id}" + (
        f" --sandbox {name}" if name != "docker" else ""
    )
    return (
        f"{count} container(s) of {store.run_id} still up, its process gone: `{clean}` removes them"
    )


LS_COLUMNS = ("run", "state", "command", "created", "dataset", "model", "issues x k", "cov@1",
              "cov@k", "cost")  # fmt: skip


@command("ls")
def list_runs(runs_dir: RunsDir = Path("runs")) -> None:
    """The runs under --runs-dir, newest first: state (running, done, interrupted, failed,
    damaged), dataset, model, samples, coverage and cost."""
    from harness.store import RunStore

    dirs = (
        [d for d in runs_dir.iterdir() if (d / "manifest.json").exists()]
        if runs_dir.is_dir()
        else []
    )
    engines = Engines()
    ordered = sorted(dirs, key=lambda d: (d / "manifest.json").stat().st_mtime, reverse=True)
    stores = [RunStore(d) for d in ordered]
    rows = [_run_row(store) for store in stores]
    notes = [n for store in stores if (n := left_behind(store, engines))]
    if console.width >= WIDE:
        table = Table(title=f"runs in {runs_dir}")
        for col in LS_COLUMNS:
            table.add_column(col, no_wrap=col == "run")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:
        console.print(f"runs in {runs_dir} (newest first)")
        for row in rows:  # narrow terminals: the full id on its own line, the rest below it
            details = "  ".join(f"{c} {v}" for c, v in zip(LS_COLUMNS[2:], row[2:], strict=True))
            console.print(f"{row[0]}  [bold]{row[1]}[/]\n    {escape(details)}")
    for note in notes:
        console.print(f"[yellow]{escape(note)}[/]")


WIDE = 140
"""Below this many columns `ls` prints two lines per run instead of a table."""


def _run_row(store) -> list[str]:
    from harness.summary import summarize_cached

    d = store.run_dir
    manifest = store.manifest()
    try:
        # verify and validate runs have verdicts and no candidates: nothing is missing
        summary = (
            summarize_cached(store)
            if (d / "candidates.jsonl").exists()
            else {"n_issues": 0, "complete": True}
        )
    except UserError:  # damaged records: `status` names the line
        summary = {"n_issues": 0, "damaged": True}
    cov = summary.get("coverage_at", {})
    n = summary.get("samples_per_issue", 0)
    identity = manifest.get("identity", {})
    return [
        d.name,
        run_state(store, summary),
        manifest.get("command", "?"),
        manifest.get("created_at", "")[:16],
        str(identity.get("dataset") or manifest.get("dataset", "")),
        str(identity.get("model") or manifest.get("model", "")),
        f"{summary.get('n_issues', 0)} x {n}",
        f"{cov['1']:.1%}" if "1" in cov else "-",
        f"{cov[str(n)]:.1%}" if str(n) in cov else "-",
        f"${summary['cost']['dollars']:.2f}" if "cost" in summary else "-",
    ]


def run_state(store, summary: dict) -> str:
    """running: a live process holds the run; done: every sample generated and verified;
    failed: it ended with samples the model server or the sandbox never finished;
    interrupted: it stopped before generating them all (Ctrl-C, a kill); damaged: records
    that do not parse."""
    if store.holder():
        return "running"
    if summary.get("damaged"):
        return "damaged"
    if summary.get("complete"):
        return "done"
    missing = summary.get("missing", {})
    if missing.get("unanswered") or missing.get("unfinished_verifications"):
        return "failed"
    return "interrupted"
