"""Where verification runs. Both executors are a `verify(instance, patch) -> Verdict` callable
that the Evaluation calls from its pool of threads:

- local (the default): the verifier itself, containers on this machine;
- ray: each call is a Ray task that needs the custom resource named after the sandbox backend
  (`docker`, `podman`: give it to the nodes that have that engine), so it is scheduled where
  containers can run. A task whose
  worker or node dies is retried by Ray (`max_retries`), so a loss costs only the tasks in
  flight. The verdict and its logs come back to the driver, into its one run directory.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.config import ImageOptions, SandboxLimits
from harness.errors import UserError
from harness.store import RunStore
from harness.types import Instance, Verdict

ARTIFACTS = ("patch.diff", "eval.sh", "apply.log", "test_output.txt")


@dataclass(frozen=True)
class VerifierSpec:
    """What a remote node needs to build the same verifier as the driver."""

    run_id: str
    limits: dict
    image_namespace: str = "swebench"
    image_tag: str = "latest"
    pull: bool = True
    image_source: str = "auto"
    cache_dir: str | None = None
    repo_source: str | None = None
    backend: str = "docker"
    """The sandbox backend, and the Ray resource of the nodes that run it."""
    full_tests: bool = False


def remote_verify(spec: dict, row: dict, patch: str) -> dict:
    """Runs on a Ray worker: verify, and return the verdict with its log files."""
    from harness import wiring

    if spec.get("cache_dir"):
        os.environ["SWEM_CACHE"] = spec["cache_dir"]
    if spec.get("repo_source"):
        os.environ["SWEM_REPO_SOURCE"] = spec["repo_source"]
    with tempfile.TemporaryDirectory(prefix="swem-ray-") as tmp:
        images = ImageOptions(
            namespace=spec["image_namespace"],
            tag=spec["image_tag"],
            pull=spec["pull"],
            source=spec["image_source"],
        )
        pipe = wiring.build_pipeline(
            spec["run_id"],
            Path(tmp),
            SandboxLimits(**spec["limits"]),
            images,
            backend=spec.get("backend", "docker"),
            full_tests=spec.get("full_tests", False),
        )
        verdict = pipe.verifier.verify(Instance.from_row(row), patch)
        verdict.versions["worker"] = f"{socket.gethostname()}:{os.getpid()}"  # provenance
        folder = pipe.store.run_dir / verdict.artifacts if verdict.artifacts else None
        files = {
            name: (folder / name).read_text(errors="replace")
            for name in ARTIFACTS
            if folder and (folder / name).exists()
        }
    return {"verdict": verdict.to_dict(), "files": files}


class RayVerify:
    """The verify callable that sends each verification to the cluster."""

    def __init__(
        self,
        address: str,
        spec: VerifierSpec,
        store: RunStore,
        max_retries: int = 5,
        resource: str | None = None,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install -e '.[ray]'") from None
        try:
            ray.init(
                address=address,
                ignore_reinit_error=True,
                log_to_driver=False,
                logging_level="ERROR",
                **_driver_address(address),
            )
        except Exception as exc:  # noqa: BLE001 - any failure to connect reads the same
            raise UserError(
                f"cannot connect to the Ray cluster at {address} ({exc}): start it "
                "with `ray start --head` or fix --ray-address"
            ) from None
        resource = resource or spec.backend
        if not ray.cluster_resources().get(resource):
            raise UserError(
                f"no node of the Ray cluster at {address} offers the resource "
                f"'{resource}': start {resource} nodes with "
                f"`ray start ... --resources '{{\"{resource}\": N}}'`"
            )
        self.ray = ray
        self.spec = asdict(spec)
        self.store = store
        self.task = ray.remote(resources={resource: 1}, max_retries=max_retries, num_cpus=0)(
            remote_verify
        )

    def __call__(self, instance: Instance, patch: str) -> Verdict:
        result = self.ray.get(self.task.remote(self.spec, instance.to_row(), patch))
        verdict = Verdict.from_dict(result["verdict"])
        key = (
            verdict.patch_sha
            if verdict.network == "none"
            else f"{verdict.patch_sha[:16]}-{verdict.network}"
        )
        folder = self.store.artifact_dir(instance.instance_id, key)
        for name, text in result["files"].items():
            (folder / name).write_text(text)
        verdict.artifacts = self.store.relative(folder)
        if "test_output.txt" in result["files"]:
            verdict.log_path = self.store.relative(folder / "test_output.txt")
        return verdict


def _driver_address(address: str) -> dict:
    """A cluster on loopback keeps the driver on loopback too (Ray would otherwise announce
    the machine's own interface address)."""
    loopback = address.startswith(("127.", "localhost"))
    return {"_node_ip_address": "127.0.0.1"} if loopback else {}
