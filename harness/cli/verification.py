"""verify (one patch, one instance) and validate (gold resolves, empty does not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.app import command, console
from harness.cli.common import select, verdict_style
from harness.cli.options import (
    HALF_THE_CORES,
    Dataset,
    ExcludeFlaky,
    FullTests,
    Images,
    Instances,
    Isolation,
    Model,
    NetworkCheck,
    Repeat,
    RunId,
    RunRef,
    RunsDir,
    Split,
    ValidateWorkers,
    grouped,
    resolve_run,
)
from harness.errors import UserError

MAX_PATCH_BYTES = 64 * 2**20


def _patch_text(patch: str, target) -> str:
    if patch == "gold":
        return target.gold_patch
    if patch == "empty":
        return ""
    path = Path(patch)
    if not path.exists():
        raise UserError(f"--patch {patch}: no such file (or use gold / empty)")
    if not path.is_file():  # a device (/dev/urandom), a pipe, a folder: no end, or no text
        raise UserError(f"--patch {patch}: not a regular file; give a patch file")
    if path.stat().st_size > MAX_PATCH_BYTES:
        raise UserError(f"--patch {patch}: over {MAX_PATCH_BYTES // 2**20} MiB, not a patch")
    return path.read_text(encoding="utf-8", errors="surrogateescape")


@command()
@grouped
def verify(
    dataset: Dataset,
    instance: Annotated[str, typer.Option("--instance", "-i", help="The instance id.")],
    patch: Annotated[str, typer.Option(help="A patch file, 'gold' or 'empty'.")],
    split: Split = "test",
    run_id: RunId = None,
    runs_dir: RunsDir = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
    exclude_flaky: ExcludeFlaky = False,
    full_tests: FullTests = False,
    isolation: Isolation = Isolation(),
    images: Images = Images(),
) -> None:
    """Verify one patch for one instance in a fresh container and print the verdict.

    Exit status: 0 resolved, 1 not resolved, 2 a usage or setup error, 3 the sandbox failed
    (after retries at 5, 15 and 45 s: run it again)."""
    import threading

    from harness import wiring
    from harness.config import RetryPolicy
    from harness.validate import until_decided

    limits = isolation.limits()
    (target,) = wiring.load(dataset, split, [instance])
    text = _patch_text(patch, target)
    pipe = wiring.build_pipeline(
        run_id or wiring.new_run_id("verify"),
        runs_dir,
        limits,
        images.options(),
        {"command": "verify", "dataset": dataset, "instance": instance},
        exclude_flaky=exclude_flaky,
        backend=images.sandbox,
        full_tests=full_tests,
    )
    try:
        verify = until_decided(pipe.verifier.verify, RetryPolicy(), threading.Event())
        verdict = verify(target, text)
        pipe.store.append_verdict(verdict)
        pipe.sandbox.cleanup(pipe.store.run_id)  # what a daemon restart stopped, unremoved
    finally:
        pipe.store.unlock()
    if as_json:
        data = {**verdict.to_dict(), "run_dir": str(pipe.store.run_dir.resolve())}
        data["log_path"] = pipe.store.relative(verdict.log_path)  # paths are the run's own
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print_verdict(verdict)
    raise typer.Exit(0 if verdict.resolved else (1 if verdict.decided else 3))


def print_verdict(verdict) -> None:
    table = Table(title=f"{verdict.instance_id}  patch {verdict.patch_sha[:12]}", show_lines=False)
    table.add_column("kind", no_wrap=True)
    table.add_column("test", overflow="fold")
    table.add_column("status", no_wrap=True)
    for kind, tests in (
        ("FAIL_TO_PASS", verdict.fail_to_pass),
        ("PASS_TO_PASS", verdict.pass_to_pass),
    ):
        for test, status in tests.items():
            style = "green" if status in ("PASSED", "XFAIL") else "red"
            table.add_row(kind, escape(test), f"[{style}]{escape(status)}[/]")
    if table.row_count:
        console.print(table)
    style = verdict_style(verdict.status.value)
    console.print(
        f"verdict: [bold {style}]{verdict.status.value}[/]"
        + (f"  ({escape(verdict.reason)})" if verdict.reason else "")
    )
    official = {True: "resolved", False: "not resolved", None: "-"}[verdict.official_resolved]
    console.print(
        f"official rules: {official}; outcomes from: {verdict.channel or '-'}"
        + (f"; apply: {escape(verdict.apply_command)}" if verdict.apply_command else "")
    )
    for flag in verdict.flags:
        console.print(f"[yellow]flagged[/] {escape(flag)}")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in verdict.durations.items())
    console.print(f"image {escape(verdict.image)}  network {verdict.network}  {timing}")
    if verdict.artifacts:
        console.print(f"evidence: {escape(verdict.artifacts)} (in the run directory)")


@command()
@grouped
def validate(
    dataset: Dataset,
    instances: Instances = None,
    split: Split = "test",
    workers: ValidateWorkers = HALF_THE_CORES,
    network_check: NetworkCheck = True,
    repeat: Repeat = 1,
    run_id: RunId = None,
    runs_dir: RunsDir = Path("runs"),
    isolation: Isolation = Isolation(),
    images: Images = Images(),
) -> None:
    """Run the gold and the empty patch of each instance: gold must resolve, empty must not.

    Lists every instance whose gold patch fails, whose empty patch passes, or whose gold patch
    passes only with the network. A verification the sandbox never finished is retried (5, 15,
    45 s), then leaves its instance not validated. Exit status: 0 every instance sound, 1 any
    unsound, 3 only sandbox failures left (run it again)."""
    from harness import wiring
    from harness.validate import exit_status
    from harness.validate import validate as run_validation

    limits = isolation.limits()
    chosen = select(dataset, split, instances)
    pipe = wiring.build_pipeline(
        run_id or wiring.new_run_id("validate"),
        runs_dir,
        limits,
        images.options(),
        {"command": "validate", "dataset": dataset, "repeat": repeat},
        backend=images.sandbox,
        full_tests=True,  # --repeat measures every test's outcome
    )
    console.print(
        f"validating {len(chosen)} instance(s) from {dataset}, "
        f"network {limits.network}, run {pipe.store.run_dir}"
    )
    try:
        results = run_validation(
            pipe.verifier.verify, chosen, limits, workers, network_check, _recorder(pipe), repeat
        )
        # Containers a daemon restart stopped before they could be removed (their
        # verifications were retried): swept as `eval` sweeps its own.
        pipe.sandbox.cleanup(pipe.store.run_id)
    except KeyboardInterrupt:
        removed = pipe.sandbox.cleanup(pipe.store.run_id)
        console.print(f"interrupted: removed {removed} container(s)")
        raise
    finally:
        pipe.store.unlock()
    _print_validation(results)
    if repeat > 1:
        from harness.validate import record_flaky

        record_flaky(wiring.flaky_path(), results)
        flaky = sum(bool(r.flaky) for r in results)
        console.print(f"{flaky} instance(s) with flaky tests; recorded in {wiring.flaky_path()}")
    raise typer.Exit(exit_status(results))


def _recorder(pipe):
    def record(result) -> None:
        for verdict in filter(None, (result.gold, result.empty, result.gold_with_network)):
            pipe.store.append_verdict(verdict)
        with (pipe.store.run_dir / "validation.jsonl").open("a") as f:
            f.write(json.dumps(result.record()) + "\n")
        mark = (
            "[green]ok[/]"
            if result.ok
            else ("[yellow]NOT VALIDATED[/]" if result.infra else "[red]PROBLEM[/]")
        )
        console.print(
            f"  {mark} {result.instance_id}" + (f"  {escape(result.note)}" if result.note else "")
        )

    return record


def _print_validation(results) -> None:
    table = Table(title="validation")
    for col in ("instance", "gold", "empty"):
        table.add_column(col, no_wrap=True)
    table.add_column("note", overflow="fold", ratio=1)
    table.add_column("time", no_wrap=True, justify="right")
    for r in results:
        cells = []
        for v in (r.gold, r.empty):
            cells.append(f"[{verdict_style(v.status.value)}]{v.status.value}[/]" if v else "-")
        secs = sum(
            v.durations.get("total_s", 0) for v in (r.gold, r.empty, r.gold_with_network) if v
        )
        table.add_row(r.instance_id, *cells, escape(r.note), f"{secs:.0f}s")
    console.print(table)
    groups = {
        "gold patch fails": [
            r for r in results if r.gold and not r.gold.resolved and not r.needs_network
        ],
        "gold passes only with the network": [r for r in results if r.needs_network],
        "empty patch passes": [r for r in results if r.empty and r.empty.resolved],
        "could not validate": [r for r in results if r.error],
    }
    good = sum(r.ok for r in results)
    console.print(f"{good}/{len(results)} instances sound")
    for title, rows in groups.items():
        if rows:
            console.print(f"[bold red]{title}[/]: " + ", ".join(r.instance_id for r in rows))


@command()
@grouped
def signals(
    run: RunRef,
    repro_tests: Annotated[
        int,
        typer.Option(
            min=0,
            help="Reproduction tests the model writes per issue from the issue text (0: none; "
            "the model is --model's, started only when some issue has fewer; a larger N "
            "later tops them up).",
        ),
    ] = 0,
    judge: Annotated[
        int,
        typer.Option(
            min=0,
            help="Samples of the model judging the top few patches of each issue (0: no judge; "
            "run after the other signals, whose ranking chooses what it compares).",
        ),
    ] = 0,
    runs_dir: RunsDir = Path("runs"),
    isolation: Isolation = Isolation(),
    images: Images = Images(),
    model: Model = Model(),
) -> None:
    """Signals for choosing each issue's patch without the hidden tests, for `report
    --selector`: regression (the repo's own tests named after the modules a candidate edits,
    at the base commit with and without it) and, with --repro-tests N, reproduction (N
    model-written tests per issue; those failing at the base commit score each candidate),
    and with --judge N, N samples of the model choosing among each issue's top few patches.
    Container runs: regression two per candidate, reproduction one per candidate and one
    per issue; their time and the tokens of the tests and the judge are counted in the
    report. Continues where an interrupted run of it stopped.

    Exit status: 0 done, 2 a usage or setup error, 3 signals still missing (the sandbox
    failed; running it again computes them)."""
    from harness import signals as signal_steps
    from harness import wiring
    from harness.store import RunStore

    path = resolve_run(run, runs_dir)
    store = RunStore(path)
    identity = (store.manifest() or {}).get("identity") or {}
    if not identity.get("dataset"):
        raise UserError(f"{path} does not say which dataset it ran (no identity in manifest.json)")
    chosen = wiring.load(identity["dataset"], identity.get("split", "test"), identity["instances"])
    args = (store.run_id, isolation.limits(), images.options(), images.sandbox)
    tally = signal_steps.compute(
        store,
        {i.instance_id: i for i in chosen},
        lambda: wiring.signal_checks(*args),
        lambda: wiring.model_backend(model.spec()),
        repro_tests,
        judge,
        model.sampling(default_seed=0),
        wiring.read_at_base,
    )
    for line in tally.lines(repro_tests, judge):
        console.print(line)
    if tally.missing:
        raise typer.Exit(3)
