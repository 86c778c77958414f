"""The composition root: turns CLI options into a dataset, a verifier and a run store.
The CLI and the tests build their pipelines here, so both exercise the same wiring."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness import __version__, minibench
from harness.config import SandboxLimits
from harness.dataset import load_rows, select, to_instances
from harness.repos import RepoCache, RepoSource
from harness.store import RunStore
from harness.types import Instance

if TYPE_CHECKING:
    from harness.protocols import Sandbox
    from sandbox.verifier import Verifier

MINI = "mini"


def cache_dir() -> Path:
    """Mirrors and generated data: $SWEM_CACHE, else ~/.cache/swe-monkeys."""
    return Path(os.environ.get("SWEM_CACHE") or Path.home() / ".cache" / "swe-monkeys")


def mini_mirror_dir() -> Path:
    return cache_dir() / "minibench"


def load(dataset: str, split: str = "test", patterns: list[str] | None = None) -> list[Instance]:
    """`mini` is the embedded benchmark; anything else goes to harness.dataset."""
    rows = minibench.rows(mini_mirror_dir()) if dataset == MINI else load_rows(dataset, split)
    return select(to_instances(rows, dataset), patterns)


def register_minibench_specs() -> None:
    """Give swebench the mini benchmark's repos, so its eval scripts and grading serve them."""
    from sandbox import swebench_adapter

    for repo in minibench.repos():
        swebench_adapter.register_repo(repo, minibench.SWEBENCH_SPECS)


def new_run_id(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


@dataclass
class Pipeline:
    verifier: Verifier
    store: RunStore
    sandbox: Sandbox


def build_pipeline(
    run_id: str,
    runs_dir: Path,
    limits: SandboxLimits,
    image_namespace: str = "swebench",
    image_tag: str = "latest",
    pull: bool = True,
) -> Pipeline:
    """A Docker-backed verifier writing into runs_dir/run_id."""
    from sandbox import swebench_adapter
    from sandbox.docker_sandbox import DockerSandbox, docker_client
    from sandbox.images import ImageOptions, ImageResolver, build_testbed_image, ensure_base_image
    from sandbox.verifier import Verifier

    client = docker_client()
    register_minibench_specs()
    options = ImageOptions(namespace=image_namespace, tag=image_tag, pull=pull)
    mini_repos = RepoCache(cache_dir() / "repos", RepoSource(str(mini_mirror_dir())))
    build_lock = threading.Lock()

    def mini_image(instance: Instance) -> str:
        # Concurrent verifications of one task must not build its image twice.
        with build_lock:
            base = ensure_base_image(client, options.base_suite)
            name = f"swe-monkeys/mini.{instance.instance_id.lower()}:{instance.base_commit[:12]}"
            return build_testbed_image(
                client,
                name,
                base,
                lambda dest: mini_repos.checkout(instance.repo, instance.base_commit, dest),
            )

    resolver = ImageResolver(client, options, {repo: mini_image for repo in minibench.repos()})
    store = RunStore(Path(runs_dir) / run_id)
    store.write_manifest(
        {
            "run_id": run_id,
            "harness_version": __version__,
            "swebench_version": swebench_adapter.SWEBENCH_VERSION,
            "limits": limits.to_dict(),
            "image_namespace": image_namespace,
            "image_tag": image_tag,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    sandbox = DockerSandbox(client)
    verifier = Verifier(sandbox, resolver.image_for, limits, run_id, store.artifact_dir)
    return Pipeline(verifier, store, sandbox)
