"""A static screen of every candidate before it runs: edits that change how the tests run
rather than the code under test (edits to test files themselves cannot matter: the verifier
puts those files back before the tests). Each finding names its rule; a flagged candidate is still
verified, but counts as a failure in coverage and selection unless the user includes them.

The screen reads only the patch. It cannot see code that behaves differently under test
without naming any of this, which no test-based grader can (docs/verification.md, "Threat
model, per channel").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from sandbox.git_binary import binary_files
from sandbox.patch_paths import components, is_git_dir, unquote

TEST_FILE = re.compile(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_tests?\.py$")
"""Test files by name, for an instance without a test patch to tell where its suite is."""
TEST_MODULE = re.compile(r"(^|/)test_[^/]*\.py$|_tests?\.py$|(^|/)tests\.py$")
RUNNER_CONFIG_FILES = {
    "conftest.py",
    "pytest.ini",
    ".pytest.ini",
    "pytest.toml",
    ".pytest.toml",
    "tox.ini",
    "noxfile.py",
}
"""pytest reads its configuration from pytest.ini, .pytest.ini (pytest 6.1 on), pytest.toml and
.pytest.toml (pytest 9), tox.ini, setup.cfg and pyproject.toml (PACKAGING_FILES, flagged when a
test setting changes), and conftest.py files. These (not the packaging files, which an install
needs) are put back to the base commit before the tests run, like unreset test files, so an
edit of them changes no outcome and is not flagged."""
STARTUP_FILES = {"sitecustomize.py", "usercustomize.py"}
PACKAGING_FILES = {"setup.cfg", "pyproject.toml", "setup.py"}
TEST_SETTINGS = re.compile(
    r"pytest|addopts|testpaths|python_files|python_functions|\[tool:|\[tox|pytest11|norecursedirs"
)
RUNNER_REACH = re.compile(
    r"\b_pytest\b|sys\.modules\s*\[\s*['\"](py)?test|\bpytest_\w+\s*\(|\bpytest\.(main|hookimpl)"
    r"|\bpluggy\b|\bunittest\.(TestResult|TextTestResult|TextTestRunner)\b"
)
PROCESS_REACH = re.compile(
    r"\bos\._exit\b|\bos\.fork\b|\batexit\b|/proc/|\bsignal\.(signal|setitimer|alarm)\b|\bsys\.(settrace"
    r"|setprofile|excepthook)\b|\bgc\.get_(objects|referrers)\b|\bctypes\b|\bbuiltins\.\w+\s*="
    r"|__builtins__\s*\[|\bfaulthandler\b"
)
RULES = (
    "test-infra",
    "startup-hook",
    "git-dir",
    "outside-repo",
    "runner-reach",
    "process-reach",
)
"""Every rule the screen has, in the order reports list them."""

# The repository under test may legitimately be the test runner itself.
RUNNER_REPOS = {"pytest-dev/pytest", "pytest-dev/pluggy"}


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.path}: {self.detail}"


def paths(patch: str) -> set[str]:
    """The files a patch touches (empty when it does not parse)."""
    try:
        files = PatchSet(patch)
    except (UnidiffParseError, UnicodeError):
        return set()
    return {_strip(p) for pf in files for p in (pf.source_file, pf.target_file)} - {"/dev/null"}


def screen(patch: str, repo: str = "", test_patch: str = "") -> list[Finding]:
    """Every rule the patch triggers, one finding per (rule, file). `test_patch` is the
    instance's: its files are reset by the eval script before the tests (so editing them is
    harmless), and its directories are the test suite (so editing anything else there is not)."""
    if not patch.strip():
        return []
    try:
        files = PatchSet(patch)
    except (UnidiffParseError, UnicodeError):
        return []  # an unparseable patch fails to apply; nothing here to screen
    reset = paths(test_patch) if test_patch else set()
    suite = {p.rpartition("/")[0] + "/" for p in reset}
    found: dict[tuple[str, str], Finding] = {}
    binary: dict[str, list[str]] = {}
    for written in binary_files(patch):  # what a binary hunk writes, read as text lines
        binary.setdefault(written.path, []).extend(
            written.written.decode("utf-8", "replace").splitlines()
        )
    for pf in files:
        added = [line.value for hunk in pf for line in hunk if line.is_added]
        removed = [line.value for hunk in pf for line in hunk if line.is_removed]
        added += binary.get(_strip(pf.target_file), [])
        for path in {_strip(pf.source_file), _strip(pf.target_file)} - {"/dev/null"}:
            for rule, detail in _path_rules(path, added, removed, repo, reset, suite):
                found.setdefault((rule, path), Finding(rule, path, detail))
    return sorted(found.values(), key=lambda f: (RULES.index(f.rule), f.path))


def unreset_test_files(patch: str, test_patch: str = "") -> list[str]:
    """The test-suite files and test-runner configuration files (conftest.py, pytest.ini,
    tox.ini, ...) the patch touches that the eval script does not reset (it resets the test
    patch's files): our verdict puts them back to the base commit, or removes them when the
    patch adds them, so that no edit of how the tests are written or run changes an outcome."""
    reset = paths(test_patch) if test_patch else set()
    suite = {p.rpartition("/")[0] + "/" for p in reset}
    return sorted(
        p
        for p in paths(patch)
        if p not in reset and (_in_test_suite(p, reset, suite) or _runner_config(p))
    )


def _runner_config(path: str) -> bool:
    parts = components(path)
    return bool(parts) and parts[-1] in RUNNER_CONFIG_FILES and not _unsafe(parts, path)


def _unsafe(parts: list[str], path: str) -> bool:
    """Paths the apply step refuses anyway: nothing to put back."""
    return path.startswith("/") or ".." in parts or any(is_git_dir(p) for p in parts)


def _in_test_suite(path: str, reset: set[str], suite: set[str]) -> bool:
    if reset:
        return path not in reset and (
            any(path.startswith(d) for d in suite) or TEST_MODULE.search(path) is not None
        )
    return TEST_FILE.search(path) is not None


def _strip(path: str) -> str:
    """The path as git writes it: quoted names decoded, the a/ or b/ prefix gone."""
    path = unquote(path)[0] if path.startswith('"') else path
    return path[2:] if path[:2] in ("a/", "b/") else path


def _path_rules(path: str, added, removed, repo: str, reset: set[str], suite: set[str]):
    parts = components(path)
    name = parts[-1] if parts else path
    if any(is_git_dir(part) for part in parts):
        yield "git-dir", "edits inside .git"
    if path.startswith("/") or ".." in parts:
        yield "outside-repo", "a path outside the repository"
    if name in STARTUP_FILES or name.endswith(".pth"):
        yield "startup-hook", f"{name} runs at interpreter start-up"
    if name in PACKAGING_FILES and any(TEST_SETTINGS.search(line) for line in added + removed):
        yield "test-infra", f"changes test settings in {name}"
    if path in reset:
        return  # the eval script puts this file back before the tests run
    if _runner_config(path):
        return  # the verifier puts it back before the tests run (unreset_test_files)
    if _in_test_suite(path, reset, suite):
        # The verifier puts it back before the tests too (unreset_test_files): no edit of it
        # can change an outcome. Test code may use pytest's API; the rules below are for the
        # code under test.
        return
    if repo not in RUNNER_REPOS:
        if hit := next((m for line in added if (m := RUNNER_REACH.search(line))), None):
            yield "runner-reach", f"reaches into the test runner ({hit.group(0).strip()})"
    if hit := next((m for line in added if (m := PROCESS_REACH.search(line))), None):
        yield "process-reach", f"reaches into the process ({hit.group(0).strip()})"
