"""Building SWE-bench environments offline: a Debian base from debootstrap, one environment
image per (repo, version, python), one thin instance image per issue. Each is built by running
its script in a container (with the host's CA bundle and pip index settings mounted and passed,
never baked in) and committing the result; names carry a hash of the recipe, so a rebuild with
nothing changed finds every image and takes seconds."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from harness.errors import UserError
from harness.types import Instance
from sandbox import swebench_adapter
from sandbox.docker_sandbox import ENGINE_ERRORS, OWNER_LABEL, owner_label
from sandbox.env_recipe import (
    RESOLVE_AS_OF,
    EnvRecipe,
    UnsupportedSpec,
    env_recipe,
    instance_recipe,
)
from sandbox.images import ensure_base_image
from sandbox.output import CappedOutput

HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
CA_IN_CONTAINER = "/run/swe-monkeys-host-ca.crt"
PASSED_ENV = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
"""Host settings a build passes on, so it follows the site's package index and proxy."""
LABEL = "swe-monkeys.env"
TOOLCHAIN_SCRIPT = (
    "set -eux; export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; "
    "apt-get install -y -qq --no-install-recommends build-essential python3-dev; "
    "rm -rf /var/lib/apt/lists/*"
)


class BuildFailed(Exception):
    """One instance could not be built; the message is the one-line reason."""


@dataclass(frozen=True)
class Built:
    image: str
    notes: str
    seconds: float
    reused: bool


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text.lower())


