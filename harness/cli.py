"""The `harness` command line (typer). Commands stay thin: parse, wire, call, print."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.config import SandboxLimits, size_bytes
from harness.errors import UserError

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Repeated sampling for SWE-bench: candidate patches verified by the repo's own tests.",
)
console = Console(highlight=False, soft_wrap=True)  # long lines stay whole in logs

Dataset = Annotated[
    str,
    typer.Option(
        "--dataset",
        "-d",
        help="mini, lite, verified, full, a HF dataset name, or a .jsonl/.json/.parquet file.",
    ),
]
Split = Annotated[str, typer.Option(help="Dataset split (HF datasets only).")]
RunId = Annotated[
    str | None, typer.Option(help="Run directory name under --runs-dir (default: new).")
]
RunsDir = Annotated[Path, typer.Option(help="Where run directories go.")]
Network = Annotated[
    str,
    typer.Option(
        help="Network for the tests: none (default, isolated) or bridge (as the official harness).",
        rich_help_panel="Isolation",
    ),
]
Memory = Annotated[
    str, typer.Option(help="Memory limit, swap included.", rich_help_panel="Isolation")
]
Pids = Annotated[
    int, typer.Option(min=8, help="Most processes at once.", rich_help_panel="Isolation")
]
Cpus = Annotated[
    float,
    typer.Option(
        min=0.01,
        max=float(os.cpu_count() or 1),
        help="CPU quota in cores.",
        rich_help_panel="Isolation",
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=1.0,
        help="Seconds the tests may run before the container is killed.",
        rich_help_panel="Isolation",
    ),
]
LogCap = Annotated[
    int,
    typer.Option(min=1, help="Captured output per command, MiB.", rich_help_panel="Isolation"),
]
Disk = Annotated[
    str,
    typer.Option(
        help="What a container may write (e.g. 4g); past it, it is killed.",
        rich_help_panel="Isolation",
    ),
]
DropTestEdits = Annotated[
    bool,
    typer.Option(
        help="Drop candidates' edits to test files. Off by default, as in the official "
        "harness: the eval script resets the files the test patch touches, and the integrity "
        "screen flags edits to the rest of the test suite.",
        rich_help_panel="Agent",
    ),
]
ExcludeFlaky = Annotated[
    bool,
    typer.Option(
        help="Grade without the PASS_TO_PASS tests that `validate --repeat` measured flaky "
        "(each verdict names those it left out).",
        rich_help_panel="Verification",
    ),
]
IncludeFlagged = Annotated[
    bool,
    typer.Option(
        help="Count candidates the integrity screen flagged (tampering with tests, the test "
        "runner or the process) in coverage and selection.",
        rich_help_panel="Verification",
    ),
]
Namespace = Annotated[
    str,
    typer.Option(
        help="Namespace of the official eval images ('' for local names).", rich_help_panel="Images"
    ),
]
Tag = Annotated[
    str, typer.Option(help="Tag of the official eval images.", rich_help_panel="Images")
]
ImageSource = Annotated[
    str,
    typer.Option(
        help="auto (local, else pull, else build offline), official, or build.",
        rich_help_panel="Images",
    ),
]
Pull = Annotated[
    bool,
    typer.Option(help="docker pull official images that are missing.", rich_help_panel="Images"),
]

ModelOpt = Annotated[
    str,
    typer.Option(
        help="embedded (CPU default), vllm:MODEL, or http(s)://HOST/v1\\[#MODEL].",
        rich_help_panel="Model",
    ),
]
EditFormatOpt = Annotated[
    str,
    typer.Option(
        help="How the agentless agent asks for edits: search-replace, whole-file (the file "
        "rewritten; the harness makes the diff), or auto (the model's default: whole-file "
        "for the embedded 0.5B, search-replace otherwise).",
        rich_help_panel="Agent",
    ),
]
Temperature = Annotated[float, typer.Option(min=0.0, max=2.0, rich_help_panel="Model")]
TopP = Annotated[float, typer.Option(min=0.01, max=1.0, rich_help_panel="Model")]
MaxTokens = Annotated[int, typer.Option(min=1, rich_help_panel="Model")]
Concurrency = Annotated[
    int, typer.Option(min=1, help="Requests in flight at once.", rich_help_panel="Model")
]
RequestTimeout = Annotated[
    float,
    typer.Option(
        min=1.0, help="Seconds per request before it is retried.", rich_help_panel="Model"
    ),
]
Retries = Annotated[int, typer.Option(min=1, help="Attempts per request.", rich_help_panel="Model")]
TensorParallel = Annotated[int, typer.Option(min=1, rich_help_panel="vLLM")]
GpuMemory = Annotated[float, typer.Option(min=0.05, max=1.0, rich_help_panel="vLLM")]
MaxModelLen = Annotated[int | None, typer.Option(min=1, rich_help_panel="vLLM")]
Progress = Annotated[
    float,
    typer.Option(
        min=0.1,
        help="Seconds between progress lines when stdout is not a terminal.",
        rich_help_panel="Output",
    ),
]
InfraRetries = Annotated[
    int,
    typer.Option(
        min=0,
        max=20,
        help="Retries of a sample the model server never answered or a verification the "
        "sandbox never finished (backoff, then x3 each time).",
        rich_help_panel="Reliability",
    ),
]
InfraBackoff = Annotated[
    float,
    typer.Option(
        min=0.0, help="Seconds before the first such retry.", rich_help_panel="Reliability"
    ),
]
UseCache = Annotated[
    bool,
    typer.Option(
        "--cache/--no-cache",
        help="Reuse verdicts of earlier runs (same patch, image, limits, eval script).",
        rich_help_panel="Reliability",
    ),
]
RefreshCache = Annotated[
    bool,
    typer.Option(
        help="Verify again instead of reading the cache, and overwrite it.",
        rich_help_panel="Reliability",
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--verdict-cache",
        help="Verdict cache folder (default $SWEM_VERDICT_CACHE or ~/.cache/swe-monkeys-verdicts).",
        rich_help_panel="Reliability",
    ),
]
Quiet = Annotated[bool, typer.Option(help="No progress output.", rich_help_panel="Output")]
AgentKind = Annotated[
    str,
    typer.Option(
        "--agent",
        help="agentless (one-shot edits) or agentic (multi-turn, in the container).",
        rich_help_panel="Agent",
    ),
]
MaxSteps = Annotated[
    int, typer.Option(min=1, help="agentic: actions per trajectory.", rich_help_panel="Agent")
]
TrajectoryTokens = Annotated[
    int, typer.Option(min=1, help="agentic: tokens per trajectory.", rich_help_panel="Agent")
]
TrajectorySeconds = Annotated[
    float,
    typer.Option(min=1.0, help="agentic: wall time per trajectory.", rich_help_panel="Agent"),
]
ObservationChars = Annotated[
    int,
    typer.Option(
        min=100, help="agentic: characters kept per observation.", rich_help_panel="Agent"
    ),
]
CommandTimeout = Annotated[
    float,
    typer.Option(min=1.0, help="agentic: seconds per shell command.", rich_help_panel="Agent"),
]
ActionFormat = Annotated[
    str,
    typer.Option(
        help="agentic: fenced (a fenced block per reply, any model) or tools (tool calls).",
        rich_help_panel="Agent",
    ),
]

Instances = Annotated[
    list[str] | None,
    typer.Option(
        "--instances", help="Ids, globs (django__*) or re:REGEX; repeat or separate with commas."
    ),
]

DEFAULT = SandboxLimits()


def _select(dataset: str, split: str, instances: list[str] | None):
    from harness import wiring

    patterns = [p for item in instances or [] for p in item.split(",") if p]
    return wiring.load(dataset, split, patterns or None)


MIN_SIZE = 64 * 2**20


def _limits(
    network: str,
    memory: str,
    pids: int,
    cpus: float,
    timeout: float,
    log_cap: int,
    disk: str = DEFAULT.disk,
):
    if network not in ("none", "bridge"):
        raise UserError(f"--network {network}: use none or bridge")
    for option, value in (("--memory", memory), ("--disk", disk)):
        size = size_bytes(value)
        if size is None:
            raise UserError(f"{option} {value}: use a size such as 512m or 4g")
        if size < MIN_SIZE:
            raise UserError(f"{option} {value}: at least 64m, or the tests cannot start")
    return SandboxLimits(
        network=network,
        memory=memory,
        pids=pids,
        cpus=cpus,
        timeout_s=timeout,
        log_cap_bytes=log_cap * 1024 * 1024,
        disk=disk,
    )


def _verdict_style(status: str) -> str:
    return {"resolved": "green", "unresolved": "yellow"}.get(status, "red")


@app.command(rich_help_panel="Verification")
def verify(
    dataset: Dataset,
    instance: Annotated[str, typer.Option("--instance", "-i", help="The instance id.")],
    patch: Annotated[str, typer.Option(help="A patch file, 'gold' or 'empty'.")],
    split: Split = "test",
    run_id: RunId = None,
    runs_dir: RunsDir = Path("runs"),
    network: Network = DEFAULT.network,
    memory: Memory = DEFAULT.memory,
    pids: Pids = DEFAULT.pids,
    cpus: Cpus = DEFAULT.cpus,
    timeout: Timeout = DEFAULT.timeout_s,
    log_cap: LogCap = DEFAULT.log_cap_bytes // 2**20,
    disk: Disk = DEFAULT.disk,
    image_namespace: Namespace = "swebench",
    image_tag: Tag = "latest",
    pull: Pull = True,
    image_source: ImageSource = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
    exclude_flaky: ExcludeFlaky = False,
) -> None:
    """Verify one patch for one instance in a fresh container and print the verdict.

    Exit status: 0 resolved, 1 not resolved, 2 a usage or setup error."""
    from harness import wiring

    limits = _limits(network, memory, pids, cpus, timeout, log_cap, disk)
    (target,) = wiring.load(dataset, split, [instance])
    if patch == "gold":
        text = target.gold_patch
    elif patch == "empty":
        text = ""
    elif Path(patch).is_file():
        text = Path(patch).read_text(encoding="utf-8", errors="surrogateescape")
    else:
        raise UserError(f"--patch {patch}: no such file (or use gold / empty)")
    pipe = wiring.build_pipeline(
        run_id or wiring.new_run_id("verify"),
        runs_dir,
        limits,
        image_namespace,
        image_tag,
        pull,
        image_source=image_source,
        exclude_flaky=exclude_flaky,
    )
    try:
        verdict = pipe.verifier.verify(target, text)
        pipe.store.append_verdict(verdict)
    finally:
        pipe.store.unlock()
    if as_json:
        import json

        data = {**verdict.to_dict(), "run_dir": str(pipe.store.run_dir.resolve())}
        data["log_path"] = pipe.store.relative(verdict.log_path)  # paths are the run's own
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        _print_verdict(verdict)
    raise typer.Exit(0 if verdict.resolved else 1)


def _print_verdict(verdict) -> None:
    table = Table(title=f"{verdict.instance_id}  patch {verdict.patch_sha[:12]}", show_lines=False)
    table.add_column("kind")
    table.add_column("test")
    table.add_column("status")
    for kind, tests in (
        ("FAIL_TO_PASS", verdict.fail_to_pass),
        ("PASS_TO_PASS", verdict.pass_to_pass),
    ):
        for test, status in tests.items():
            style = "green" if status in ("PASSED", "XFAIL") else "red"
            table.add_row(kind, escape(test), f"[{style}]{escape(status)}[/]")
    if table.row_count:
        console.print(table)
    style = _verdict_style(verdict.status.value)
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


@app.command(rich_help_panel="Verification")
def validate(
    dataset: Dataset,
    instances: Instances = None,
    split: Split = "test",
    workers: Annotated[int, typer.Option(min=1, help="Instances verified at once.")] = max(
        1, (os.cpu_count() or 2) // 2
    ),
    network_check: Annotated[
        bool,
        typer.Option(
            help="Retry a failing gold patch with the network to say whether it needs it."
        ),
    ] = True,
    repeat: Annotated[
        int,
        typer.Option(
            min=1,
            help="Run gold and empty this many times; tests whose outcome varies are recorded "
            "as flaky (for --exclude-flaky).",
        ),
    ] = 1,
    run_id: RunId = None,
    runs_dir: RunsDir = Path("runs"),
    network: Network = DEFAULT.network,
    memory: Memory = DEFAULT.memory,
    pids: Pids = DEFAULT.pids,
    cpus: Cpus = DEFAULT.cpus,
    timeout: Timeout = DEFAULT.timeout_s,
    log_cap: LogCap = DEFAULT.log_cap_bytes // 2**20,
    disk: Disk = DEFAULT.disk,
    image_namespace: Namespace = "swebench",
    image_tag: Tag = "latest",
    pull: Pull = True,
    image_source: ImageSource = "auto",
) -> None:
    """Run the gold and the empty patch of each instance: gold must resolve, empty must not.

    Lists every instance whose gold patch fails, whose empty patch passes, or whose gold patch
    passes only with the network. Exit status 0 when every instance is sound."""
    from harness import wiring
    from harness.validate import validate as run_validation

    limits = _limits(network, memory, pids, cpus, timeout, log_cap, disk)
    chosen = _select(dataset, split, instances)
    pipe = wiring.build_pipeline(
        run_id or wiring.new_run_id("validate"),
        runs_dir,
        limits,
        image_namespace,
        image_tag,
        pull,
        image_source=image_source,
    )
    console.print(
        f"validating {len(chosen)} instance(s) from {dataset}, "
        f"network {limits.network}, run {pipe.store.run_dir}"
    )

    def record(result) -> None:
        for verdict in filter(None, (result.gold, result.empty, result.gold_with_network)):
            pipe.store.append_verdict(verdict)
        with (pipe.store.run_dir / "validation.jsonl").open("a") as f:
            f.write(json.dumps(result.record()) + "\n")
        mark = "[green]ok[/]" if result.ok else "[red]PROBLEM[/]"
        console.print(
            f"  {mark} {result.instance_id}" + (f"  {escape(result.note)}" if result.note else "")
        )

    try:
        results = run_validation(
            pipe.verifier.verify, chosen, limits, workers, network_check, record, repeat
        )
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
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


def _print_validation(results) -> None:
    table = Table(title="validation")
    for col in ("instance", "gold", "empty", "note", "time"):
        table.add_column(col)
    for r in results:
        cells = []
        for v in (r.gold, r.empty):
            cells.append(f"[{_verdict_style(v.status.value)}]{v.status.value}[/]" if v else "-")
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


@app.command(rich_help_panel="Generation")
def run(
    issue: Annotated[str, typer.Option("--issue", "-i", help="The instance id to solve.")],
    samples: Annotated[
        int, typer.Option("--samples", "-k", min=1, help="Candidates to sample.")
    ] = 5,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="As for verify; default: mini for swe-monkeys__* ids, else lite.",
        ),
    ] = None,
    split: Split = "test",
    model: ModelOpt = "embedded",
    temperature: Temperature = 0.8,
    top_p: TopP = 0.95,
    max_tokens: MaxTokens = 1024,
    seed: Annotated[int | None, typer.Option(rich_help_panel="Model")] = None,
    concurrency: Concurrency = 16,
    request_timeout: RequestTimeout = 600.0,
    retries: Retries = 4,
    tensor_parallel_size: TensorParallel = 1,
    gpu_memory_utilization: GpuMemory = 0.9,
    max_model_len: MaxModelLen = None,
    drop_test_edits: DropTestEdits = False,
    verify_patches: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Verify candidates in Docker.")
    ] = True,
    verify_workers: Annotated[int, typer.Option(min=1, help="Containers at once.")] = 2,
    progress: Progress = 30.0,
    quiet: Quiet = False,
    agent: AgentKind = "agentless",
    max_steps: MaxSteps = 30,
    trajectory_tokens: TrajectoryTokens = 200_000,
    trajectory_seconds: TrajectorySeconds = 1800.0,
    observation_chars: ObservationChars = 4000,
    command_timeout: CommandTimeout = 60.0,
    action_format: ActionFormat = "fenced",
    edit_format: EditFormatOpt = "auto",
    run_id: RunId = None,
    runs_dir: RunsDir = Path("runs"),
    network: Network = DEFAULT.network,
    memory: Memory = DEFAULT.memory,
    pids: Pids = DEFAULT.pids,
    cpus: Cpus = DEFAULT.cpus,
    timeout: Timeout = DEFAULT.timeout_s,
    log_cap: LogCap = DEFAULT.log_cap_bytes // 2**20,
    disk: Disk = DEFAULT.disk,
    image_namespace: Namespace = "swebench",
    image_tag: Tag = "latest",
    pull: Pull = True,
    image_source: ImageSource = "auto",
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run.")] = False,
    infra_retries: InfraRetries = 3,
    infra_backoff: InfraBackoff = 5.0,
    cache: UseCache = True,
    refresh_cache: RefreshCache = False,
    verdict_cache: CacheDir = None,
) -> None:
    """Sample candidate patches for one issue, verify each distinct one, print a table.

    Exit status: 0 done, 2 a usage or setup error, 3 samples or verifications still missing
    (the model server or the sandbox failed; --resume continues)."""
    from harness import wiring
    from harness.run_issue import IssueRun
    from harness.types import SamplingConfig

    limits = _limits(network, memory, pids, cpus, timeout, log_cap, disk)
    dataset = dataset or ("mini" if issue.startswith("swe-monkeys__") else "lite")
    (instance,) = wiring.load(dataset, split, [issue])
    sampling = SamplingConfig(temperature, top_p, max_tokens, seed)
    spec = wiring.ModelSpec(
        model,
        concurrency,
        request_timeout,
        retries,
        tensor_parallel_size,
        gpu_memory_utilization,
        max_model_len,
    )
    run_id = run_id or wiring.new_run_id("run")
    identity = {"instances": [issue], "samples": samples, "model": model}
    store = _open_run(runs_dir / run_id, identity, resume)
    manifest = {
        "command": "run",
        "dataset": dataset,
        "instance": issue,
        "samples": samples,
        "model": model,
        "sampling": sampling.__dict__,
        "agent": agent,
        "identity": identity,
    }
    with store.writer():
        pipe = wiring.build_pipeline(
            run_id,
            runs_dir,
            limits,
            image_namespace,
            image_tag,
            pull,
            manifest,
            image_source=image_source,
            store=store,
        )
        if resume and (removed := pipe.sandbox.cleanup(run_id)):
            console.print(f"removed {removed} container(s) left by the interrupted run")
        if verify_patches:
            pipe.verifier.image_for(instance)
        console.print(
            f"{issue}: sampling {samples} candidate(s) from {model}; run {pipe.store.run_dir}"
        )
        reliability = Reliability(infra_retries, infra_backoff, cache, refresh_cache, verdict_cache)
        evaluation, state = _evaluation(
            pipe,
            [instance],
            samples,
            sampling,
            model,
            1,
            verify_workers,
            reliability,
            verify_patches,
        )
        choice = AgentChoice(
            agent,
            drop_test_edits,
            max_steps,
            trajectory_tokens,
            trajectory_seconds,
            observation_chars,
            command_timeout,
            action_format,
            edit_format,
        )
        _run_issue(evaluation, state, pipe, spec, progress, quiet, choice, limits)
    _print_issue_run(IssueRun.from_store(pipe.store, issue))
    _exit_if_incomplete(pipe.store, verified=verify_patches)


def _run_issue(evaluation, state, pipe, spec, progress, quiet, choice, limits) -> None:
    from harness import wiring

    with wiring.model_backend(spec) as backend:
        evaluation.agent = _make_agent(choice, backend, pipe, limits)
        _run_with_progress(evaluation, state, pipe, progress, quiet)


@dataclass(frozen=True)
class AgentChoice:
    """Which agent generates candidates, with its options (run and eval)."""

    kind: str
    drop_tests: bool
    max_steps: int
    trajectory_tokens: int
    trajectory_seconds: float
    observation_chars: int
    command_timeout: float
    action_format: str
    edit_format: str = "auto"


def _make_agent(choice: AgentChoice, backend, pipe, limits):
    if choice.kind == "agentless":
        from agents.agentless import AgentlessAgent, AgentlessOptions

        options = AgentlessOptions(
            drop_test_edits=choice.drop_tests, edit_format=choice.edit_format
        )
        return AgentlessAgent(backend, options)
    if choice.kind == "agentic":
        from agents.agentic import AgenticAgent, AgenticOptions

        if choice.action_format not in ("fenced", "tools"):
            raise UserError(f"--action-format {choice.action_format}: use fenced or tools")

        def open_session(instance, label):
            # the instance's own image, with the verifier's isolation and the run's label
            return pipe.sandbox.open(pipe.verifier.image_for(instance), limits, pipe.store.run_id)

        options = AgenticOptions(
            choice.max_steps,
            choice.trajectory_tokens,
            choice.trajectory_seconds,
            choice.observation_chars,
            choice.command_timeout,
            choice.drop_tests,
            action_format=choice.action_format,
        )
        return AgenticAgent(backend, open_session, options)
    raise UserError(f"--agent {choice.kind}: use agentless or agentic")


@dataclass(frozen=True)
class Reliability:
    """How a run treats infrastructure failures and the verdict cache (run and eval)."""

    infra_retries: int = 3
    infra_backoff_s: float = 5.0
    cache: bool = True
    refresh_cache: bool = False
    cache_dir: Path | None = None

    def verdict_cache(self):
        from harness.verdict_cache import VerdictCache, default_root

        if not self.cache:
            return None
        return VerdictCache(self.cache_dir or default_root(), read=not self.refresh_cache)


def _open_run(run_dir: Path, identity: dict, resume: bool):
    """The run's store, checked against --resume; damaged records are quarantined on resume
    (each bad line is reported and its work redone)."""
    from harness.eval import check_resumable
    from harness.store import RunStore

    store = RunStore(run_dir)
    store.lock()  # held until the command's `with store.writer()` ends
    try:
        check_resumable(store, identity, resume)
        if resume:
            for name, line, why in store.quarantine():
                console.print(
                    f"[yellow]quarantined[/] {run_dir / name}:{line} ({escape(why)}): "
                    f"moved to {run_dir / 'quarantine' / name}; its work is redone"
                )
    except BaseException:
        store.unlock()
        raise
    return store


def _evaluation(
    pipe,
    instances,
    samples,
    sampling,
    model,
    gen_concurrency,
    verify_workers,
    reliability: Reliability,
    verify=True,
    verify_fn=None,
):
    """The pipeline behind run and eval, reporting into a RunState."""
    from harness import wiring
    from harness.eval import Evaluation, RetryPolicy
    from harness.progress import RunState, apply_event

    state = RunState.from_store(pipe.store)
    state.model = model
    state.samples = samples
    evaluation = Evaluation(
        pipe.store,
        instances,
        samples,
        sampling,
        None,
        lambda inst, dest: wiring.repo_cache_for(inst).checkout(inst.repo, inst.base_commit, dest),
        (verify_fn or pipe.verifier.verify) if verify else None,
        pipe.verdict_key,
        reliability.verdict_cache(),
        gen_concurrency,
        verify_workers,
        lambda kind, data: apply_event(state, kind, data),
        lambda: pipe.sandbox.cleanup(pipe.store.run_id),
        RetryPolicy(reliability.infra_retries + 1, reliability.infra_backoff_s),
    )
    return evaluation, state


def _resume_command(run_id: str) -> str:
    """The command that continues this run: the same arguments, plus --resume and --run-id."""
    args = sys.argv[1:]
    again = " ".join(args) + ("" if "--resume" in args else " --resume")
    if "--run-id" not in args:
        again += f" --run-id {run_id}"
    return f"harness {again}"


def _run_with_progress(
    evaluation, state, pipe, progress: float, quiet: bool, imported=None
) -> None:
    """Run with the live view (or lines, or quiet); on Ctrl-C say how to resume."""
    from harness.progress import Reporter

    try:
        with Reporter(state, console, "quiet" if quiet else "auto", progress):
            evaluation.run(imported)
    except KeyboardInterrupt:
        console.print("interrupted: containers removed and records flushed. Continue with:")
        console.print(f"  {_resume_command(pipe.store.run_id)}", soft_wrap=True, markup=False)
        raise


def _exit_if_incomplete(store, summary: dict | None = None, verified: bool = True) -> None:
    """A run with samples or verifications missing did not do its job: one line, exit 3.
    (With --no-verify, unverified patches are what was asked for.)"""
    from harness.summary import summarize

    summary = summary or summarize(store)
    missing = dict(summary.get("missing", {}))
    if not verified:
        missing["samples"] = missing.get("samples", 0) - missing.get("unfinished_verifications", 0)
        missing["unfinished_verifications"] = 0
    if not missing.get("samples"):
        return
    parts = [
        f"{missing[key]} {label}"
        for key, label in (
            ("unanswered", "unanswered by the model server"),
            ("unfinished_verifications", "with unfinished verifications"),
            ("not_generated", "not generated"),
        )
        if missing.get(key)
    ]
    print(
        f"incomplete: {missing['samples']} sample(s) missing ({', '.join(parts)}); "
        f"they count in no metric. Continue with: {_resume_command(store.run_id)}",
        file=sys.stderr,
    )
    raise typer.Exit(3)


def _print_issue_run(result) -> None:
    table = Table(title=f"{result.generation.instance_id}: candidates")
    for col in ("#", "valid", "unique", "verdict", "tok in", "tok out", "secs", "note"):
        table.add_column(col)
    for c in result.candidates:
        verdict = result.verdict(c)
        first = result.first_index(c) if c.valid else None
        unique = "-" if first is None else ("new" if first == c.sample_index else f"= #{first}")
        shown = (
            f"[{_verdict_style(verdict.status.value)}]{verdict.status.value}[/]" if verdict else "-"
        )
        note = c.reason or ", ".join(c.edited_files)
        if verdict and verdict.reason:
            note = f"{note}; {verdict.reason}" if note else verdict.reason
        table.add_row(
            str(c.sample_index),
            "yes" if c.valid else "[red]no[/]",
            unique,
            shown,
            str(c.prompt_tokens),
            str(c.completion_tokens),
            f"{c.latency_s:.1f}",
            escape(note[:90]),
        )
    console.print(table)
    prompt, completion = result.generation.tokens
    valid = sum(c.valid for c in result.candidates)
    console.print(
        f"{len(result.candidates)} samples, {valid} valid, {result.unique} unique patches, "
        f"[bold]{result.resolving} resolving[/]; tokens: {prompt} prompt + {completion} completion"
        + (" (localisation included)" if result.generation.overhead else "")
    )
    if any(result.verdict(c) for c in result.candidates):
        from harness.metrics import coverage_at_k, log_spaced_ks

        n = len(result.candidates)
        resolving = sum(
            bool((v := result.verdict(c)) and v.resolved) for c in result.candidates if c.valid
        )
        curve = ", ".join(f"@{k} {coverage_at_k(n, resolving, k):.2f}" for k in log_spaced_ks(n))
        console.print(f"coverage so far (chance that k samples include a fix): {curve}")


@app.command("eval", rich_help_panel="Generation")
def eval_command(
    dataset: Dataset,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples",
            "-k",
            min=1,
            help="Samples per issue (default 10; with --predictions, the first k per issue, "
            "default: as many as the file has).",
        ),
    ] = None,
    instances: Instances = None,
    split: Split = "test",
    model: ModelOpt = "embedded",
    temperature: Temperature = 0.8,
    top_p: TopP = 0.95,
    max_tokens: MaxTokens = 1024,
    seed: Annotated[
        int,
        typer.Option(
            help="Sample i of an issue uses seed+i, so a resumed run asks for the same samples.",
            rich_help_panel="Model",
        ),
    ] = 0,
    concurrency: Concurrency = 16,
    request_timeout: RequestTimeout = 600.0,
    retries: Retries = 4,
    tensor_parallel_size: TensorParallel = 1,
    gpu_memory_utilization: GpuMemory = 0.9,
    max_model_len: MaxModelLen = None,
    predictions: Annotated[
        str | None,
        typer.Option(
            help="Verify a SWE-bench predictions file (one or many patches per issue), or "
            "'gold', instead of generating.",
        ),
    ] = None,
    gen_concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            help="Issues generating at once (always 1 with the embedded model, whose "
            "server keeps one prompt's evaluation).",
        ),
    ] = 2,
    executor: Annotated[
        str,
        typer.Option(
            help="local (containers here) or ray (verification as Ray tasks on Docker nodes).",
            rich_help_panel="Cluster",
        ),
    ] = "local",
    ray_address: Annotated[
        str,
        typer.Option(help="The Ray cluster to use with --executor ray.", rich_help_panel="Cluster"),
    ] = "auto",
    verify_workers: Annotated[int, typer.Option(min=1, help="Containers at once.")] = max(
        1, (os.cpu_count() or 2) // 2
    ),
    progress: Progress = 30.0,
    quiet: Quiet = False,
    agent: AgentKind = "agentless",
    max_steps: MaxSteps = 30,
    trajectory_tokens: TrajectoryTokens = 200_000,
    trajectory_seconds: TrajectorySeconds = 1800.0,
    observation_chars: ObservationChars = 4000,
    command_timeout: CommandTimeout = 60.0,
    action_format: ActionFormat = "fenced",
    edit_format: EditFormatOpt = "auto",
    price_input: Annotated[
        float, typer.Option(min=0.0, help="USD per million prompt tokens.", rich_help_panel="Cost")
    ] = 0.0,
    price_output: Annotated[
        float,
        typer.Option(min=0.0, help="USD per million completion tokens.", rich_help_panel="Cost"),
    ] = 0.0,
    gpu_hour_usd: Annotated[
        float,
        typer.Option(
            min=0.0, help="USD per GPU-hour of generation wall time.", rich_help_panel="Cost"
        ),
    ] = 0.0,
    gpus: Annotated[int, typer.Option(min=1, rich_help_panel="Cost")] = 1,
    run_id: Annotated[str | None, typer.Option(help="Run directory name (default: new).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run.")] = False,
    runs_dir: RunsDir = Path("runs"),
    network: Network = DEFAULT.network,
    memory: Memory = DEFAULT.memory,
    pids: Pids = DEFAULT.pids,
    cpus: Cpus = DEFAULT.cpus,
    timeout: Timeout = DEFAULT.timeout_s,
    log_cap: LogCap = DEFAULT.log_cap_bytes // 2**20,
    disk: Disk = DEFAULT.disk,
    image_namespace: Namespace = "swebench",
    image_tag: Tag = "latest",
    pull: Pull = True,
    image_source: ImageSource = "auto",
    include_flagged: IncludeFlagged = False,
    drop_test_edits: DropTestEdits = False,
    exclude_flaky: ExcludeFlaky = False,
    skip_unbuildable: Annotated[
        bool,
        typer.Option(
            help="Leave out (and list) selected instances whose image cannot be had, instead "
            "of stopping.",
            rich_help_panel="Images",
        ),
    ] = False,
    infra_retries: InfraRetries = 3,
    infra_backoff: InfraBackoff = 5.0,
    cache: UseCache = True,
    refresh_cache: RefreshCache = False,
    verdict_cache: CacheDir = None,
) -> None:
    """Sample k candidates for every selected issue, verify each distinct patch once, and
    summarise coverage versus samples and cost. Resumable with --resume.

    Exit status: 0 done, 2 a usage or setup error, 3 samples or verifications still missing
    (the model server or the sandbox failed; --resume continues)."""
    from dataclasses import asdict

    from harness import __version__, wiring
    from harness.cost import PriceTable
    from harness.summary import summarize
    from harness.types import SamplingConfig

    limits = _limits(network, memory, pids, cpus, timeout, log_cap, disk)
    if executor not in ("local", "ray"):
        raise UserError(f"--executor {executor}: use local or ray")
    chosen = _select(dataset, split, instances)
    imported = _import_predictions(predictions, dataset, split, chosen, samples, drop_test_edits)
    samples = imported.k if imported else (samples or 10)
    label = imported.model if imported else model
    sampling = SamplingConfig(temperature, top_p, max_tokens, seed)
    run_id = run_id or wiring.new_run_id("eval")
    identity = {
        "dataset": dataset,
        "split": split,
        "instances": [i.instance_id for i in chosen],
        "samples": samples,
        "model": label,
        "sampling": asdict(sampling),
        "agent": agent,
        "network": limits.network,
        "predictions": predictions,
        "drop_test_edits": drop_test_edits,
        "exclude_flaky": exclude_flaky,
        "harness_version": __version__,
        "swebench_version": _swebench_version(),
    }
    store = _open_run(runs_dir / run_id, identity, resume)
    existing = store.manifest() if resume else None
    price = PriceTable(price_input, price_output, gpu_hour_usd, gpus)
    manifest = {
        "command": "eval",
        "identity": identity,
        "price": price.to_dict(),
        "include_flagged": include_flagged,
        **({"created_at": existing["created_at"]} if existing else {}),
    }
    with store.writer():
        pipe = wiring.build_pipeline(
            run_id,
            runs_dir,
            limits,
            image_namespace,
            image_tag,
            pull,
            manifest,
            image_source=image_source,
            store=store,
            exclude_flaky=exclude_flaky,
        )
        if resume and (removed := pipe.sandbox.cleanup(run_id)):
            console.print(f"removed {removed} container(s) left by the interrupted run")
        chosen = _buildable(pipe, chosen, executor, skip_unbuildable)
        if imported:
            kept = {i.instance_id for i in chosen}
            imported.candidates = [c for c in imported.candidates if c.instance_id in kept]
        verify_fn = _remote_verify(
            pipe,
            executor,
            ray_address,
            limits,
            image_namespace,
            image_tag,
            pull,
            image_source,
        )
        console.print(f"eval {run_id}: {len(chosen)} issue(s) x {samples} sample(s), model {label}")
        if model.startswith("embedded") and gen_concurrency > 1:
            # llama-cpp-python keeps one evaluated prompt: issues taking turns would each
            # evaluate theirs again for every sample
            gen_concurrency = 1
        reliability = Reliability(infra_retries, infra_backoff, cache, refresh_cache, verdict_cache)
        evaluation, state = _evaluation(
            pipe,
            chosen,
            samples,
            sampling,
            label,
            gen_concurrency,
            verify_workers,
            reliability,
            verify_fn=verify_fn,
        )
        if imported:
            _run_with_progress(evaluation, state, pipe, progress, quiet, imported.candidates)
        else:
            spec = wiring.ModelSpec(
                model,
                concurrency,
                request_timeout,
                retries,
                tensor_parallel_size,
                gpu_memory_utilization,
                max_model_len,
            )
            choice = AgentChoice(
                agent,
                drop_test_edits,
                max_steps,
                trajectory_tokens,
                trajectory_seconds,
                observation_chars,
                command_timeout,
                action_format,
                edit_format,
            )
            _run_issue(evaluation, state, pipe, spec, progress, quiet, choice, limits)
        pipe.sandbox.cleanup(run_id)  # orphans of workers killed mid-task (retried elsewhere)
        summary = summarize(pipe.store)
        pipe.store.write_json("summary.json", summary)
    _print_summary(summary)
    _exit_if_incomplete(pipe.store, summary)


def _import_predictions(source, dataset, split, chosen, k, drop_tests):
    """--predictions as candidates (None without it), with the official harness's checks."""
    from harness import wiring
    from harness.predictions import load_predictions

    if source is None:
        return None
    every = {i.instance_id for i in wiring.load(dataset, split)}
    imported = load_predictions(source, chosen, every, k, drop_tests)
    if imported.without:
        shown = ", ".join(imported.without[:5]) + (", ..." if len(imported.without) > 5 else "")
        console.print(
            f"[yellow]warning[/]: {len(imported.without)} selected issue(s) have no prediction "
            f"and count as unresolved: {shown}"
        )
    if imported.dropped:
        console.print(
            f"{imported.dropped} prediction(s) past the first {imported.k} per issue left out"
        )
    return imported


