"""The mini benchmark's own promises, checked with real git (no Docker)."""

import json
import re
import subprocess

import pytest

from harness import minibench


def changed_files(diff: str) -> set[str]:
    return set(re.findall(r"^diff --git a/(\S+)", diff, re.M))


def hunks(diff: str) -> int:
    return len(re.findall(r"^@@ ", diff, re.M))


@pytest.fixture(scope="module")
def mirror_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mirrors")


@pytest.fixture(scope="module")
def rows(mirror_dir):
    return minibench.rows(mirror_dir)


def test_repos_are_built_deterministically(tmp_path):
    first = minibench.build_mirrors(tmp_path / "a")
    second = minibench.build_mirrors(tmp_path / "b")
    assert first == second
    assert set(first) == {"swe-monkeys/inventory", "swe-monkeys/minicalc", "swe-monkeys/textkit"}


def test_shape_of_the_benchmark(rows):
    assert len(rows) >= 20  # a coverage curve needs resolution
    assert all(r["problem_statement"].strip() and r["FAIL_TO_PASS"] != "[]" for r in rows)
    golds = [r["patch"] for r in rows]
    assert any(len(changed_files(g)) > 1 for g in golds), "a multi-file fix"
    assert any(len(changed_files(g)) == 1 and hunks(g) > 1 for g in golds), "a multi-hunk fix"
    assert all(not any(f.startswith("tests/") for f in changed_files(g)) for g in golds)


def test_difficulty_is_graded(rows):
    """One-line fixes up to multi-file changes, so a small model's curve has room to rise."""
    sizes = [
        sum(1 for ln in r["patch"].splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---"))
        for r in rows
    ]
    assert sum(s <= 2 for s in sizes) >= 5, "one-liners"
    assert sum(len(changed_files(r["patch"])) >= 3 for r in rows) >= 1, "a three-file change"
    assert max(sizes) >= 10


def test_distractor_file_is_present_and_untouched(rows):
    textkit = next(r for r in rows if r["instance_id"] == "swe-monkeys__textkit-1")
    assert "textkit/legacy.py" not in changed_files(textkit["patch"])
    assert (minibench.DATA / "repos/textkit/textkit/legacy.py").read_text().count("lstrip") == 1


@pytest.mark.parametrize("index", range(20))
def test_patches_apply_to_the_base_commit(rows, mirror_dir, tmp_path, index):
    row = rows[index]
    mirror = mirror_dir / (row["repo"].replace("/", "__") + ".git")
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(mirror), str(work)], check=True)
    subprocess.run(["git", "checkout", "-q", row["base_commit"]], cwd=work, check=True)
    for key in ("patch", "test_patch"):
        (tmp_path / f"{key}.diff").write_text(row[key])
        done = subprocess.run(
            ["git", "apply", "--check", str(tmp_path / f"{key}.diff")],
            cwd=work,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    tested = changed_files(row["test_patch"])
    for test in json.loads(row["FAIL_TO_PASS"]) + json.loads(row["PASS_TO_PASS"]):
        assert test.split("::")[0] in tested, f"{test} is not in a file the test patch touches"
