"""Every option of the command line, declared once. Options that travel together are a group
(a frozen dataclass whose fields carry their typer declarations); a command names the group
as one parameter and `@grouped` spreads its fields into the command's options, then hands the
command the built dataclass."""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, get_type_hints

import typer

from harness.config import ImageOptions, SandboxLimits, size_bytes
from harness.errors import UserError

DEFAULT = SandboxLimits()
HALF_THE_CORES = max(1, (os.cpu_count() or 2) // 2)
MIN_SIZE = 64 * 2**20


class NetworkMode(enum.StrEnum):
    none = "none"
    bridge = "bridge"


class ImageSourceChoice(enum.StrEnum):
    auto = "auto"
    official = "official"
    build = "build"


class AgentKindChoice(enum.StrEnum):
    agentless = "agentless"
    agentic = "agentic"


class ActionFormatChoice(enum.StrEnum):
    fenced = "fenced"
    tools = "tools"


class EditFormatChoice(enum.StrEnum):
    auto = "auto"
    search_replace = "search-replace"
    whole_file = "whole-file"
    whole_function = "whole-function"
    span = "span"


class ExecutorChoice(enum.StrEnum):
    local = "local"
    ray = "ray"


Dataset = Annotated[
    str,
    typer.Option(
        "--dataset",
        "-d",
        help="mini, lite, verified, full, a HF dataset name, or a .jsonl/.json/.parquet file.",
    ),
]
Split = Annotated[str, typer.Option(help="Dataset split (HF datasets only).")]
Instances = Annotated[
    list[str] | None,
    typer.Option(
        "--instances", help="Ids, globs (django__*) or re:REGEX; repeat or separate with commas."
    ),
]


def run_id_name(value: str | None) -> str | None:
    """A run id names one folder under --runs-dir: a single path component, so that no run
    writes outside it (`../x` or `/abs` would overwrite another folder's files)."""
    if value is None:
        return None
    bad = not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value
    if bad or value != value.strip() or value.startswith("-"):
        raise typer.BadParameter(
            f"{value!r} is not a run id: give one folder name under --runs-dir (no /, no ..)"
        )
    return value


RunId = Annotated[
    str | None,
    typer.Option(help="Run directory name under --runs-dir (default: new).", callback=run_id_name),
]
RunsDir = Annotated[Path, typer.Option(help="Where run directories go.")]
RunRef = Annotated[str, typer.Argument(help="A run id (under --runs-dir) or a run directory.")]
Resume = Annotated[bool, typer.Option(help="Continue an interrupted run.")]
ExcludeFlaky = Annotated[
    bool,
    typer.Option(
        help="Grade without the PASS_TO_PASS tests that `validate --repeat` measured flaky "
        "(each verdict names those it left out).",
        rich_help_panel="Verification",
    ),
]
FullTests = Annotated[
    bool,
    typer.Option(
        help="Run every test even after a required one failed. By default a pytest run ends "
        "at the first FAIL_TO_PASS or PASS_TO_PASS test that fails, which already decides the "
        "verdict; the verdict lists the tests it did not run.",
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
VerifyWorkers = Annotated[int, typer.Option(min=1, help="Containers at once.")]
EvalSamples = Annotated[
    int | None,
    typer.Option(
        "--samples",
        "-k",
        min=1,
        help="Samples per issue (default 10; with --predictions, the first k per issue, "
        "default: as many as the file has).",
    ),
]
Predictions = Annotated[
    str | None,
    typer.Option(
        help="Verify a SWE-bench predictions file (one or many patches per issue), or "
        "'gold', instead of generating.",
    ),
]
GenConcurrency = Annotated[
    int, typer.Option(min=1, help="Issues generating at once (the embedded model: 1).")
]
ValidateWorkers = Annotated[int, typer.Option(min=1, help="Instances verified at once.")]
NetworkCheck = Annotated[
    bool,
    typer.Option(help="Retry a failing gold patch with the network to say whether it needs it."),
]
Repeat = Annotated[
    int,
    typer.Option(
        min=1,
        help="Run gold and empty this many times; tests whose outcome varies are recorded "
        "as flaky (for --exclude-flaky).",
    ),
]


def resolve_run(ref: str, runs_dir: Path) -> Path:
    """A run id under runs_dir, or a path to a run directory."""
    for path in (Path(ref), runs_dir / ref):
        if (path / "manifest.json").exists():
            return path
    raise UserError(
        f"{ref} is not a run directory (no manifest.json), nor a run id under {runs_dir}"
    )


class OptionGroup:
    """Marks a dataclass whose fields are options (see `grouped`)."""


def _panel(name: str):
    return {"rich_help_panel": name}


@dataclass(frozen=True)
class Isolation(OptionGroup):
    network: Annotated[
        NetworkMode,
        typer.Option(
            help="Network for the tests: none (isolated) or bridge (as the official harness).",
            **_panel("Isolation"),
        ),
    ] = NetworkMode.none
    memory: Annotated[
        str, typer.Option(help="Memory limit, swap included.", **_panel("Isolation"))
    ] = DEFAULT.memory
    pids: Annotated[
        int, typer.Option(min=8, help="Most processes at once.", **_panel("Isolation"))
    ] = DEFAULT.pids
    cpus: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=float(os.cpu_count() or 1),
            help="CPU quota in cores.",
            **_panel("Isolation"),
        ),
    ] = DEFAULT.cpus
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=1.0,
            help="Seconds the tests may run before the container is killed.",
            **_panel("Isolation"),
        ),
    ] = DEFAULT.timeout_s
    log_cap: Annotated[
        int,
        typer.Option(min=1, help="Captured output per command, MiB.", **_panel("Isolation")),
    ] = DEFAULT.log_cap_bytes // 2**20
    disk: Annotated[
        str,
        typer.Option(
            help="What a container may write (e.g. 4g); past it, it is killed.",
            **_panel("Isolation"),
        ),
    ] = DEFAULT.disk

    def limits(self) -> SandboxLimits:
        for option, value in (("--memory", self.memory), ("--disk", self.disk)):
            size = size_bytes(value)
            if size is None:
                raise UserError(f"{option} {value}: use a size such as 512m or 4g")
            if size < MIN_SIZE:
                raise UserError(f"{option} {value}: at least 64m, or the tests cannot start")
        return SandboxLimits(
            network=str(self.network),
            memory=self.memory,
            pids=self.pids,
            cpus=self.cpus,
            timeout_s=self.timeout,
            log_cap_bytes=self.log_cap * 1024 * 1024,
            disk=self.disk,
        )


