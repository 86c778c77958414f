"""run (one issue) and eval (a dataset): sample candidates, verify each distinct patch once."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli import common
from harness.cli.app import command, console
from harness.cli.options import (
    HALF_THE_CORES,
    Agent,
    Cluster,
    Cost,
    Dataset,
    EvalSamples,
    ExecutorChoice,
    GenConcurrency,
    Grading,
    Images,
    Instances,
    Isolation,
    Model,
    Output,
    Place,
    Predictions,
    Reliability,
    Split,
    VerifyWorkers,
    grouped,
)
from harness.errors import UserError


@command()
@grouped
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
    verify_patches: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Verify candidates in the sandbox.")
    ] = True,
    verify_workers: VerifyWorkers = 2,
    place: Place = Place(),
    model: Model = Model(),
    agent: Agent = Agent(),
    output: Output = Output(),
    isolation: Isolation = Isolation(),
    images: Images = Images(),
    reliability: Reliability = Reliability(),
) -> None:
    """Sample candidate patches for one issue, verify each distinct one, print a table.

    Exit status: 0 done, 2 a usage or setup error, 3 samples or verifications still missing
    (the model server or the sandbox failed; --resume continues)."""
    from harness import wiring
    from harness.run_issue import IssueRun

    limits = isolation.limits()
    dataset = dataset or ("mini" if issue.startswith("swe-monkeys__") else "lite")
    (instance,) = wiring.load(dataset, split, [issue])
    sampling = model.sampling()
    run_id = place.new_or_given("run")
    identity = {"instances": [issue], "samples": samples, "model": model.model}
    store = common.open_run(place.runs_dir / run_id, identity, place.resume)
    manifest = {"command": "run", "dataset": dataset, "instance": issue, "samples": samples,
                "model": model.model, "sampling": sampling.__dict__, "agent": str(agent.agent),
                "identity": identity}  # fmt: skip
    with store.writer():
        pipe = _pipeline(run_id, place, limits, images, manifest, store)
        if verify_patches:
            pipe.verifier.image_for(instance)
        console.print(f"{issue}: sampling {samples} from {model.model}; run {pipe.store.run_dir}")
        evaluation, state = common.evaluation(
            pipe, [instance], samples, sampling, model.model, (1, verify_workers), reliability,
            verify_patches,
        )  # fmt: skip
        common.generate_and_verify(evaluation, state, pipe, model, agent, output, limits)
    _print_issue_run(IssueRun.from_store(pipe.store, issue))
    common.print_site(pipe.store.run_dir)
    common.exit_if_incomplete(pipe.store, verified=verify_patches)


def _pipeline(run_id, place: Place, limits, images: Images, manifest, store, grading=Grading()):
    """The run's verifier and store; on --resume, the interrupted run's containers go first."""
    from harness import wiring

    pipe = wiring.build_pipeline(
        run_id, place.runs_dir, limits, images.options(), manifest, store,
        grading.exclude_flaky, images.sandbox, grading.full_tests, overlap=True,
    )  # fmt: skip
    if place.resume and (removed := pipe.sandbox.cleanup(run_id)):
        console.print(f"removed {removed} container(s) left by the interrupted run")
    return pipe


def _print_issue_run(result) -> None:
    table = Table(title=f"{result.generation.instance_id}: candidates")
    for col in ("#", "valid", "unique", "verdict", "tok in", "tok out", "secs"):
        table.add_column(col, no_wrap=True)  # figures print whole; the note wraps
    table.add_column("note", overflow="fold", ratio=1)
    for c in result.candidates:
        table.add_row(*_candidate_row(result, c))
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


def _candidate_row(result, c) -> list[str]:
    verdict = result.verdict(c)
    first = result.first_index(c) if c.valid else None
    unique = "-" if first is None else ("new" if first == c.sample_index else f"= #{first}")
    status = verdict.status.value if verdict else ""
    shown = f"[{common.verdict_style(status)}]{status}[/]" if verdict else "-"
    note = c.reason or ", ".join(c.edited_files)
    if verdict and verdict.reason:
        note = f"{note}; {verdict.reason}" if note else verdict.reason
    return [
        str(c.sample_index),
        "yes" if c.valid else "[red]no[/]",
        unique,
        shown,
        str(c.prompt_tokens),
        str(c.completion_tokens),
        f"{c.latency_s:.1f}",
        escape(note),
    ]


@command("eval")
@grouped
def eval_command(
    dataset: Dataset,
    samples: EvalSamples = None,
    instances: Instances = None,
    split: Split = "test",
    predictions: Predictions = None,
    gen_concurrency: GenConcurrency = 2,
    verify_workers: VerifyWorkers = HALF_THE_CORES,
    place: Place = Place(),
    grading: Grading = Grading(),
    cluster: Cluster = Cluster(),
    model: Model = Model(),
    agent: Agent = Agent(),
    cost: Cost = Cost(),
    output: Output = Output(),
    isolation: Isolation = Isolation(),
    images: Images = Images(),
    reliability: Reliability = Reliability(),
) -> None:
    """Sample k candidates for every selected issue, verify each distinct patch once, and
    summarise coverage versus samples and cost. Resumable with --resume.

    Exit status: 0 done, 2 a usage or setup error, 3 samples or verifications still missing
    (the model server or the sandbox failed; --resume continues)."""
    limits = isolation.limits()
    chosen = common.select(dataset, split, instances)
    imported = _import_predictions(predictions, dataset, split, chosen, samples, agent)
    samples = imported.k if imported else (samples or 10)
    label = imported.model if imported else model.model
    sampling = model.sampling(default_seed=0)
    run_id = place.new_or_given("eval")
    identity = _identity(dataset, split, chosen, samples, label, sampling, agent, limits)
    identity.update(predictions=predictions, exclude_flaky=grading.exclude_flaky)
    store = common.open_run(place.runs_dir / run_id, identity, place.resume)
    manifest = _eval_manifest(store, identity, cost, grading.include_flagged, place.resume)
    with store.writer():
        pipe = _pipeline(run_id, place, limits, images, manifest, store, grading)
        chosen = _buildable(pipe, chosen, cluster.executor, grading.skip_unbuildable)
        if imported:
            kept = {i.instance_id for i in chosen}
            imported.candidates = [c for c in imported.candidates if c.instance_id in kept]
        console.print(f"eval {run_id}: {len(chosen)} issue(s) x {samples} sample(s), model {label}")
        if not imported:
            _print_estimate(label, agent, lambda: _samples_left(store, chosen, samples), samples)
        evaluation, state = common.evaluation(
            pipe, chosen, samples, sampling, label,
            (model.issue_concurrency(gen_concurrency), verify_workers), reliability,
            verify_fn=_remote_verify(pipe, cluster, limits, images),
        )  # fmt: skip
        if imported:
            common.run_with_progress(evaluation, state, pipe, output, imported.candidates)
        else:
            common.generate_and_verify(evaluation, state, pipe, model, agent, output, limits)
        summary = _summarize(pipe)
    _print_summary(summary)
    common.print_site(pipe.store.run_dir)
    common.exit_if_incomplete(pipe.store, summary)


def _samples_left(store, chosen, samples: int) -> list[int]:
    """Per issue, the samples still to draw (all of them, unless --resume found some)."""
    have = Counter(c.instance_id for c in store.candidates() if not c.missing)
    return [max(0, samples - have[i.instance_id]) for i in chosen]


def _print_estimate(label: str, agent: Agent, samples_left, samples: int) -> None:
    """An embedded (CPU) model: what the run will cost here, before the first sample. A resumed
    run is priced on what is left: each issue's missing samples, one prompt per location."""
    if not label.startswith("embedded") or agent.agent != "agentless":
        return
    from agents.model_store import by_spec, estimate

    model = by_spec(label)
    left = samples_left()  # read only here: a served model's run needs no estimate
    prompts = sum(min(agent.locations, n) for n in left)
    guess = estimate(model, prompts, agent.prompt_tokens, sum(left))
    if sum(left) < len(left) * samples:
        console.print(f"  resuming: {sum(left)} of {len(left) * samples} samples left")
    console.print(
        f"  estimate: {prompts} prompts of up to {agent.prompt_tokens:,} tokens "
        f"({guess['prompt_tokens']:,}) and about {guess['completion_tokens']:,} completion "
        f"tokens; generation up to {guess['seconds'] / 60:.0f} min at "
        f"{guess['prompt_tok_s']:.0f} prompt and {guess['decode_tok_s']:.0f} decode tokens/s "
        "(measured on 2 cores); verification comes on top"
    )


