"""Patch normalisation (unidiff), SEARCH/REPLACE edits and lexical localisation, on real files
and real git."""

from __future__ import annotations

import subprocess

import pytest

from agents.edits import Edit, EditError, Files, apply_edit, parse_edits
from agents.localize import rank_files
from agents.patches import PatchRejected, check_applies, is_test_path, normalise
from harness import wiring

TWO_FILES = """diff --git a/pkg/b.py b/pkg/b.py
index 1111111..2222222 100644
--- a/pkg/b.py
+++ b/pkg/b.py
@@ -1,2 +1,2 @@
 x = 1
-y = 2
+y = 3
diff --git a/pkg/a.py b/pkg/a.py
index 3333333..4444444 100644
--- a/pkg/a.py
+++ b/pkg/a.py
@@ -1,2 +1,2 @@
 a = 1
-b = 2
+b = 20
"""


def test_equivalent_patches_normalise_to_the_same_hash():
    reordered = TWO_FILES.split("diff --git a/pkg/a.py")
    swapped = "diff --git a/pkg/a.py" + reordered[1] + reordered[0]
    crlf_no_index = "\r\n".join(ln for ln in TWO_FILES.split("\n") if not ln.startswith("index "))
    whitespace_hunk = TWO_FILES + (
        "diff --git a/pkg/c.py b/pkg/c.py\n--- a/pkg/c.py\n+++ b/pkg/c.py\n@@ -1 +1 @@\n"
        "-z = 1  \n+z = 1\n"
    )
    shas = {normalise(p).sha for p in (TWO_FILES, swapped, crlf_no_index, whitespace_hunk)}
    assert len(shas) == 1
    assert normalise(TWO_FILES).files == ("pkg/a.py", "pkg/b.py")
    text = normalise(TWO_FILES).text
    assert "index " not in text
    assert text.startswith("diff --git a/pkg/a.py b/pkg/a.py\n--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ ")


def test_test_edits_are_dropped_unless_kept():
    with_test = TWO_FILES + (
        "diff --git a/tests/test_a.py b/tests/test_a.py\n--- a/tests/test_a.py\n"
        "+++ b/tests/test_a.py\n@@ -1 +1 @@\n-assert a\n+assert True\n"
    )
    assert normalise(with_test).sha == normalise(TWO_FILES).sha
    assert "tests/test_a.py" in normalise(with_test, drop_tests=False).files
    only_test = with_test[with_test.index("diff --git a/tests") :]
    with pytest.raises(PatchRejected, match="only test files"):
        normalise(only_test)


@pytest.mark.parametrize(
    "path,expected",
    [
        ("tests/test_x.py", True),
        ("pkg/test_x.py", True),
        ("conftest.py", True),
        ("pkg/x_test.py", True),
        ("pkg/testing/x.py", True),
        ("pkg/contest.py", False),
        ("pkg/latest.py", False),
    ],
)
def test_test_path_detection(path, expected):
    assert is_test_path(path) is expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty patch"),
        ("just prose\n", "no file headers"),
        ("--- a/x\n+++ b/x\n@@ -1,5 +1,5 @@\n garbage\n", "not a unified diff"),
    ],
)
def test_unusable_patches_are_rejected_with_a_reason(text, message):
    with pytest.raises(PatchRejected, match=message):
        normalise(text)


@pytest.fixture
def calc_worktree(tmp_path, mini_instances):
    instance = mini_instances["swe-monkeys__minicalc-1"]
    return wiring.repo_cache_for(instance).checkout(
        instance.repo, instance.base_commit, tmp_path / "w"
    ), instance


def test_gold_patch_applies_and_a_stale_one_does_not(calc_worktree):
    work, instance = calc_worktree
    check_applies(work, normalise(instance.gold_patch).text)
    stale = instance.gold_patch.replace(
        "        return left / right", "        return right / left"
    )
    with pytest.raises(PatchRejected, match="does not apply to the base commit"):
        check_applies(work, stale)


def test_parse_edits_reads_paths_blocks_and_fences():
    text = (
        "Here you go.\n\n```python\n### minicalc/parser.py\n<<<<<<< SEARCH\nold\n=======\nnew\n"
        ">>>>>>> REPLACE\n```\n`minicalc/evaluator.py`\n<<<<<<< SEARCH\n=======\nx = 1\n"
        ">>>>>>> REPLACE\n"
    )
    assert parse_edits(text) == [
        Edit("minicalc/parser.py", "old\n", "new\n"),
        Edit("minicalc/evaluator.py", "", "x = 1\n"),
    ]
    assert parse_edits("no edits here") == []
    with pytest.raises(EditError, match="truncated"):
        parse_edits("### a.py\n<<<<<<< SEARCH\nold\n=======\nnew")
    with pytest.raises(EditError, match="names no file"):
        parse_edits("<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE")


def test_apply_edit_tolerates_trailing_space_and_refuses_escapes(calc_worktree):
    work, _ = calc_worktree
    files = Files(work)
    sloppy = Edit(
        "minicalc/evaluator.py",
        "def evaluate(source):   \n    return evaluate_tree(parse(source))",
        "def evaluate(source):\n    return float(evaluate_tree(parse(source)))\n",
    )
    assert apply_edit(files, sloppy) == "minicalc/evaluator.py"
    assert "return float(evaluate_tree" in files.read("minicalc/evaluator.py")
    with pytest.raises(EditError, match="leaves the repository"):
        apply_edit(files, Edit("../outside.py", "", "x"))
    (work / "minicalc/escape").symlink_to("/etc")
    with pytest.raises(EditError, match="leaves the repository"):
        apply_edit(files, Edit("minicalc/escape/passwd", "root", "x"))
    with pytest.raises(EditError, match="does not exist"):
        apply_edit(files, Edit("minicalc/nope.py", "something", "x"))
    assert apply_edit(files, Edit("minicalc/new.py", "", "y = 1\n")) == "minicalc/new.py"
    assert [path for path, _, _ in files.changes()] == ["minicalc/evaluator.py", "minicalc/new.py"]
    # the checkout itself is never written: edits live in memory until they are a diff
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=work, check=True, capture_output=True, text=True
    ).stdout
    assert status.strip() == "?? minicalc/escape"


@pytest.mark.parametrize(
    "task,expected",
    [
        ("swe-monkeys__minicalc-1", "minicalc/evaluator.py"),
        ("swe-monkeys__minicalc-2", "minicalc/parser.py"),
        ("swe-monkeys__textkit-1", "textkit/slug.py"),
        ("swe-monkeys__textkit-2", "textkit/wrap.py"),
        ("swe-monkeys__inventory-1", "inventory/store.py"),
        ("swe-monkeys__inventory-2", "inventory/report.py"),
    ],
)
def test_lexical_ranking_finds_the_file_to_fix(task, expected, mini_instances, tmp_path):
    instance = mini_instances[task]
    work = wiring.repo_cache_for(instance).checkout(
        instance.repo, instance.base_commit, tmp_path / "w"
    )
    top = [path for path, _ in rank_files(work, instance.problem_statement, limit=3)]
    assert expected in top
    assert not any(p.startswith("tests/") for p in top)
