"""What the eval script's setup (the spec's install steps, which run the candidate's setup.py,
and git commands, which run hooks) may not change: whatever runs in the test process or its
shell before the guard plugin loads. The container engine's own record of the container's
file changes is read from outside the container, so nothing inside can hide an entry.

Legitimate setups change the repo, caches, and the editable install's own files (a .pth named
`__editable__...`, easy-install.pth, `.egg-link`, `.dist-info`/`.egg-info`, setuptools'
finder module; other build backends name their .pth after the package, with path lines
only). Anything else that Python or the test command runs at start-up is a trace: a .pth
with a line that runs code (`import ...`), sitecustomize/usercustomize anywhere, pytest's or
pluggy's own files, the interpreter and the test launcher's scripts, shared libraries and the
loader's preload list, the services script, git hooks and the repo's git config.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sandbox.integrity import RUNNER_REPOS  # pytest's own repos reinstall its launcher

IGNORED = ("/tmp/", "/var/tmp/", "/root/.cache/", "/proc/", "/dev/", "/run/", "/sys/")
"""Scratch places: nothing runs from them unless something above points there."""
EDITABLE = re.compile(
    r"/(site|dist)-packages/(__editable__[^/]*|easy-install\.pth|[^/]+\.egg-link"
    r"|[^/]+\.(dist|egg)-info(/.*)?|__pycache__/__editable__[^/]*)$"
)
PTH = re.compile(r"\.pth$")
CUSTOMIZE = re.compile(r"(^|/)(sitecustomize|usercustomize)\.py$")
RUNNER = re.compile(r"/(site|dist)-packages/(_pytest|pytest|pluggy|py)(/|\.py$)")
LAUNCHERS = re.compile(r"/bin/(python[\d.]*|pytest|py\.test|tox|bash|sh|env|cat)$")
LOADED = re.compile(r"\.so(\.[\d.]+)?$|^/etc/ld\.so\.(preload|conf)|/lib/python\d\.\d+/[^/]+\.py$")
OURS = re.compile(r"^/opt/swem(-guard)?(/|$)")
GIT = re.compile(r"^/testbed/\.git/(hooks/[^/]+|config)$")


def trace(
    changes: list[tuple[str, str]], repo: str = "", read: Callable[[str], bytes] | None = None
) -> str | None:
    """The first change ("A" added, "C" changed; deletions leave nothing to run) to something
    that runs before the guard, as "C /path"; None when there is none. `read(path)` gives a
    file's content (a .pth is harmless when it only lists paths); without it every .pth
    counts."""
    for kind, path in changes:
        if kind in ("A", "C") and _runs_before_guard(path, repo, read):
            return f"{kind} {path}"
    return None


def runs_code(pth: bytes) -> bool:
    """A .pth line that site.py executes (it starts with `import`) rather than adds to
    sys.path."""
    return any(line.startswith((b"import ", b"import\t")) for line in pth.splitlines())


def _runs_before_guard(path: str, repo: str, read) -> bool:
    if GIT.search(path) or OURS.search(path) or CUSTOMIZE.search(path):
        return True
    if path.startswith("/testbed/") or path.startswith(IGNORED) or EDITABLE.search(path):
        return False
    if PTH.search(path):
        try:
            return read is None or runs_code(read(path))
        except (FileNotFoundError, OSError):
            return True  # listed as changed, yet unreadable: not known to be harmless
    if LOADED.search(path):
        return True
    if repo in RUNNER_REPOS:
        return False
    return bool(RUNNER.search(path) or LAUNCHERS.search(path))
