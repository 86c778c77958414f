"""How to build a SWE-bench environment without conda or Docker Hub, as data: which Debian
suite, which pip installs, which install commands. Pure; swebench's per-(repo, version) specs
are the source of truth (through the adapter), rewritten only where conda has no equivalent."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.types import Instance
from sandbox import services
from sandbox.conda_env import CondaUntranslatable, translate
from sandbox.services import LocalService

SUITE_PYTHON = {"bullseye": "3.9", "bookworm": "3.11"}
"""Debian releases a mirror serves, with their Python; the environments are built on these."""
SEARCHED = (
    "; no other CPython is installable offline: Debian's mirror has only its releases' own, "
    "and PyPI and npm carry no CPython build that runs without a download at run time"
)
VENV = services.TESTBED
ERA_TOOLS = ("pip==24.0", "setuptools==69.5.1", "wheel==0.43.0")
"""pip, setuptools and wheel as the official SWE-bench environments had them (built in 2024)."""
RESOLVE_AS_OF = "2024-03-31"
"""Every pip of a build sees the package index as it was at the end of this day (UTC): when
SWE-bench Lite (published 2024-03-19) recorded its FAIL_TO_PASS and PASS_TO_PASS lists. Today's
index breaks them (docutils 0.22 dropped `docutils.utils.roman`, which sphinx 3.x imports), and
so does mid-2024's: docutils 0.21 (2024-04-09) writes man pages with .EX/.EE, failing
sphinx-8273's gold. Packages a recipe pins with == (tox 4.16.0 of 2024-07, say) are exempt."""
ERA_INDEX_PORT = 3141
ERA_INDEX_SOURCE = (Path(__file__).parent / "era_index.py").read_text()


def _version_key(v: str) -> tuple[int, int]:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


def choose_suite(wanted: str, suites: dict[str, str] = SUITE_PYTHON) -> tuple[str, str, str]:
    """(suite, python, note): the suite whose Python is the requested one, else the nearest
    (ties go to the older); the note records a substitution."""
    target = _version_key(wanted)
    suite = min(
        suites,
        key=lambda s: (
            abs(_version_key(suites[s])[1] - target[1])
            + 100 * abs(_version_key(suites[s])[0] - target[0]),
            _version_key(suites[s]),
        ),
    )
    got = suites[suite]
    note = "" if got == wanted else f"python {wanted} requested, {got} used ({suite}{SEARCHED})"
    return suite, got, note


class UnsupportedSpec(ValueError):
    """The spec needs something no pip-only environment can give (conda environment.yml)."""