@dataclass(frozen=True)
class Images(OptionGroup):
    sandbox: Annotated[
        str,
        typer.Option(
            envvar="SWEM_SANDBOX",
            help="Where verification runs: docker or podman (Podman's API service; for hosts "
            "without a Docker daemon), or a registered backend.",
            **_panel("Images"),
        ),
    ] = "docker"
    image_namespace: Annotated[
        str,
        typer.Option(
            help="Namespace of the official eval images ('' for local names).", **_panel("Images")
        ),
    ] = "swebench"
    image_tag: Annotated[
        str, typer.Option(help="Tag of the official eval images.", **_panel("Images"))
    ] = "latest"
    pull: Annotated[
        bool, typer.Option(help="Pull official images that are missing.", **_panel("Images"))
    ] = True
    image_source: Annotated[
        ImageSourceChoice,
        typer.Option(
            help="auto (local, else pull, else build offline), official, or build.",
            **_panel("Images"),
        ),
    ] = ImageSourceChoice.auto

    def options(self) -> ImageOptions:
        return ImageOptions(
            namespace=self.image_namespace,
            tag=self.image_tag,
            pull=self.pull,
            source=str(self.image_source),
        )


@dataclass(frozen=True)
class Model(OptionGroup):
    model: Annotated[
        str,
        typer.Option(
            help="embedded (CPU default; embedded:1.5b), vllm:MODEL, or http(s)://HOST/v1"
            "\\[#MODEL] (several, comma-separated: requests balanced across them).",
            **_panel("Model"),
        ),
    ] = "embedded"
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0, **_panel("Model"))] = 0.8
    top_p: Annotated[float, typer.Option(min=0.01, max=1.0, **_panel("Model"))] = 0.95
    max_tokens: Annotated[int, typer.Option(min=1, **_panel("Model"))] = 1024
    seed: Annotated[
        int | None,
        typer.Option(
            help="Sample i of an issue uses seed+i, so a resumed run asks for the same samples "
            "(eval: 0 when not given; run: unseeded).",
            **_panel("Model"),
        ),
    ] = None
    concurrency: Annotated[
        int, typer.Option(min=1, help="Requests in flight at once.", **_panel("Model"))
    ] = 16
    request_timeout: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            help="Seconds per request before it is retried (default 600; 3600 for the "
            "embedded models, whose n long answers decode together on the CPU).",
            **_panel("Model"),
        ),
    ] = None
    retries: Annotated[
        int, typer.Option(min=1, help="Attempts per request.", **_panel("Model"))
    ] = 4
    tensor_parallel_size: Annotated[int, typer.Option(min=1, **_panel("vLLM"))] = 1
    gpu_memory_utilization: Annotated[float, typer.Option(min=0.05, max=1.0, **_panel("vLLM"))] = (
        0.9
    )
    max_model_len: Annotated[int | None, typer.Option(min=1, **_panel("vLLM"))] = None

    def sampling(self, default_seed: int | None = None):
        from harness.types import SamplingConfig

        seed = self.seed if self.seed is not None else default_seed
        return SamplingConfig(self.temperature, self.top_p, self.max_tokens, seed)

    def issue_concurrency(self, asked: int) -> int:
        """The embedded server's slots all go to one issue's n samples (a request for n waits
        for n free slots): a second issue's request would only wait behind it."""
        return 1 if self.model.startswith("embedded") else asked

    def spec(self):
        from harness.wiring import ModelSpec

        return ModelSpec(
            self.model,
            self.concurrency,
            self.request_timeout or (3600.0 if self.model.startswith("embedded") else 600.0),
            self.retries,
            self.tensor_parallel_size,
            self.gpu_memory_utilization,
            self.max_model_len,
        )


