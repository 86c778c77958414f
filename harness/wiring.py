"""The composition root: turns CLI options into a dataset, a verifier and a run store.
The CLI and the tests build their pipelines here, so both exercise the same wiring."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness import __version__, minibench
from harness.config import ImageOptions, SandboxLimits
from harness.dataset import load_rows, select, to_instances
from harness.errors import UserError
from harness.protocols import ImageSources
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
    image_name: Callable[[Instance], str]
    """The image that verifies an instance, named without building it."""
    verdict_key: Callable[[Instance, str], dict | None]
    """What a verdict on (instance, patch sha) depends on, for the verdict cache; None while
    the image does not exist yet (there is then nothing to look up)."""


def build_pipeline(
    run_id: str,
    runs_dir: Path,
    limits: SandboxLimits,
    images: ImageOptions = ImageOptions(),
    manifest: dict | None = None,
    store: RunStore | None = None,
    exclude_flaky: bool = False,
    backend: str = "docker",
    full_tests: bool = False,
    overlap: bool = False,
) -> Pipeline:
    """A verifier on the named sandbox backend writing into runs_dir/run_id. The store is
    locked for this process (pass one already locked, or one is made and locked here). With
    overlap (many verifications ahead), a backend that can start containers ahead and remove
    them in the background does; cleanup(run_id) waits for it."""
    from sandbox import backends, swebench_adapter
    from sandbox.verifier import Verifier

    if images.source not in ("auto", "official", "build"):
        raise UserError(f"--image-source {images.source}: use auto, official or build")
    chosen = backends.get(backend)
    found = image_store(backend, images)  # the images verification runs on
    store = store or RunStore(Path(runs_dir) / run_id)
    store.lock()
    store.write_manifest(
        {
            "run_id": run_id,
            "harness_version": __version__,
            "swebench_version": swebench_adapter.SWEBENCH_VERSION,
            "sandbox": backend,
            "limits": limits.to_dict(),
            "image_namespace": images.namespace,
            "image_tag": images.tag,
            "image_source": images.source,
            "exclude_flaky": exclude_flaky,
            "full_tests": full_tests,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **(manifest or {}),
        }
    )
    sandbox = chosen.sandbox()
    if overlap and hasattr(sandbox, "overlap"):
        sandbox.overlap = True
    verifier = Verifier(
        sandbox,
        found.image_for,
        limits,
        run_id,
        store.artifact_dir,
        found.describe,
        store.relative,
        known_flaky() if exclude_flaky else None,
        full_tests,
    )
    scripts: dict[str, str] = {}

    def verdict_key(instance: Instance, patch_sha: str) -> dict | None:
        from harness.verdict_cache import GRADING_VERSION

        try:
            image_id = found.image_id(found.name_for(instance))
        except Exception:  # noqa: BLE001 - the engine is away or no recipe: no key
            return None
        if image_id is None:  # not built yet: nothing to look up
            return None
        iid = instance.instance_id
        if iid not in scripts:
            script = verifier.script(instance, limits)
            scripts[iid] = hashlib.sha256(script.encode()).hexdigest()
        return {
            "instance": iid,
            "patch": patch_sha,
            "image_id": image_id,
            "limits": limits.to_dict(),
            "eval_script": scripts[iid],
            "swebench": swebench_adapter.SWEBENCH_VERSION,
            "grading": GRADING_VERSION,
            "excluded_flaky": verifier.excluded(instance),
            "stop_early": verifier.plan(instance) is not None,
        }

    return Pipeline(verifier, store, sandbox, found.name_for, verdict_key)


def signal_checks(
    run_id: str, limits: SandboxLimits, images: ImageOptions = ImageOptions(), backend="docker"
):
    """The regression and reproduction signals' runners on the named backend, sharing one
    sandbox and one image store (`harness signals`)."""
    from sandbox import backends
    from sandbox.regression import RegressionCheck
    from sandbox.reproduction import ReproductionCheck

    found = image_store(backend, images)
    sandbox = backends.get(backend).sandbox()
    return (
        RegressionCheck(sandbox, found.image_for, limits, run_id),
        ReproductionCheck(sandbox, found.image_for, limits, run_id),
    )


def read_at_base(instance: Instance, paths: list[str]) -> dict[str, str]:
    """The files of the repo at the instance's base commit (those that exist)."""
    mirror = repo_cache_for(instance).ensure_commit(instance.repo, instance.base_commit)
    out = {}
    for path in paths:
        try:
            out[path] = mirror.git.show(f"{instance.base_commit}:{path}")
        except Exception:  # noqa: BLE001 - absent at that commit (a file a patch creates)
            continue
    return out


def image_sources() -> ImageSources:
    """SWE-bench repos from SWEM_REPO_SOURCE; the mini benchmark's from its generated mirrors."""
    mini_repos = RepoCache(cache_dir() / "repos", RepoSource(str(mini_mirror_dir())))

    def checkout(instance: Instance, dest: Path) -> Path:
        return repo_cache_for(instance).checkout(instance.repo, instance.base_commit, dest)

    def read(instance: Instance, path: str) -> str | None:
        commit = instance.environment_setup_commit or instance.base_commit
        mirror = repo_cache_for(instance).ensure_commit(instance.repo, commit)
        try:
            return mirror.git.show(f"{commit}:{path}")
        except Exception:  # noqa: BLE001 - absent at that commit
            return None

    return ImageSources(
        checkout,
        read,
        frozenset(minibench.repos()),
        lambda instance, dest: mini_repos.checkout(instance.repo, instance.base_commit, dest),
        mini_image_name,
        cache_dir() / "build-logs",
    )