@dataclass(frozen=True)
class EnvRecipe:
    """One environment image: per (repo, version), shared by that version's instances."""

    repo: str
    version: str
    suite: str
    python: str
    pip_installs: tuple[tuple[str, ...], ...]
    """Each a `pip install` argument list, run in order in the venv."""
    requirements: str = ""
    """A requirements file's text (from the repo at its environment setup commit)."""
    notes: tuple[str, ...] = ()
    resolve_as_of: str = RESOLVE_AS_OF
    service: LocalService | None = None
    """A local stand-in for a network service the tests call (sandbox/services.py)."""

    @property
    def key(self) -> str:
        """Of the recipe and the script made from it: a changed build step builds anew."""
        data = json.dumps(asdict(self), sort_keys=True) + self.script()
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    def script(self) -> str:
        lines = [
            "# on the shared toolchain layer (env_build.TOOLCHAIN_SCRIPT): gcc, Python headers",
            "set -euxo pipefail",
            *era_index_lines(self.resolve_as_of, self.pinned()),
            f"python3 -m venv {VENV}",
            # swebench's eval script sources this file; here it activates the venv
            f"echo '. {VENV}/bin/activate' > /opt/miniconda3/bin/activate",
            f". {VENV}/bin/activate",
            # `tox --current-env` runs the tests through a symlink to the venv's python in
            # .tox/, where no pyvenv.cfg is found, so Python starts as the bare system one.
            # A .pth in the system site adds the venv's site (with its own .pth files, the
            # editable installs): the bare interpreter then sees what the venv has, as a conda
            # env's interpreter would. The venv itself ignores the system site.
            "system_site=$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')",
            'mkdir -p "$system_site"',
            "venv_site=$(python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')",
            'echo "import site; site.addsitedir(\'$venv_site\')" > "$system_site/swem-testbed.pth"',
            # The packaging tools of the official images' era (their conda envs were made in
            # 2024): today's pip no longer falls back to `setup.py develop` for a pinned old
            # setuptools without PEP 660 (pylint 2.15), and Debian's own pip is older still.
            f"{PIP} python " + " ".join(ERA_TOOLS),
        ]
        if self.requirements:
            lines += [
                "cat > /tmp/requirements.txt <<'EOF_REQS'",
                self.requirements,
                "EOF_REQS",
                f"{PIP} python -r /tmp/requirements.txt",
            ]
        lines += [
            f"{PIP} python " + " ".join(_quote(a) for a in args) for args in self.pip_installs
        ]
        if self.service:
            lines += services.install_lines(self.service, PIP)
        return "\n".join(lines) + "\n"

    def pinned(self) -> set[str]:
        """`project==version` pins of the recipe (the era index serves those versions)."""
        texts = [*ERA_TOOLS, self.requirements, *(a for args in self.pip_installs for a in args)]
        texts += self.service.packages if self.service else ()
        return pinned_projects(texts)


@dataclass(frozen=True)
class InstanceRecipe:
    env: EnvRecipe
    instance_id: str
    base_commit: str
    commands: tuple[str, ...] = field(default=())
    """pre_install and install from the spec, run in /testbed with the venv active."""

    @property
    def key(self) -> str:
        data = [self.env.key, self.instance_id, self.base_commit, self.script()]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]

    def script(self) -> str:
        return (
            "\n".join(
                [
                    "set -euxo pipefail",
                    *era_index_lines(
                        self.env.resolve_as_of, self.env.pinned() | pinned_projects(self.commands)
                    ),
                    f". {VENV}/bin/activate",
                    "cd /testbed",
                    *self.commands,
                    BUILD_REQUIRES,
                    "git config --global user.email setup@swe-monkeys",
                    "git config --global user.name swe-monkeys",
                    # like swebench's repo script: installing must not show up in a diff
                    "git commit --allow-empty -qam swe-monkeys-setup",
                ]
            )
            + "\n"
        )


BUILD_REQUIRES = """python - <<'EOF_BUILD_REQUIRES'
# The eval script reinstalls the repo offline, without build isolation (sandbox/verifier.py):
# the build backend the repo names (flit_core, hatchling, ...) must then be in the venv.
import subprocess, sys
try:
    from pip._vendor import tomli
    with open("pyproject.toml", "rb") as f:
        requires = tomli.load(f).get("build-system", {}).get("requires", [])
except (ImportError, OSError, ValueError):
    requires = []
if requires:
    subprocess.check_call([sys.executable, "-m", "pip", "install", *requires])
EOF_BUILD_REQUIRES"""