def _buildable(pipe, chosen, executor, skip: bool):
    """The instances to evaluate. Locally every image is had now, not after hours of
    generation; one that cannot be is an error, or with --skip-unbuildable is left out, listed,
    and recorded in the manifest (the summary names it; it counts in no metric)."""
    if executor != "local":
        return chosen
    skipped = {}
    for instance in chosen:
        try:
            pipe.verifier.image_for(instance)
        except UserError as exc:
            if not skip:
                raise
            skipped[instance.instance_id] = str(exc)
            console.print(f"[yellow]skipped[/] {instance.instance_id}: {escape(str(exc))}")
    if skipped:
        pipe.store.write_manifest({**(pipe.store.manifest() or {}), "unbuildable": skipped})
        console.print(f"{len(skipped)} of {len(chosen)} instance(s) skipped as unbuildable")
    return [i for i in chosen if i.instance_id not in skipped]


def _remote_verify(pipe, executor, ray_address, limits, namespace, tag, pull, source):
    """The Ray verify callable for --executor ray; None for local verification."""
    from harness import wiring

    if executor == "local":
        return None
    from harness.executors import RayVerify, VerifierSpec

    spec = VerifierSpec(
        pipe.store.run_id,
        limits.to_dict(),
        namespace,
        tag,
        pull,
        source,
        str(wiring.cache_dir()),
        os.environ.get("SWEM_REPO_SOURCE"),
    )
    return RayVerify(ray_address, spec, pipe.store)