@dataclass(frozen=True)
class Agent(OptionGroup):
    agent: Annotated[
        AgentKindChoice,
        typer.Option(
            "--agent",
            help="agentless (one-shot edits) or agentic (multi-turn, in the container).",
            **_panel("Agent"),
        ),
    ] = AgentKindChoice.agentless
    edit_format: Annotated[
        EditFormatChoice,
        typer.Option(
            help="How the agentless agent asks for edits (auto: the model's own default, span "
            "for the embedded models, search-replace otherwise). span shows one localised "
            "function per prompt and sizes the answer's token budget from it.",
            **_panel("Agent"),
        ),
    ] = EditFormatChoice.auto
    locations: Annotated[
        int,
        typer.Option(
            min=1,
            help="span: the k samples spread over this many of the top localised functions "
            "(sample i is shown location i mod m; each location's samples are one request).",
            **_panel("Agent"),
        ),
    ] = 3
    prompt_tokens: Annotated[
        int,
        typer.Option(
            min=300,
            help="span: the repair prompt's budget in tokens (issue text and code); a longer "
            "function is cut to its statements the issue names most.",
            **_panel("Agent"),
        ),
    ] = 1500
    oracle_locations: Annotated[
        bool,
        typer.Option(
            help="DIAGNOSTIC, never a headline figure: show the functions the gold patch "
            "edits instead of the localised ones (splits a loss into wrong place and wrong "
            "fix).",
            **_panel("Agent"),
        ),
    ] = False
    drop_test_edits: Annotated[
        bool,
        typer.Option(
            help="Drop candidates' edits to test files. Off by default, as in the official "
            "harness: the eval script resets the files the test patch touches, and the "
            "integrity screen flags edits to the rest of the test suite.",
            **_panel("Agent"),
        ),
    ] = False
    max_steps: Annotated[
        int, typer.Option(min=1, help="agentic: actions per trajectory.", **_panel("Agent"))
    ] = 30
    trajectory_tokens: Annotated[
        int, typer.Option(min=1, help="agentic: tokens per trajectory.", **_panel("Agent"))
    ] = 200_000
    trajectory_seconds: Annotated[
        float,
        typer.Option(min=1.0, help="agentic: wall time per trajectory.", **_panel("Agent")),
    ] = 1800.0
    observation_chars: Annotated[
        int,
        typer.Option(min=100, help="agentic: characters kept per observation.", **_panel("Agent")),
    ] = 4000
    command_timeout: Annotated[
        float,
        typer.Option(min=1.0, help="agentic: seconds per shell command.", **_panel("Agent")),
    ] = 60.0
    action_format: Annotated[
        ActionFormatChoice,
        typer.Option(
            help="agentic: fenced (a fenced block per reply, any model) or tools (tool calls).",
            **_panel("Agent"),
        ),
    ] = ActionFormatChoice.fenced