_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*([0-9][^\s'\";,]*)")


def pinned_projects(texts) -> set[str]:
    """`project==version` for every exact pin in the texts (normalised names)."""
    return {
        f"{re.sub(r'[-_.]+', '-', m.group(1)).lower()}=={m.group(2)}"
        for text in texts
        for m in _PIN.finditer(text)
    }


PIP = "swem_pip"
"""The build scripts' `pip install`: `swem_pip PYTHON ARGS...` (defined by the prologue)."""


def era_index_lines(day: str, exempt: set[str]) -> list[str]:
    """Shell lines that start the era index (sandbox/era_index.py) on the build container's
    loopback and define `swem_pip`, which installs through it: as of `day`, or as of the
    newest exact pin's release on that line. The site's own index (PIP_INDEX_URL) is the
    upstream. No day: `swem_pip` is plain pip on the live index."""
    if not day:
        return [f'{PIP}() {{ local py=$1; shift; "$py" -m pip install "$@"; }}']
    port = ERA_INDEX_PORT
    return [
        "cat > /tmp/swem-era-index.py <<'EOF_ERA_INDEX'",
        ERA_INDEX_SOURCE.rstrip("\n"),
        "EOF_ERA_INDEX",
        'swem_upstream="${PIP_INDEX_URL:-https://pypi.org/simple/}"',
        f'/usr/bin/python3 /tmp/swem-era-index.py serve {day} {port} "$swem_upstream" '
        + " ".join(shlex.quote(pin) for pin in sorted(exempt))
        + " &",
        "era_index=$!",
        "trap 'kill \"$era_index\"; rm -f /tmp/swem-era-index.py' EXIT",
        f"export PIP_INDEX_URL=http://127.0.0.1:{port}/simple/",
        f"for _ in $(seq 50); do /usr/bin/python3 -c 'import urllib.request as u; "
        f'u.urlopen("http://127.0.0.1:{port}/simple/pip/")\' 2>/dev/null && break; sleep 0.2; done',
        f"{PIP}() {{",
        "  local py=$1; shift",
        "  local day",
        f'  day=$(/usr/bin/python3 /tmp/swem-era-index.py newest {day} "$swem_upstream" "$@")',
        f'  PIP_INDEX_URL="http://127.0.0.1:{port}/asof/$day/simple/" "$py" -m pip install "$@"',
        "}",
    ]


def _quote(arg: str) -> str:
    """Version specifiers like `pytest<8` must not become shell redirections."""
    return shlex.quote(arg)


def env_recipe(
    instance: Instance,
    specs: dict,
    requirements: str = "",
    environment: str = "",
    resolve_as_of: str = RESOLVE_AS_OF,
) -> EnvRecipe:
    """From a swebench spec: conda package lists become pip installs (the conda names of
    these repos are PyPI names too), a requirements file is installed as is, and a conda
    environment.yml is translated to pip requirements (refused, naming the package, where
    one has no PyPI equivalent)."""
    suite, python, note = choose_suite(str(specs.get("python", "3.9")))
    notes = [note] if note else []
    installs: list[tuple[str, ...]] = []
    packages = specs.get("packages", "")
    if packages == "environment.yml":
        if not environment:
            raise UnsupportedSpec(
                f"{instance.repo} {instance.version}: its conda environment.yml was not found"
            )
        try:
            translated = translate(environment)
        except CondaUntranslatable as exc:
            raise UnsupportedSpec(f"{instance.repo} {instance.version}: {exc}") from None
        requirements, packages = translated.requirements, "requirements.txt"
        notes += translated.notes
    if packages == "requirements.txt":
        if not requirements:
            raise UnsupportedSpec(
                f"{instance.repo} {instance.version}: requirements file not found"
            )
    elif packages:
        installs.append(tuple(p.strip("'\"") for p in packages.split()))
        notes.append("conda packages installed with pip")
    if specs.get("pip_packages"):
        installs.append(tuple(specs["pip_packages"]))
    if service := services.for_repo(instance.repo):
        notes.append(service.note)
    return EnvRecipe(
        instance.repo,
        instance.version,
        suite,
        python,
        tuple(installs),
        requirements if packages == "requirements.txt" else "",
        tuple(notes),
        resolve_as_of=resolve_as_of,
        service=service,
    )


def instance_recipe(
    instance: Instance, specs: dict, env: EnvRecipe, repo_install: str | None = None
) -> InstanceRecipe:
    commands = [*specs.get("pre_install", []), *([repo_install] if repo_install else [])]
    if specs.get("install"):
        commands.append(specs["install"])
    return InstanceRecipe(env, instance.instance_id, instance.base_commit, tuple(commands))
