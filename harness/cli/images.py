"""images build/plan/ls/prune and clean, on the --sandbox backend."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.app import app, command, console
from harness.cli.common import select
from harness.cli.options import Dataset, Images, Instances, Split
from harness.errors import UserError

images_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Offline SWE-bench environments: plan, build, list, prune.",
)
app.add_typer(images_app, name="images")
Sandbox = Annotated[
    str,
    typer.Option(
        envvar="SWEM_SANDBOX", help="The sandbox backend whose images these are (docker, podman)."
    ),
]


def _store(sandbox: str):
    from harness import wiring

    return wiring.image_store(sandbox)


@command("build", images_app)
def images_build(
    dataset: Dataset,
    instances: Instances = None,
    split: Split = "test",
    sandbox: Sandbox = Images.sandbox,
) -> None:
    """Build each instance's image from a Debian base, the repo (SWEM_REPO_SOURCE) and PyPI,
    after swebench's install recipe. A failed instance gets one line and the others go on."""
    from sandbox.env_build import BuildFailed

    chosen = select(dataset, split, instances)
    store = _store(sandbox)
    failed = 0
    for instance in chosen:
        try:
            built = store.build(instance)
        except (BuildFailed, UserError) as exc:
            failed += 1
            console.print(f"  [red]failed[/] {instance.instance_id}: {exc}")
            continue
        how = "reused" if built.reused else f"built in {built.seconds:.0f} s"
        note = f"  [yellow]{built.notes}[/]" if built.notes else ""
        console.print(f"  [green]ok[/] {instance.instance_id} {built.image} ({how}){note}")
    console.print(f"{len(chosen) - failed}/{len(chosen)} built")
    raise typer.Exit(1 if failed else 0)


@command("plan", images_app)
def images_plan(dataset: Dataset, instances: Instances = None, split: Split = "test") -> None:
    """Each instance's environment recipe (Debian suite, Python, fidelity notes), or the
    one-line reason there is none, without building anything."""
    from harness import wiring
    from sandbox.env_build import BuildFailed, resolve_as_of

    wiring.register_minibench_specs()
    chosen = select(dataset, split, instances)
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


@command("ls", images_app)
def images_ls(sandbox: Sandbox = Images.sandbox) -> None:
    """The images the harness built or uses, with their Python and fidelity notes; the total
    counts every shared layer once."""
    store = _store(sandbox)
    found = sorted(store.listing(), key=lambda i: (i.kind, i.name))
    table = Table(title=f"swe-monkeys images ({sandbox})")
    for col in ("image", "kind", "python", "fidelity", "size"):
        table.add_column(col, overflow="fold", no_wrap=col == "image")
    for info in found:
        table.add_row(
            info.name,
            info.kind,
            info.python,
            escape(info.fidelity),
            f"{info.size_bytes / 2**20:.0f} MiB",
        )
    console.print(table)
    total = store.disk_bytes([i.name for i in found])
    console.print(f"{len(found)} image(s), {total / 2**30:.2f} GiB on disk (shared layers once)")


@command("prune", images_app)
def images_prune(
    everything: Annotated[
        bool, typer.Option("--all", help="Environments and bases too, not only instance images.")
    ] = False,
    sandbox: Sandbox = Images.sandbox,
) -> None:
    """Remove instance images (thin layers, rebuilt in seconds), or all of ours with --all."""
    store = _store(sandbox)
    chosen = [i for i in store.listing() if everything or i.kind == "instance"]
    before = store.disk_bytes([i.name for i in store.listing()])
    removed = 0
    for info in chosen:
        if why := store.remove(info.name):
            console.print(f"  kept {info.name}: {escape(why)}")
        else:
            removed += 1
    freed = before - store.disk_bytes([i.name for i in store.listing()])
    console.print(f"removed {removed} image tag(s), {freed / 2**20:.0f} MiB freed")


@command("clean")
def clean(
    run_id: Annotated[
        str | None, typer.Option(help="This run's containers, whether its owner lives or not.")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every swe-monkeys container, live runs' included.")
    ] = False,
    sandbox: Sandbox = Images.sandbox,
):
    """Remove containers that runs left behind (after a crash or kill -9). Without --run-id or
    --all, only those whose owning process is known to be dead: live runs are never touched."""
    from sandbox import backends

    box = backends.get(sandbox).sandbox()
    if run_id or everything:
        console.print(f"removed {box.cleanup(run_id)} container(s)")
        return
    total = box.cleanup(None, orphans_only=True)
    kept = box.count()
    console.print(
        f"removed {total} container(s) of dead runs"
        + (f"; kept {kept} of live runs or other hosts (--all removes them)" if kept else "")
    )