def _swebench_version() -> str:
    from importlib.metadata import version

    return version("swebench")


def _print_summary(summary: dict) -> None:
    from harness.report import coverage_table

    console.print(coverage_table([summary]))
    tokens = summary["tokens"]
    if skipped := summary.get("unbuildable"):
        console.print(f"not evaluated (unbuildable): {', '.join(sorted(skipped))}")
    console.print(
        f"{summary['n_issues']} issues x {summary['samples_per_issue']} samples; solved by any "
        f"sample {summary['resolved_any']:.1%}; tokens {tokens['prompt']} prompt + "
        f"{tokens['completion']} completion; ${summary['cost']['dollars']:.2f}"
    )


@app.command(rich_help_panel="Generation")
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to report (and overlay).")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: RUN/report).")] = None,
    include_flagged: Annotated[
        bool | None,
        typer.Option(
            "--include-flagged/--exclude-flagged",
            help="Count screen-flagged candidates (default: as the run was made).",
        ),
    ] = None,
) -> None:
    """Table, coverage-versus-samples and -cost plots (PNG), JSON, Markdown, and the selected
    patch per issue as SWE-bench predictions; a FLOPs-matched comparison for two runs."""
    from harness.report import coverage_table, write_report

    out = out or (runs[0] / "report")
    result = write_report(runs, out, include_flagged)
    console.print(coverage_table(result["summaries"]))
    for row in result["matched"]:
        console.print(f"FLOPs-matched: {row}")
    console.print(
        f"report: {out / 'report.md'}; plots: " + ", ".join(str(p) for p in result["plots"])
    )


