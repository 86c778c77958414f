"""What a run looks like while it runs: one state, fed by the pipeline's events or rebuilt from
a run directory, and one rendering of it (a rich Live view on a terminal, timestamped lines
elsewhere). The view's height is bounded, so it never scrolls at 300 x 250."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from harness.metrics import coverage_at_k
from harness.store import RunStore
from harness.types import Candidate, Verdict

IN_FLIGHT_ROWS = 8
WARNINGS_KEPT = 5


@dataclass
class IssueState:
    sample_shas: dict = field(default_factory=dict)
    """sample index -> sha (None for an invalid answer), for samples the model answered."""
    missing: set = field(default_factory=set)
    """Indices the model server failed (asked again later)."""
    resolving: set = field(default_factory=set)
    verified: set = field(default_factory=set)
    generating: bool = False

    @property
    def samples(self) -> int:
        return len(self.sample_shas)

    @property
    def shas(self) -> Counter:
        return Counter(s for s in self.sample_shas.values() if s)

    @property
    def c(self) -> int:
        return sum(1 for s in self.sample_shas.values() if s in self.resolving)


class RunState:
    """Counters behind the view; every method is safe to call from any thread."""

    def __init__(self, run_id: str, issues: list[str], samples: int, model: str = "") -> None:
        self.run_id, self.samples, self.model = run_id, samples, model
        self.issues = {iid: IssueState() for iid in issues}
        self.started = time.monotonic()
        self.session_started = time.monotonic()
        self.session_samples = 0
        self.session_verified = 0
        self.tokens = 0
        self.server_errors = 0
        self.queued: set[tuple[str, str]] = set()
        self.running = 0
        self.statuses: Counter = Counter()
        self.warnings: deque[str] = deque(maxlen=WARNINGS_KEPT)
        self.finished = False
        self.step = ""
        """What the model server is doing now (e.g. decoding, tokens so far), where it says."""
        self._lock = threading.Lock()

    # events -------------------------------------------------------------------------------
    def generating(self, iid: str) -> None:
        with self._lock:
            self.issues[iid].generating = True

    def generated(self, candidates: list[Candidate]) -> None:
        with self._lock:
            for c in candidates:
                issue = self.issues.setdefault(c.instance_id, IssueState())
                issue.generating = False
                self.tokens += c.prompt_tokens + c.completion_tokens
                if c.missing:
                    issue.missing.add(c.sample_index)
                    issue.sample_shas.pop(c.sample_index, None)
                    self.server_errors += 1
                    self.warnings.append(f"{c.instance_id} #{c.sample_index}: {c.reason}")
                    continue
                issue.missing.discard(c.sample_index)
                if c.sample_index not in issue.sample_shas:
                    self.session_samples += 1
                issue.sample_shas[c.sample_index] = c.patch_sha

    def queued_patch(self, iid: str, sha: str) -> None:
        with self._lock:
            self.queued.add((iid, sha))

    def verify_started(self) -> None:
        with self._lock:
            self.running += 1

    def verify_failed(self) -> None:
        """A verification the sandbox did not finish; it is retried (its container is gone)."""
        with self._lock:
            self.running -= 1

    def verified(self, verdict: Verdict, from_container: bool = True) -> None:
        with self._lock:
            if from_container:  # a cached verdict never started one
                self.running -= 1
                self.session_verified += 1
            issue = self.issues.setdefault(verdict.instance_id, IssueState())
            issue.verified.add(verdict.patch_sha)
            self.statuses[verdict.status.value] += 1
            if verdict.resolved:
                issue.resolving.add(verdict.patch_sha)
            if verdict.status.value in ("timeout", "error"):
                self.warnings.append(
                    f"{verdict.instance_id}: {verdict.status.value}: {verdict.reason[:80]}"
                )

    def warn(self, message: str) -> None:
        with self._lock:
            self.warnings.append(message)

    @classmethod
    def from_store(cls, store: RunStore) -> RunState:
        manifest = store.manifest() or {}
        identity = manifest.get("identity", {})
        with_samples = store.issue_ids()
        issues = identity.get("instances") or with_samples
        issues = [i for i in issues if i not in (manifest.get("unbuildable") or {})]
        state = cls(
            store.run_id,
            issues,
            identity.get("samples") or manifest.get("samples", 0),
            identity.get("model") or manifest.get("model", ""),
        )
        for iid in with_samples:  # an issue at a time: a 300 x 250 run is 75,000 candidates
            candidates = store.issue_candidates(iid)
            state.generated(candidates)
            state.queued.update((iid, c.patch_sha) for c in candidates if c.patch_sha)
        for verdict in store.final_verdicts().values():
            state.verified(verdict, from_container=False)
        state.started = time.monotonic() - _elapsed(store, manifest)
        state.session_samples = state.session_verified = 0
        return state

    # derived ------------------------------------------------------------------------------
    def _eta(self, done: int, total: int, verified: int, unique: int) -> float | None:
        """Each stage from its own measured rate in this session (a sample and a container
        run cost very different times); patches still to come are expected at the unique
        ratio so far. The stages overlap, so the slower one decides."""
        elapsed = max(time.monotonic() - self.session_started, 1e-9)
        left = max(total - done, 0)
        if left and not self.session_samples:
            return None
        gen = left / (self.session_samples / elapsed) if left else 0.0
        coming = unique + (left * unique / done if done else 0)
        to_verify = max(coming - verified, 0)
        if to_verify and not self.session_verified:
            return None if (self.running or self.queued) else gen
        ver = to_verify / (self.session_verified / elapsed) if to_verify else 0.0
        return max(gen, ver) if (left or to_verify) else None

    def snapshot(self) -> dict:
        with self._lock:
            done = sum(i.samples for i in self.issues.values())
            total = self.samples * len(self.issues)
            verified = sum(self.statuses.values())
            unique = sum(len(i.shas) for i in self.issues.values())
            scored = [(i.samples, i.c) for i in self.issues.values() if i.samples]
            elapsed = time.monotonic() - self.started
            return {
                "done": done,
                "total": total,
                "missing": sum(len(i.missing) for i in self.issues.values()),
                "verified": verified,
                "unique": max(unique, verified),
                "queued": len(self.queued),
                "queue": max(len(self.queued) - verified - self.running, 0),
                "running": self.running,
                "elapsed_s": elapsed,
                "statuses": dict(self.statuses),
                "tokens_per_s": self.tokens / elapsed if elapsed > 0 else 0.0,
                "server_errors": self.server_errors,
                "step": self.step,
                "cov1": _mean(coverage_at_k(n, c, 1) for n, c in scored),
                "covn": _mean(1.0 if c else 0.0 for _, c in scored),
                "solved": sum(1 for _, c in scored if c),
                "scored": len(scored),
                "eta_s": self._eta(done, total, verified, unique),
                "in_flight": [
                    (iid, i.samples, len(i.shas), i.c, i.generating)
                    for iid, i in self.issues.items()
                    if i.generating or (i.samples and len(i.verified) < len(i.shas))
                ][:IN_FLIGHT_ROWS],
                "warnings": list(self.warnings),
            }


def _elapsed(store: RunStore, manifest: dict) -> float:
    """Generation time recorded by finished sessions, else the time since the run began."""
    recorded = sum(t.get("generation_wall_s", 0) for t in store.records("timing.jsonl"))
    if recorded:
        return recorded
    try:
        began = time.mktime(time.strptime(manifest["created_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    except (KeyError, ValueError):
        return 0.0
    return max(time.time() - began, 0.0)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def render(state: RunState):
    s = state.snapshot()
    st = s["statuses"]
    bars = Table.grid(padding=(0, 1))
    bars.add_column(width=12)
    bars.add_column(width=30)
    bars.add_column()
    bars.add_row(
        "generation",
        ProgressBar(total=max(s["total"], 1), completed=s["done"], width=30),
        f"{s['done']}/{s['total']} samples  {s['tokens_per_s']:.0f} tok/s  "
        f"server errors {s['server_errors']}"
        + (f"  missing {s['missing']}" if s["missing"] else ""),
    )
    bars.add_row(
        "verification",
        ProgressBar(total=max(s["unique"], 1), completed=s["verified"], width=30),
        f"{s['verified']}/{s['unique']} unique so far  queue {s['queue']}  running "
        f"{s['running']}  timeouts {st.get('timeout', 0)}  errors {st.get('error', 0)}",
    )
    headline = (
        f"coverage@1 {s['cov1']:.1%}   coverage@n {s['covn']:.1%}   "
        f"solved {s['solved']}/{s['scored']} issues so far   elapsed "
        f"{_clock(s['elapsed_s'])}   ETA {_clock(s['eta_s'])}"
    )
    flight = Table(title="issues in flight", expand=False, title_justify="left")
    for col in ("issue", "samples", "unique", "resolving", ""):
        flight.add_column(col)
    for iid, samples, unique, c, generating in s["in_flight"]:
        flight.add_row(iid, str(samples), str(unique), str(c), "generating" if generating else "")
    parts = [bars, *([escape(s["step"])] if s["step"] else []), headline]
    parts += [flight] if s["in_flight"] else []
    if s["warnings"]:
        parts.append(
            Panel(escape("\n".join(s["warnings"])), title="latest warnings", border_style="yellow")
        )
    title = f"{state.run_id}  {state.model}" + ("  (finished)" if state.finished else "")
    return Panel(Group(*parts), title=title, title_align="left")


def plain_line(state: RunState) -> str:
    s = state.snapshot()
    return (
        f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {state.run_id}: samples {s['done']}/{s['total']}"
        f", verified {s['verified']}/{s['unique']} unique (queue {s['queue']}, running "
        f"{s['running']}), coverage@1 {s['cov1']:.1%}, solved {s['solved']}/{s['scored']}, "
        f"elapsed {_clock(s['elapsed_s'])}, ETA {_clock(s['eta_s'])}"
        + (f"; {s['step']}" if s["step"] else "")
    )


class Reporter:
    """Shows a RunState while its block runs: a Live view on a terminal, a timestamped line
    every `interval_s` elsewhere (CI, nohup, a cluster log), nothing when quiet."""

    def __init__(
        self,
        state: RunState,
        console,
        mode: str = "auto",
        interval_s: float = 30.0,
        refresh_per_second: float = 4.0,
    ) -> None:
        if mode == "auto":
            mode = "live" if console.is_terminal else "plain"
        self.state, self.console, self.mode = state, console, mode
        self.interval_s, self.refresh = interval_s, refresh_per_second
        self._stop = threading.Event()
        self._live = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Reporter:
        if self.mode == "live":
            from rich.live import Live

            self._live = Live(
                console=self.console,
                refresh_per_second=self.refresh,
                get_renderable=lambda: render(self.state),
                transient=False,
            )
            self._live.start()
        elif self.mode == "plain":
            self.console.print(plain_line(self.state), highlight=False, soft_wrap=True)
            self._thread = threading.Thread(target=self._lines, daemon=True)
            self._thread.start()
        return self

    def _lines(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.console.print(plain_line(self.state), highlight=False, soft_wrap=True)

    def __exit__(self, *exc) -> None:
        self.state.finished = exc[0] is None
        self._stop.set()
        if self._live is not None:
            self._live.stop()
        elif self._thread is not None:
            self._thread.join(5)
            self.console.print(plain_line(self.state), highlight=False, soft_wrap=True)


def apply_event(state: RunState, kind: str, data: dict) -> None:
    """The pipeline's events, as RunState updates."""
    if kind == "generating":
        state.generating(data["instance_id"])
    elif kind == "generated":
        state.generated(data["candidates"])
    elif kind == "queued":
        state.queued_patch(data["instance_id"], data["sha"])
    elif kind == "verify_start":
        state.verify_started()
    elif kind == "verify_failed":
        state.verify_failed()
    elif kind == "retry":
        state.warn(f"{data['instance_id']}: retry {data['n']}: {data['reason'][:70]}")
    elif kind == "verdict":
        state.verified(data["verdict"], from_container=not data["cached"])