def _summarize(pipe) -> dict:
    from harness.summary import summarize

    pipe.sandbox.cleanup(pipe.store.run_id)  # orphans of workers killed mid-task (retried)
    summary = summarize(pipe.store)
    pipe.store.write_json("summary.json", summary)
    return summary


def _identity(dataset, split, chosen, samples, label, sampling, agent: Agent, limits) -> dict:
    """What a run is: --resume refuses a different one."""
    from harness import __version__

    return {
        "dataset": dataset,
        "split": split,
        "instances": [i.instance_id for i in chosen],
        "samples": samples,
        "model": label,
        "sampling": asdict(sampling),
        "agent": str(agent.agent),
        "edit_format": str(agent.edit_format),
        "locations": agent.locations,
        "prompt_tokens": agent.prompt_tokens,
        "oracle_locations": agent.oracle_locations,
        "network": limits.network,
        "drop_test_edits": agent.drop_test_edits,
        "harness_version": __version__,
        "swebench_version": _swebench_version(),
    }


def _eval_manifest(store, identity: dict, cost: Cost, include_flagged: bool, resume: bool):
    from harness.cost import PriceTable

    existing = store.manifest() if resume else None
    price = PriceTable(cost.price_input, cost.price_output, cost.gpu_hour_usd, cost.gpus)
    return {
        "command": "eval",
        "identity": identity,
        "price": price.to_dict(),
        "include_flagged": include_flagged,
        **({"created_at": existing["created_at"]} if existing else {}),
    }


