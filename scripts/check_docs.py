"""Check the command lines the docs quote against the code, and lint the docs' code blocks.

Every `harness ...` line in a fenced block or an inline code span of README.md and docs/*.md
must name a real subcommand and only options its `--help` accepts; every `make TARGET VAR=...`
a real target and variables the Makefile declares; every `python scripts/X.py` or `bash
scripts/X.sh` a file that exists. Python blocks go through ruff, bash blocks through `bash -n`;
every link to a file beside the docs must reach it.

    python scripts/check_docs.py          # one line per problem, exit 1 if any (make lint)
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
HARNESS = re.compile(r"^(?:\S*/)?harness$")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block."""
    return [(m.group(1).lower(), m.group(2)) for m in FENCE.finditer(text)]


def command_lines(text: str) -> list[str]:
    """Every line of a shell block (continuations joined) and every inline code span that
    starts a command: the places a user copies a command from."""
    lines = []
    for language, body in code_blocks(text):
        if language in ("", "bash", "sh", "shell", "console"):
            lines += body.replace("\\\n", " ").splitlines()
    prose = FENCE.sub("", text)
    lines += [m.group(1) for m in INLINE.finditer(prose)]
    return [line.strip().removeprefix("$ ") for line in lines if line.strip()]


def words(line: str) -> list[str]:
    """The line's words up to a comment, a pipe or a redirection; env assignments dropped."""
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";|&<>")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote in prose: not a command
        return []
    out = []
    for token in tokens:
        if token and token[0] in ";|&<>":
            break
        out.append(token)
    while out and ENV_ASSIGNMENT.match(out[0]):
        out.pop(0)
    return out


def _option_name(word: str) -> str | None:
    """`--samples`, `-k`, `--model=X` and `[--json]` name options; `-1`, `...` and `-` do not."""
    word = word.strip("[](),")
    if not word.startswith("-") or word in ("-", "--") or re.match(r"^-\d", word):
        return None
    return word.split("=", 1)[0]


def harness_problem(args: list[str], group) -> str | None:
    """What is wrong with `harness ARGS`, or None."""
    command = group
    while hasattr(command, "commands"):
        name = next((a for a in args if not a.startswith("-")), None)
        if name is None or name.startswith(("<", "COMMAND", "...")):
            return None  # `harness --help`, `harness <command>`: nothing to check
        if name not in command.commands:
            return f"no command {name!r}"
        args = args[args.index(name) + 1 :]
        command = command.commands[name]
    accepted = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}
    for word in args:
        option = _option_name(word)
        if option and option not in accepted:
            return f"{command.name} has no option {option}"
    return None


def make_problem(args: list[str], makefile: str) -> str | None:
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    variables = set(re.findall(r"^(\w+)\s*\?=", makefile, re.M))
    for word in args:
        if "=" in word:
            if word.split("=", 1)[0] not in variables:
                return f"the Makefile has no variable {word.split('=', 1)[0]}"
        elif not word.startswith("-") and word not in targets:
            return f"the Makefile has no target {word!r}"
    return None


def line_problem(line: str, group, makefile: str, root: Path = ROOT) -> str | None:
    args = words(line)
    if not args:
        return None
    head, rest = args[0], args[1:]
    if HARNESS.match(head):
        return harness_problem(rest, group)
    if head == "make":
        return make_problem(rest, makefile)
    if head in ("python", "python3", "bash", ".venv/bin/python") and rest:
        script = rest[0]
        if script.startswith(("scripts/", "bench/")) and not (root / script).is_file():
            return f"no file {script}"
    return None


def command_problems(text: str, group, makefile: str) -> list[str]:
    return [
        f"`{line}`: {problem}"
        for line in command_lines(text)
        if (problem := line_problem(line, group, makefile))
    ]


LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def link_problems(text: str, folder: Path) -> list[str]:
    """Links to files beside the docs that do not exist (web links are not checked)."""
    targets = [m.group(1) for m in LINK.finditer(FENCE.sub("", text))]
    return [
        f"a link to {t}, which does not exist"
        for t in targets
        if "://" not in t and not (folder / t).exists()
    ]


def lint_problems(text: str) -> list[str]:
    """ruff on each Python block, `bash -n` on each bash block."""
    problems = []
    for language, body in code_blocks(text):
        if language == "python":
            done = _run(["ruff", "check", "--quiet", "--stdin-filename", "block.py", "-"], body)
        elif language in ("bash", "sh"):
            done = _run(["bash", "-n"], body)
        else:
            continue
        if done.returncode != 0:
            said = f"{done.stdout}{done.stderr}".strip()
            problems.append(f"{language} block starting {body.splitlines()[0]!r}: {said}")
    return problems


def _run(argv: list[str], body: str) -> subprocess.CompletedProcess:
    if argv[0] == "ruff":
        argv = [str(Path(sys.executable).with_name("ruff")), *argv[1:]]
    with tempfile.TemporaryDirectory() as scratch:
        return subprocess.run(argv, input=body, capture_output=True, text=True, cwd=scratch)


def main() -> int:
    import typer.main

    from harness.cli import app

    group = typer.main.get_command(app)
    makefile = (ROOT / "Makefile").read_text()
    problems = []
    for path in doc_files():
        text = path.read_text()
        name = path.relative_to(ROOT)
        problems += [f"{name}: {p}" for p in command_problems(text, group, makefile)]
        problems += [f"{name}: {p}" for p in lint_problems(text)]
        problems += [f"{name}: {p}" for p in link_problems(text, path.parent)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
