"""The docs stay true to the code: every command line they quote parses, their code blocks lint,
and they hold no one machine's paths."""

from __future__ import annotations

import importlib.util
import re

import pytest
import typer.main

from harness.cli import app
from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("check_docs", ROOT / "scripts" / "check_docs.py")
check_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_docs)

GROUP = typer.main.get_command(app)
MAKEFILE = (ROOT / "Makefile").read_text()
DOCS = check_docs.doc_files()


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_line_in_the_docs_parses(path):
    assert check_docs.command_problems(path.read_text(), GROUP, MAKEFILE) == []


def test_the_docs_quote_many_harness_commands():
    """The check has something to check: each main command is quoted somewhere."""
    quoted = {
        words[1]
        for path in DOCS
        for line in check_docs.command_lines(path.read_text())
        if len(words := check_docs.words(line)) > 1 and check_docs.HARNESS.match(words[0])
    }
    assert {"run", "eval", "report", "status", "ls", "verify", "validate", "images"} <= quoted


def test_a_renamed_option_in_a_doc_is_caught():
    readme = (ROOT / "README.md").read_text()
    assert "--samples" in readme or "-k " in readme
    renamed = readme.replace("--run-id", "--run-name")
    problems = check_docs.command_problems(renamed, GROUP, MAKEFILE)
    assert problems and all("no option --run-name" in p for p in problems)
    made_up = "```bash\nharness eval -d lite --bogus\nmake eval-lite NOPE=1\nharness frob\n```\n"
    assert check_docs.command_problems(made_up, GROUP, MAKEFILE) == [
        "`harness eval -d lite --bogus`: eval has no option --bogus",
        "`make eval-lite NOPE=1`: the Makefile has no variable NOPE",
        "`harness frob`: no command 'frob'",
    ]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_docs_code_blocks_lint(path):
    assert check_docs.lint_problems(path.read_text()) == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_docs_links_reach_their_files(path):
    assert check_docs.link_problems(path.read_text(), path.parent) == []


def test_a_link_to_a_missing_page_is_caught(tmp_path):
    (tmp_path / "here.md").write_text("x")
    text = "[a](here.md) [b](gone.md#top) [c](https://example.org/x) ![d](pic.png)"
    assert check_docs.link_problems(text, tmp_path) == [
        "a link to gone.md, which does not exist",
        "a link to pic.png, which does not exist",
    ]


def test_a_broken_block_fails_the_lint():
    problems = check_docs.lint_problems("```python\nimport os\n```\n```bash\nif then\n```\n")
    assert len(problems) == 2  # an unused import; a syntax error


MACHINE_PATHS = re.compile(r"/work/|/root/|\.mirror/|/home/\w+/")


@pytest.mark.parametrize("path", [*DOCS, ROOT / "NOTES.md"], ids=lambda p: p.name)
def test_the_docs_and_notes_name_no_machines_folders(path):
    found = sorted(set(MACHINE_PATHS.findall(path.read_text())))
    assert found == [], f"{path.name} names {found}: use a placeholder such as <snapshots>"


def test_the_readme_is_a_users_guide_not_a_manual():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 260


def test_help_lists_the_commands_in_the_order_a_user_meets_them():
    from harness.cli.app import HELP_ORDER

    listed = GROUP.list_commands(None)
    assert listed[:4] == ["run", "eval", "report", "status"]
    assert set(listed) == set(HELP_ORDER)  # a new command gets its place in the order
