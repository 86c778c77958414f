"""The model as a judge (issue #16, optional): shown the issue and the few candidate patches
the other signals rank highest, it names the one that fixes the issue, sampled several times;
its votes are a signal like the others (`harness signals --judge N`)."""

from __future__ import annotations

import re
import string

from agents.agentless import prompt
from harness.protocols import ModelBackend
from harness.types import Completion, Instance, SamplingConfig

PATCH_CHARS = 6_000
"""Each patch shown is cut to this many characters."""
_LETTER = re.compile(r"\b([A-H])\b")


def messages(instance: Instance, patches: list[str]) -> list[dict]:
    shown = "\n\n".join(
        f"Candidate {string.ascii_uppercase[i]}:\n```diff\n{p[:PATCH_CHARS]}\n```"
        for i, p in enumerate(patches)
    )
    text = prompt(
        "judge", repo=instance.repo, problem_statement=instance.problem_statement, patches=shown
    )
    return [{"role": "user", "content": text}]


def choice(answer: str, among: int) -> int | None:
    """The index of the candidate the answer names (its first lone capital letter in range),
    None when it names none."""
    for found in _LETTER.finditer(answer):
        index = ord(found.group(1)) - ord("A")
        if index < among:
            return index
    return None


async def votes(
    model: ModelBackend, instance: Instance, patches: list[str], k: int, sampling: SamplingConfig
) -> tuple[list[int], list[Completion]]:
    """Votes per patch over k samples of the judge, and the completions (their tokens)."""
    completions = await model.complete(messages(instance, patches), sampling, k)
    counts = [0] * len(patches)
    for c in completions:
        if not c.error and (i := choice(c.text, len(patches))) is not None:
            counts[i] += 1
    return counts, completions