def image_store(backend: str = "docker", options: ImageOptions | None = None):
    """The named backend's images (for verification, the regression signal, `images build`,
    `ls`, `prune`)."""
    from sandbox import backends

    register_minibench_specs()
    return backends.get(backend).images(options or ImageOptions(), image_sources())


def flaky_path() -> Path:
    """Tests measured flaky by `validate --repeat`, per instance."""
    return cache_dir() / "flaky.json"


def known_flaky() -> dict[str, list[str]]:
    import json

    path = flaky_path()
    return json.loads(path.read_text()) if path.exists() else {}


def mini_image_name(instance: Instance) -> str:
    return f"swe-monkeys/mini.{instance.instance_id.lower()}:{instance.base_commit[:12]}"


def repo_cache_for(instance: Instance) -> RepoCache:
    """Mini-benchmark repos come from their generated mirrors; others from SWEM_REPO_SOURCE."""
    source = (
        RepoSource(str(mini_mirror_dir())) if instance.repo in minibench.repos() else RepoSource()
    )
    return RepoCache(cache_dir() / "repos", source)


@dataclass(frozen=True)
class ModelSpec:
    """What --model names, with the options that shape the server or the client."""

    spec: str = "embedded"
    concurrency: int = 16
    timeout_s: float = 600.0
    retries: int = 4
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None


@contextmanager
def model_backend(options: ModelSpec, say: Callable[[str], None] = lambda _: None) -> Iterator:
    """embedded (default; embedded:1.5b for the larger one): llama.cpp with a Qwen2.5-Coder
    instruct model assembled from PyPI (agents/model_store.py), started and stopped here.
    vllm:MODEL: `vllm serve MODEL`, started and stopped here. http(s)://HOST/v1[#MODEL]: any
    OpenAI-compatible endpoint already running (model from /models when not given)."""
    from agents.openai_model import ClientOptions, OpenAICompatModel
    from agents.servers import SlotWatch, VllmOptions, embedded_server, vllm_server

    spec = options.spec

    def client(base_url: str, model: str, merge_system: bool = False, max_n=None, tokenize=None):
        return OpenAICompatModel(
            ClientOptions(
                base_url=base_url,
                model=model,
                api_key=os.environ.get("OPENAI_API_KEY", "EMPTY"),
                concurrency=options.concurrency,
                timeout_s=options.timeout_s,
                retries=options.retries,
                merge_system=merge_system,
                max_n=max_n,
                tokenize_url=tokenize,
            )
        )

    if spec == "embedded" or spec.startswith("embedded:"):
        from agents.model_store import by_spec

        embedded = by_spec(spec)
        started = time.monotonic()
        with embedded_server(embedded, say=say) as server:
            say(f"model: llama-server ready in {time.monotonic() - started:.0f} s")
            model = client(
                server.base_url,
                server.model_name,
                max_n=embedded.slots,
                tokenize=server.base_url.removesuffix("/v1") + "/tokenize",
            )
            model.edit_format = embedded.edit_format
            model.watch = SlotWatch(server.base_url)  # what it is doing, for the live view
            yield model
    elif spec.startswith("vllm:"):
        vllm = VllmOptions(
            model=spec.removeprefix("vllm:"),
            tensor_parallel_size=options.tensor_parallel_size,
            gpu_memory_utilization=options.gpu_memory_utilization,
            max_model_len=options.max_model_len,
        )
        with vllm_server(vllm) as server:
            yield client(server.base_url, server.model_name)
    elif "," in spec:  # several servers of one model: requests balanced across them
        from agents.openai_model import BalancedModel

        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if not all(p.startswith(("http://", "https://")) for p in parts):
            raise UserError(f"--model {spec}: several servers must all be http(s) URLs")
        yield BalancedModel(
            [
                client(url.rstrip("/"), model or _served_model(url))
                for url, _, model in (p.partition("#") for p in parts)
            ]
        )
    elif spec.startswith(("http://", "https://")):
        url, _, model = spec.partition("#")
        yield client(url.rstrip("/"), model or _served_model(url))
    else:
        raise UserError(
            f"--model {spec}: use embedded, vllm:MODEL or the http(s) URL of an "
            "OpenAI-compatible endpoint (optionally #MODEL)"
        )


def _served_model(url: str) -> str:
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/models", timeout=30) as response:
            return json.load(response)["data"][0]["id"]
    except Exception as exc:  # noqa: BLE001 - any failure means the same to the user
        raise UserError(
            f"cannot list models at {url} ({exc}): is the server up? Name the model with URL#MODEL"
        ) from None


def env_builder(client, engine_cli: str = "docker"):
    """Offline builds of real SWE-bench environments on a Docker-API engine (None: recipes
    only, for `images plan`); repos come from SWEM_REPO_SOURCE. The same builder the image
    store uses."""
    from sandbox.engine import EngineImages

    return EngineImages(client, engine_cli, ImageOptions(), image_sources()).env_builder
