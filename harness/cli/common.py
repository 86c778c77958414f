"""What several commands share: choosing instances, opening a run, the evaluation behind run
and eval, the live view, and the exit status of a run that did not finish its job."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape

from harness.cli.app import console
from harness.cli.options import Agent, Reliability


def select(dataset: str, split: str, instances: list[str] | None):
    from harness import wiring

    patterns = [p for item in instances or [] for p in item.split(",") if p]
    return wiring.load(dataset, split, patterns or None)


def verdict_style(status: str) -> str:
    return {"resolved": "green", "unresolved": "yellow"}.get(status, "red")


def make_agent(choice: Agent, backend, pipe, limits):
    if choice.agent == "agentless":
        from agents.agentless import AgentlessAgent, AgentlessOptions

        options = AgentlessOptions(
            drop_test_edits=choice.drop_test_edits,
            edit_format=str(choice.edit_format),
            locations=choice.locations,
            prompt_tokens=choice.prompt_tokens,
            oracle_locations=choice.oracle_locations,
        )
        return AgentlessAgent(backend, options)
    from agents.agentic import AgenticAgent, AgenticOptions

    def open_session(instance, label):
        # the instance's own image, with the verifier's isolation and the run's label
        return pipe.sandbox.open(pipe.verifier.image_for(instance), limits, pipe.store.run_id)

    options = AgenticOptions(
        choice.max_steps,
        choice.trajectory_tokens,
        choice.trajectory_seconds,
        choice.observation_chars,
        choice.command_timeout,
        choice.drop_test_edits,
        action_format=str(choice.action_format),
    )
    return AgenticAgent(backend, open_session, options)


def open_run(run_dir: Path, identity: dict, resume: bool):
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


def evaluation(pipe, instances, samples, sampling, model, workers, reliability: Reliability,
               verify=True, verify_fn=None):  # fmt: skip
    """The pipeline behind run and eval, reporting into a RunState; `workers` is
    (issues generating at once, containers at once)."""
    from harness import wiring
    from harness.eval import Evaluation, RetryPolicy
    from harness.progress import RunState, apply_event

    state = RunState.from_store(pipe.store)
    state.model = model
    state.samples = samples
    gen_concurrency, verify_workers = workers
    built = Evaluation(
        pipe.store,
        instances,
        samples,
        sampling,
        None,
        lambda inst, dest: wiring.repo_cache_for(inst).checkout(inst.repo, inst.base_commit, dest),
        (verify_fn or pipe.verifier.verify) if verify else None,
        pipe.verdict_key,
        reliability.verdict_cache_store(),
        gen_concurrency,
        verify_workers,
        lambda kind, data: apply_event(state, kind, data),
        lambda: pipe.sandbox.cleanup(pipe.store.run_id),
        RetryPolicy(reliability.infra_retries + 1, reliability.infra_backoff),
    )
    return built, state


def generate_and_verify(evaluation, state, pipe, model, agent: Agent, output, limits) -> None:
    """Start the model, make the agent, run with the live view."""
    from harness import wiring

    say = (lambda _: None) if output.quiet else (lambda m: console.print(m, markup=False))
    with wiring.model_backend(model.spec(), say) as backend, watching(backend, state):
        evaluation.agent = make_agent(agent, backend, pipe, limits)
        run_with_progress(evaluation, state, pipe, output)


@contextmanager
def watching(backend, state, every_s: float = 1.0):
    """While the block runs, the state's `step` says what the model server is doing, where it
    can say (llama-server's /slots): a CPU model takes minutes before its first sample."""
    watch = getattr(backend, "watch", None)
    if watch is None:
        yield
        return
    stop = threading.Event()

    def look() -> None:
        while not stop.wait(every_s):
            state.step = watch.describe() or ""

    thread = threading.Thread(target=look, daemon=True, name="model-watch")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        state.step = ""


def resume_command(run_id: str) -> str:
    """The command that continues this run: the same arguments, plus --resume and --run-id."""
    args = sys.argv[1:]
    again = " ".join(args) + ("" if "--resume" in args else " --resume")
    if "--run-id" not in args:
        again += f" --run-id {run_id}"
    return f"harness {again}"


def run_with_progress(evaluation, state, pipe, output, imported=None) -> None:
    """Run with the live view (or lines, or quiet) and the HTML report kept current; on Ctrl-C
    say how to resume."""
    from harness.html_report import LiveSite
    from harness.progress import Reporter

    try:
        with (
            Reporter(state, console, "quiet" if output.quiet else "auto", output.progress),
            LiveSite(pipe.store.run_dir, output.html_every, state.warn),
        ):
            evaluation.run(imported)
        pipe.sandbox.cleanup(pipe.store.run_id)  # containers started ahead, removals pending
    except KeyboardInterrupt:
        console.print("interrupted: containers removed and records flushed. Continue with:")
        console.print(f"  {resume_command(pipe.store.run_id)}", soft_wrap=True, markup=False)
        raise


def print_site(run_dir) -> None:
    """The last line of `run` and `eval`: where to look at the run in a browser."""
    from harness.html_report import site_of

    if (site := site_of(run_dir)).exists():
        console.print(f"HTML report: {site}", soft_wrap=True, markup=False)


def exit_if_incomplete(store, summary: dict | None = None, verified: bool = True) -> None:
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
        f"they count in no metric. Continue with: {resume_command(store.run_id)}",
        file=sys.stderr,
    )
    raise typer.Exit(3)