@app.command(rich_help_panel="Generation")
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


@app.command(rich_help_panel="Runs")
def show(
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    instance: Annotated[str, typer.Argument(help="The instance id.")],
    sample: Annotated[int, typer.Argument(help="The sample index.")],
) -> None:
    """A trajectory of the agentic agent as a readable transcript."""
    from rich.markup import escape

    from harness.store import RunStore

    data = RunStore(run).trajectory(instance, sample)
    if data is None:
        raise UserError(
            f"no trajectory {instance} #{sample} in {run} (only agentic runs keep them)"
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


@app.command(rich_help_panel="Runs")
def status(run: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """The live view, once, from a run directory (in progress or finished)."""
    from harness.progress import RunState, render
    from harness.store import RunStore

    store = RunStore(run)
    if store.manifest() is None:
        raise UserError(f"{run} is not a run directory (no manifest.json)")
    console.print(render(RunState.from_store(store)))


@app.command("ls", rich_help_panel="Runs")
def list_runs(runs_dir: RunsDir = Path("runs")) -> None:
    """The runs under --runs-dir, newest first, with dataset, model, samples, coverage and cost."""
    from harness.store import RunStore
    from harness.summary import summarize

    table = Table(title=f"runs in {runs_dir}")
    for col in (
        "run",
        "state",
        "command",
        "created",
        "dataset",
        "model",
        "issues x samples",
        "coverage@1",
        "coverage@n",
        "cost",
    ):
        table.add_column(col)
    dirs = (
        [d for d in runs_dir.iterdir() if (d / "manifest.json").exists()]
        if runs_dir.is_dir()
        else []
    )
    for d in sorted(dirs, key=lambda d: (d / "manifest.json").stat().st_mtime, reverse=True):
        store = RunStore(d)
        manifest = store.manifest()
        try:
            summary = summarize(store) if (d / "candidates.jsonl").exists() else {"n_issues": 0}
        except UserError:  # damaged records: `status` names the line
            summary = {"n_issues": 0, "damaged": True}
        cov = summary.get("coverage_at", {})
        n = summary.get("samples_per_issue", 0)
        table.add_row(
            d.name,
            _run_state(store, summary),
            manifest.get("command", "?"),
            manifest.get("created_at", "")[:16],
            str(manifest.get("identity", {}).get("dataset") or manifest.get("dataset", "")),
            str(manifest.get("identity", {}).get("model") or manifest.get("model", "")),
            f"{summary.get('n_issues', 0)} x {n}",
            f"{cov['1']:.1%}" if "1" in cov else "-",
            f"{cov[str(n)]:.1%}" if str(n) in cov else "-",
            f"${summary['cost']['dollars']:.2f}" if "cost" in summary else "-",
        )
    console.print(table)


def _run_state(store, summary: dict) -> str:
    if store.holder():
        return "running"
    if summary.get("damaged"):
        return "damaged"
    return "done" if summary.get("complete") else "incomplete"


images_app = typer.Typer(
    no_args_is_help=True, help="Offline SWE-bench environments: build, list, prune."
)
app.add_typer(images_app, name="images", rich_help_panel="Images")


@images_app.command("build")
def images_build(
    dataset: Dataset,
    instances: Instances = None,
    split: Split = "test",
) -> None:
    """Build each instance's image from a Debian base, the repo (SWEM_REPO_SOURCE) and PyPI,
    after swebench's install recipe. A failed instance gets one line and the others go on."""
    from harness import wiring
    from sandbox.docker_sandbox import docker_client
    from sandbox.env_build import BuildFailed

    wiring.register_minibench_specs()
    chosen = _select(dataset, split, instances)
    builder = wiring.env_builder(docker_client())
    failed = 0
    for instance in chosen:
        try:
            built = builder.build(instance)
        except (BuildFailed, UserError) as exc:
            failed += 1
            console.print(f"  [red]failed[/] {instance.instance_id}: {exc}")
            continue
        how = "reused" if built.reused else f"built in {built.seconds:.0f} s"
        note = f"  [yellow]{built.notes}[/]" if built.notes else ""
        console.print(f"  [green]ok[/] {instance.instance_id} {built.image} ({how}){note}")
    console.print(f"{len(chosen) - failed}/{len(chosen)} built")
    raise typer.Exit(1 if failed else 0)


@images_app.command("plan")
def images_plan(
    dataset: Dataset,
    instances: Instances = None,
    split: Split = "test",
) -> None:
    """Each instance's environment recipe (Debian suite, Python, fidelity notes), or the
    one-line reason there is none, without building anything."""
    from harness import wiring
    from sandbox.env_build import BuildFailed, resolve_as_of

    wiring.register_minibench_specs()
    chosen = _select(dataset, split, instances)
    builder = wiring.env_builder(None)  # recipes only: no engine needed
    table = Table(title=f"environment plan for {len(chosen)} instance(s)")
    for col in ("instance", "version", "python", "recipe or reason"):
        table.add_column(col, overflow="fold")
    refused: dict[str, int] = {}
    for instance in chosen:
        try:
            env, _ = builder.recipes(instance)
        except (BuildFailed, UserError) as exc:
            reason = str(exc)
            kind = re.sub(r"^\S+ \S+ ", "", reason) if "environment.yml" in reason else reason
            refused[kind] = refused.get(kind, 0) + 1
            table.add_row(instance.instance_id, instance.version, "-", f"[red]{escape(reason)}[/]")
            continue
        notes = "; ".join(env.notes) or "as specified"
        table.add_row(
            instance.instance_id, instance.version, f"{env.python} ({env.suite})", escape(notes)
        )
    console.print(table)
    as_of = resolve_as_of() or "today (the live index)"
    console.print(
        f"{len(chosen) - sum(refused.values())}/{len(chosen)} with a recipe"
        + "".join(f"; {n} refused: {escape(why)}" for why, n in refused.items())
        + f"; packages resolved as of {as_of} (SWEM_RESOLVE_AS_OF)"
    )


@images_app.command("ls")
def images_ls() -> None:
    """The images the harness built, with their Python, fidelity notes and sizes."""
    from sandbox.docker_sandbox import docker_client

    table = Table(title="swe-monkeys images")
    for col in ("image", "python", "instance", "fidelity", "size"):
        table.add_column(col)
    for image in docker_client().images.list():
        for tag in [t for t in image.tags if t.startswith("swe-monkeys/")]:
            labels = image.labels or {}
            table.add_row(
                tag,
                labels.get("swe-monkeys.python", ""),
                labels.get("swe-monkeys.instance", ""),
                labels.get("swe-monkeys.fidelity", ""),
                f"{image.attrs.get('Size', 0) / 2**20:.0f} MiB",
            )
    console.print(table)


@images_app.command("prune")
def images_prune(
    everything: Annotated[
        bool, typer.Option("--all", help="Environments and bases too, not only instance images.")
    ] = False,
) -> None:
    """Remove instance images (thin layers, rebuilt in seconds), or all of ours with --all."""
    import docker.errors

    from sandbox.docker_sandbox import docker_client

    client = docker_client()
    removed, freed = 0, 0
    for image in client.images.list():
        for tag in [t for t in image.tags if t.startswith("swe-monkeys/")]:
            if not everything and "swe-monkeys.instance" not in (image.labels or {}):
                continue
            try:
                client.images.remove(tag, force=True)
                removed += 1
                freed += image.attrs.get("Size", 0)
            except docker.errors.APIError as exc:
                console.print(f"  kept {tag}: {exc.explanation or exc}")
    console.print(f"removed {removed} image tag(s), up to {freed / 2**20:.0f} MiB")


@app.command(rich_help_panel="Maintenance")
def clean(
    run_id: Annotated[
        str | None, typer.Option(help="This run's containers, whether its owner lives or not.")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every swe-monkeys container, live runs' included.")
    ] = False,
):
    """Remove containers that runs left behind (after a crash or kill -9). Without --run-id or
    --all, only those whose owning process is known to be dead: live runs are never touched."""
    from sandbox.docker_sandbox import DockerSandbox

    sandbox = DockerSandbox()
    if run_id or everything:
        removed = sandbox.cleanup(run_id)
        console.print(f"removed {removed} container(s)")
        return
    total = sandbox.cleanup(None, orphans_only=True)
    kept = len(sandbox.client.containers.list(all=True, filters={"label": "swe-monkeys"}))
    console.print(
        f"removed {total} container(s) of dead runs"
        + (f"; kept {kept} of live runs or other hosts (--all removes them)" if kept else "")
    )


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main() -> None:
    """Console entry point: a UserError or a bad option is one line on stderr and exit 2."""
    # Typer may vendor its own click: take the usage-error class from typer itself.
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except usage_error as exc:
        message = " ".join(exc.format_message().split())
        if message:  # empty: no command given, and the help has been shown
            where = exc.ctx.command_path if exc.ctx else "harness"
            print(f"error: {message} (see `{where} --help`)", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