@dataclass(frozen=True)
class Reliability(OptionGroup):
    """How a run treats infrastructure failures and the verdict cache (run and eval)."""

    infra_retries: Annotated[
        int,
        typer.Option(
            min=0,
            max=20,
            help="Retries of a sample the model server never answered or a verification the "
            "sandbox never finished (backoff, then x3 each time).",
            **_panel("Reliability"),
        ),
    ] = 3
    infra_backoff: Annotated[
        float,
        typer.Option(min=0.0, help="Seconds before the first such retry.", **_panel("Reliability")),
    ] = 5.0
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache",
            help="Reuse verdicts of earlier runs (same patch, image, limits, eval script).",
            **_panel("Reliability"),
        ),
    ] = True
    refresh_cache: Annotated[
        bool,
        typer.Option(
            help="Verify again instead of reading the cache, and overwrite it.",
            **_panel("Reliability"),
        ),
    ] = False
    verdict_cache: Annotated[
        Path | None,
        typer.Option(
            "--verdict-cache",
            help="Verdict cache folder (default $SWEM_VERDICT_CACHE or "
            "~/.cache/swe-monkeys-verdicts).",
            **_panel("Reliability"),
        ),
    ] = None

    def verdict_cache_store(self):
        from harness.verdict_cache import VerdictCache, default_root

        if not self.cache:
            return None
        return VerdictCache(self.verdict_cache or default_root(), read=not self.refresh_cache)


@dataclass(frozen=True)
class Output(OptionGroup):
    progress: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Seconds between progress lines when stdout is not a terminal.",
            **_panel("Output"),
        ),
    ] = 30.0
    quiet: Annotated[bool, typer.Option(help="No progress output.", **_panel("Output"))] = False
    html_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds between rewrites of the run's HTML report (RUN/report/html) while it "
            "runs, stretched to 4x a rewrite's own time on large runs; 0: never.",
            **_panel("Output"),
        ),
    ] = 30.0


@dataclass(frozen=True)
class Cost(OptionGroup):
    price_input: Annotated[
        float, typer.Option(min=0.0, help="USD per million prompt tokens.", **_panel("Cost"))
    ] = 0.0
    price_output: Annotated[
        float, typer.Option(min=0.0, help="USD per million completion tokens.", **_panel("Cost"))
    ] = 0.0
    gpu_hour_usd: Annotated[
        float,
        typer.Option(min=0.0, help="USD per GPU-hour of generation wall time.", **_panel("Cost")),
    ] = 0.0
    gpus: Annotated[int, typer.Option(min=1, **_panel("Cost"))] = 1


@dataclass(frozen=True)
class Place(OptionGroup):
    """Where a run's records go, and whether it continues an earlier one."""

    run_id: RunId = None
    runs_dir: RunsDir = Path("runs")
    resume: Resume = False

    def new_or_given(self, prefix: str) -> str:
        from harness.wiring import new_run_id

        return self.run_id or new_run_id(prefix)


@dataclass(frozen=True)
class Cluster(OptionGroup):
    executor: Annotated[
        ExecutorChoice,
        typer.Option(
            help="local (containers here) or ray (verification as Ray tasks on the nodes that "
            "offer the --sandbox backend's resource).",
            **_panel("Cluster"),
        ),
    ] = ExecutorChoice.local
    ray_address: Annotated[
        str, typer.Option(help="The Ray cluster for --executor ray.", **_panel("Cluster"))
    ] = "auto"


@dataclass(frozen=True)
class Grading(OptionGroup):
    include_flagged: IncludeFlagged = False
    exclude_flaky: ExcludeFlaky = False
    full_tests: FullTests = False
    skip_unbuildable: Annotated[
        bool,
        typer.Option(
            help="Leave out (and list) selected instances whose image cannot be had, instead "
            "of stopping.",
            **_panel("Images"),
        ),
    ] = False


def grouped(command):
    """Spread each OptionGroup parameter of `command` into its fields (as typer options), and
    call `command` with the groups built from them."""
    hints = get_type_hints(command, include_extras=True)
    groups: dict[str, type] = {}
    params: list[inspect.Parameter] = []
    for name, param in inspect.signature(command).parameters.items():
        kind = hints.get(name, param.annotation)
        if isinstance(kind, type) and issubclass(kind, OptionGroup):
            groups[name] = kind
            fields = get_type_hints(kind, include_extras=True)
            params += [
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=inspect.Parameter.empty
                    if f.default is dataclasses.MISSING
                    else f.default,
                    annotation=fields[f.name],
                )
                for f in dataclasses.fields(kind)
            ]
        else:
            params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=kind))

    @functools.wraps(command)
    def wrapper(**values):
        for name, kind in groups.items():
            values[name] = kind(**{f.name: values.pop(f.name) for f in dataclasses.fields(kind)})
        return command(**values)

    wrapper.__signature__ = inspect.Signature(params)
    wrapper.__annotations__ = {}
    del wrapper.__wrapped__
    return wrapper