def _import_predictions(source, dataset, split, chosen, k, agent: Agent):
    """--predictions as candidates (None without it), with the official harness's checks."""
    from harness import wiring
    from harness.predictions import load_predictions

    if source is None:
        return None
    every = {i.instance_id for i in wiring.load(dataset, split)}
    imported = load_predictions(source, chosen, every, k, agent.drop_test_edits)
    if imported.without:
        shown = ", ".join(imported.without[:5]) + (", ..." if len(imported.without) > 5 else "")
        console.print(
            f"[yellow]warning[/]: {len(imported.without)} selected issue(s) have no prediction "
            f"and count as unresolved: {shown}"
        )
    if imported.clipped_from:
        console.print(
            f"-k {imported.clipped_from} is more than any issue has predictions: "
            f"k = {imported.k}, the most any issue has"
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
    if executor != ExecutorChoice.local:
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


def _remote_verify(pipe, cluster: Cluster, limits, images: Images):
    """The Ray verify callable for --executor ray; None for local verification."""
    from harness import wiring

    if cluster.executor == ExecutorChoice.local:
        return None
    from harness.executors import RayVerify, VerifierSpec

    spec = VerifierSpec(
        pipe.store.run_id,
        limits.to_dict(),
        images.image_namespace,
        images.image_tag,
        images.pull,
        str(images.image_source),
        str(wiring.cache_dir()),
        os.environ.get("SWEM_REPO_SOURCE"),
        images.sandbox,
        pipe.verifier.full_tests,
    )
    from sandbox import backends

    resource = backends.get(images.sandbox).resource  # the nodes that can run this backend
    return RayVerify(cluster.ray_address, spec, pipe.store, resource=resource)


def _swebench_version() -> str:
    from importlib.metadata import version

    return version("swebench")


def _print_summary(summary: dict) -> None:
    from harness.report import coverage_tables

    for table in coverage_tables([summary], console.width):
        console.print(table)
    tokens = summary["tokens"]
    if skipped := summary.get("unbuildable"):
        console.print(f"not evaluated (unbuildable): {', '.join(sorted(skipped))}")
    console.print(
        f"{summary['n_issues']} issues x {summary['samples_per_issue']} samples; solved by any "
        f"sample {summary['resolved_any']:.1%}; tokens {tokens['prompt']} prompt + "
        f"{tokens['completion']} completion; ${summary['cost']['dollars']:.2f}"
    )
