"""Reproduction tests written by the model from the issue text (issue #16): the deployer's
stand-in for the hidden tests. They are sampled like patches (many samples of one prompt,
one prompt evaluation), kept only when they parse as a pytest file, and deduplicated by the
sha of their text; which of them reproduce the issue, and which candidates they pass, is
`sandbox/reproduction.py`'s to find out in the sandbox."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import re

from agents.agentless import prompt
from harness.protocols import ModelBackend
from harness.types import Completion, Instance, SamplingConfig

CODE_CHARS = 12_000
"""The code shown with the issue: the files the candidates edit most, up to this budget."""
CUT_BACK_LINES = 60
"""How far back from a cut the head of a test file is looked for (each try is a parse)."""
_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S)
"""A fenced block; one the answer never closed (cut at max_tokens) runs to its end."""


@dataclasses.dataclass(frozen=True)
class ReproSample:
    instance_id: str
    sample: int
    test_sha: str | None
    """sha256 of the test file; None when the answer held no usable test file."""
    code: str
    why: str
    """Why the answer was not kept ('' when it was)."""
    prompt_tokens: int
    completion_tokens: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def test_file(answer: str) -> tuple[str, str]:
    """(the pytest file in the answer, '') or ('', why there is none): the first fenced
    block (or the whole answer), which must parse and define a test function."""
    found = _BLOCK.search(answer)
    code = (found.group(1) if found else answer).strip() + "\n"
    cut = bool(found) and not found.group(0).endswith("```")
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        if not cut or (head := _whole_part(code)) is None:
            return "", f"does not parse: {exc.msg} (line {exc.lineno})"
        code, tree = head
    except (RecursionError, MemoryError, ValueError):  # model output is adversarial input
        return "", "does not parse: nested too deep"
    tests = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    ]
    return (code, "") if tests else ("", "defines no test function")


def _whole_part(code: str) -> tuple[str, ast.Module] | None:
    """The longest head of a file cut short (at max_tokens) that parses: its whole tests."""
    lines = code.splitlines(keepends=True)
    for end in range(len(lines) - 1, max(len(lines) - CUT_BACK_LINES, 0), -1):
        head = "".join(lines[:end])
        try:
            return head, ast.parse(head)
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            continue
    return None


def messages(instance: Instance, code: dict[str, str]) -> list[dict]:
    """The prompt: the issue as reported and the code most likely involved (never the
    instance's tests: the caller passes a blinded instance)."""
    budget, blocks = CODE_CHARS, []
    for path, text in code.items():
        block = f"### {path}\n```python\n{text[:budget]}\n```\n"
        blocks.append(block)
        budget -= len(block)
        if budget <= 0:
            break
    return [
        {
            "role": "user",
            "content": prompt(
                "reproduce",
                repo=instance.repo,
                problem_statement=instance.problem_statement,
                code="\n".join(blocks) or "(no code found)",
            ),
        }
    ]


async def sample(
    model: ModelBackend,
    instance: Instance,
    code: dict[str, str],
    k: int,
    sampling: SamplingConfig,
) -> list[ReproSample]:
    """k samples of a reproduction test file for the instance (one request of n = k)."""
    completions = await model.complete(messages(instance, code), sampling, k)
    return [_kept(instance.instance_id, i, c) for i, c in enumerate(completions)]


def _kept(iid: str, index: int, completion: Completion) -> ReproSample:
    if completion.error:
        code, why = "", f"model error: {completion.error}"
    else:
        code, why = test_file(completion.text)
    sha = hashlib.sha256(code.encode("utf-8", "surrogateescape")).hexdigest() if code else None
    return ReproSample(
        iid, index, sha, code, why, completion.prompt_tokens, completion.completion_tokens
    )