class EnvBuilder:
    def __init__(
        self,
        client: docker.DockerClient,
        checkout: Callable[[Instance, Path], Path],
        read_at_setup_commit: Callable[[Instance, str], str | None],
        build_timeout_s: float = 3600.0,
        log_dir: Path | None = None,
        engine_cli: str = "docker",
    ) -> None:
        self.client = client
        self.engine_cli = engine_cli
        """The engine's command line (docker, podman): bases are imported through it."""
        self.checkout = checkout
        self.read = read_at_setup_commit
        self.timeout_s = build_timeout_s
        self.log_dir = log_dir
        """Every build's whole output is kept here, one file per image."""

    def recipes(self, instance: Instance):
        specs = swebench_adapter.env_specs(instance)
        requirements = ""
        if specs.get("packages") == "requirements.txt":
            requirements = swebench_adapter.requirements_text(
                instance.repo, lambda path: self.read(instance, path)
            )
        environment = ""
        if specs.get("packages") == "environment.yml":
            environment = swebench_adapter.environment_yml(
                instance.repo, lambda path: self.read(instance, path)
            )
        try:
            env = env_recipe(instance, specs, requirements, environment, resolve_as_of())
        except UnsupportedSpec as exc:
            raise BuildFailed(str(exc)) from None
        inst = instance_recipe(instance, specs, env, swebench_adapter.repo_install(instance.repo))
        return env, inst

    def names(self, instance: Instance) -> tuple[str, str]:
        env, inst = self.recipes(instance)
        return (
            f"swe-monkeys/env.{_slug(env.repo)}.{_slug(env.version)}:{env.key}",
            f"swe-monkeys/sweb.{_slug(instance.instance_id)}:{inst.key}",
        )

    def build(self, instance: Instance) -> Built:
        start = time.monotonic()
        env, inst = self.recipes(instance)
        env_name, inst_name = self.names(instance)
        notes = "; ".join(env.notes)
        if self._exists(inst_name):
            return Built(inst_name, notes, time.monotonic() - start, True)
        if not self._exists(env_name):
            try:
                base = ensure_base_image(self.client, env.suite, self.engine_cli)
            except UserError as exc:
                raise BuildFailed(str(exc)) from None
            toolchain = self._toolchain(base)
            self._run_and_commit(toolchain, env.script(), env_name, self._labels(env, notes), None)
        workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"swem-build-{os.getpid()}-{inst.key}"
        try:
            try:
                self.checkout(instance, workdir)
            except UserError as exc:
                raise BuildFailed(str(exc)) from None
            labels = {
                **self._labels(env, notes),
                "swe-monkeys.instance": instance.instance_id,
                "swe-monkeys.build-seconds": f"{time.monotonic() - start:.0f}",
            }
            self._run_and_commit(env_name, inst.script(), inst_name, labels, workdir)
        finally:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        return Built(inst_name, notes, time.monotonic() - start, False)

    def _toolchain(self, base: str) -> str:
        """The shared layer every environment is built on: the Debian base plus a C/C++
        toolchain and Python headers, for specs that compile extensions (astropy,
        scikit-learn, ...). Built once per base."""
        digest = hashlib.sha256(f"{base}\n{TOOLCHAIN_SCRIPT}".encode()).hexdigest()[:12]
        name = f"swe-monkeys/toolchain:{digest}"
        if not self._exists(name):
            labels = {LABEL: "1", "swe-monkeys.layer": "toolchain"}
            self._run_and_commit(base, TOOLCHAIN_SCRIPT, name, labels, None)
        return name

    def _keep_log(self, target: str, text: str) -> Path | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"{_slug(target)}.log"
        path.write_text(text, errors="replace")
        return path

    def _labels(self, env: EnvRecipe, notes: str) -> dict[str, str]:
        return {
            LABEL: "1",
            "swe-monkeys.python": env.python,
            "swe-monkeys.suite": env.suite,
            "swe-monkeys.fidelity": notes,
            "swe-monkeys.resolved-as-of": env.resolve_as_of or "today",
        }

    def _exists(self, name: str) -> bool:
        try:
            self.client.images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _run_and_commit(
        self, image: str, script: str, target: str, labels: dict, testbed: Path | None
    ) -> None:
        """One build step; an engine that goes away (a daemon restart) is waited for and the
        step run again from the start, twice at most. The image is tagged only by a commit
        that completed: a step cut short leaves nothing to reuse."""
        for attempt, wait_s in enumerate(ENGINE_RETRY_S):
            try:
                return self._run_and_commit_once(image, script, target, labels, testbed)
            except EngineGone as exc:
                if attempt == len(ENGINE_RETRY_S) - 1:
                    raise BuildFailed(
                        f"the container engine went away building {target} ({exc}); "
                        "rerun `harness images build` once it is back"
                    ) from None
                self._wait_for_engine(wait_s)
                self._remove(exc.container)  # its removal failed while the engine was away

    def _wait_for_engine(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.client.ping()
                return
            except ENGINE_ERRORS:
                time.sleep(1.0)

    def _run_and_commit_once(
        self, image: str, script: str, target: str, labels: dict, testbed: Path | None
    ) -> None:
        # A bind Mount (host config only): docker-py's `volumes=` would also declare a VOLUME
        # in the container's config, which `commit` then bakes into the image.
        mounts = (
            [docker.types.Mount(CA_IN_CONTAINER, HOST_CA, type="bind", read_only=True)]
            if Path(HOST_CA).exists()
            else []
        )
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        if mounts:
            env.update(
                PIP_CERT=CA_IN_CONTAINER,
                REQUESTS_CA_BUNDLE=CA_IN_CONTAINER,
                SSL_CERT_FILE=CA_IN_CONTAINER,
            )
        try:
            container = self.client.containers.create(
                image,
                command=["sleep", "infinity"],
                mounts=mounts,
                labels={"swe-monkeys": "1", OWNER_LABEL: owner_label()},
                working_dir="/",
            )
        except docker.errors.APIError:
            raise
        except ENGINE_ERRORS as exc:
            raise EngineGone(type(exc).__name__) from None
        try:
            container.start()
            if testbed is not None:
                container.put_archive("/", _tar(testbed, "testbed"))
            exec_id = self.client.api.exec_create(
                container.id, ["bash", "-c", script], environment=env
            )["Id"]
            out = CappedOutput(1 << 20)
            deadline = time.monotonic() + self.timeout_s
            for chunk in self.client.api.exec_start(exec_id, stream=True):
                out.write(chunk)
                if time.monotonic() > deadline:
                    raise BuildFailed(f"build of {target} ran past {self.timeout_s:g} s")
            code = self.client.api.exec_inspect(exec_id)["ExitCode"]
            log = self._keep_log(target, out.text())
            if code != 0:
                where = f" (log: {log})" if log else ""
                raise BuildFailed(
                    f"building {target} failed (exit {code}): {cause(out.text())}{where}"
                )
            changes = [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
            container.commit(*target.split(":"), changes=changes + ['CMD ["/bin/bash"]'])
        except docker.errors.APIError as exc:
            if not self._running(container):  # stopped from outside: the engine restarted
                raise EngineGone(str(exc.explanation or exc)[:120], container) from None
            raise BuildFailed(
                f"docker failed building {target}: {exc.explanation or exc}"
            ) from None
        except ENGINE_ERRORS as exc:  # the connection broke: a restart or a crash
            raise EngineGone(type(exc).__name__, container) from None
        finally:
            self._remove(container)

    @staticmethod
    def _remove(container) -> None:
        try:
            if container is not None:
                container.remove(force=True)
        except ENGINE_ERRORS:
            pass  # already being removed (`harness clean`), or gone with the engine

    def _running(self, container) -> bool:
        try:
            return bool(self.client.api.inspect_container(container.id)["State"]["Running"])
        except ENGINE_ERRORS:
            return False


class EngineGone(Exception):
    """The engine stopped answering during a build step (`container`: the step's, if made)."""

    def __init__(self, what: str, container=None) -> None:
        super().__init__(what)
        self.container = container


ENGINE_RETRY_S = (60.0, 120.0, 0.0)
"""How long to wait for the engine after each of the first two failures (the third is final)."""


def resolve_as_of() -> str:
    """The day builds resolve packages as of: SWEM_RESOLVE_AS_OF (a YYYY-MM-DD, or `today`
    for the live index), else the official environments' era."""
    day = os.environ.get("SWEM_RESOLVE_AS_OF", RESOLVE_AS_OF).strip()
    if day == "today":
        return ""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise UserError(f"SWEM_RESOLVE_AS_OF={day!r}: give a date as YYYY-MM-DD, or `today`")
    return day


def _tar(folder: Path, name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(folder, arcname=name)
    return buf.getvalue()


CAUSES = (
    (
        re.compile(
            r"unable to execute '[^']*gcc'|gcc: (not found|No such)"
            r"|error: command '[^']*(cc|c\+\+)' failed: No such file"
        ),
        "no C compiler in the base image",
    ),
    (
        re.compile(r"\.c:\d+:\d+: error: (.{0,80})"),
        "C code that does not compile with this Python ({0}); was the spec's Python substituted?",
    ),
    (re.compile(r"Python\.h: No such file"), "no Python headers in the base image"),
    (
        re.compile(r"No matching distribution found for ([^\s]+)"),
        "{0} is not on the package index for this Python",
    ),
    (
        re.compile(r"missing the 'build_editable' hook"),
        "the pinned setuptools cannot do an editable install (no PEP 660) and pip no longer "
        "falls back to setup.py develop",
    ),
    (re.compile(r"Failed to build ([^\s]+)"), "{0} failed to build from source"),
)


def cause(log: str) -> str:
    """The build's failure in one line, naming the cause where it is a known one."""
    for pattern, text in CAUSES:
        if match := pattern.search(log):
            return text.format(*match.groups()) + f" ({_last_error(log)})"
    return _last_error(log)


def _last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and not ln.startswith("+")]
    for ln in reversed(lines):
        if "error" in ln.lower():
            return ln[:200]
    return lines[-1][:200] if lines else "no output"
