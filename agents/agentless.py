"""An Agentless-style repair agent: localise, then sample k repairs of one shared prompt.

Localisation runs once per issue (a lexical ranking, then the model picks from its top), so
the k repair samples share one prompt and the server's prefix cache serves all of them. The
answers become patches in `agents.extract`'s process pool, each distinct answer once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from agents.edit_formats import EditFormat, by_name
from agents.extract import Answer, Extracted, extract_all, in_pool
from agents.localize import rank_files
from harness.protocols import ModelBackend
from harness.types import Candidate, Completion, Generation, Instance, SamplingConfig

PROMPTS = Path(__file__).parent / "prompts"
CHARS_PER_TOKEN = 4  # a budget estimate; real counts come back from the server


def prompt(name: str, **values: str) -> str:
    return Template((PROMPTS / f"{name}.txt").read_text()).substitute(values)


@dataclass(frozen=True)
class AgentlessOptions:
    ranked_files: int = 10
    """How many lexically ranked files the model chooses from."""
    edit_files: int = 3
    """How many files go into the repair prompt."""
    context_tokens: int = 6000
    """Budget for the code in the repair prompt."""
    localize_with_model: bool = True
    drop_test_edits: bool = False
    edit_format: str = "auto"
    """search-replace, whole-file, or auto: the model's own default (`edit_format` on the
    backend: the embedded models name theirs), else search-replace."""


class AgentlessAgent:
    name = "agentless"

    def __init__(self, model: ModelBackend, options: AgentlessOptions | None = None) -> None:
        self.model = model
        self.options = options or AgentlessOptions()
        name = self.options.edit_format
        if name == "auto":
            name = getattr(model, "edit_format", "search-replace")
        self.format: EditFormat = by_name(name)

    async def generate(
        self, instance: Instance, worktree: Path, k: int, sampling: SamplingConfig
    ) -> Generation:
        files, overhead = await self.localize(instance, worktree)
        messages = [
            {"role": "system", "content": prompt("repair_system")},
            {
                "role": "user",
                "content": prompt(
                    "repair",
                    repo=instance.repo,
                    problem_statement=instance.problem_statement,
                    code=self.code_context(worktree, files),
                    instructions=prompt(
                        self.format.instructions, example_path=files[0] if files else "file.py"
                    ),
                ),
            },
        ]
        completions = await self.model.complete(messages, sampling, k)
        answers = [Answer(c.text, c.finish_reason == "length") for c in completions]
        made = await extract_all(
            self.format.name,
            [a for a, c in zip(answers, completions, strict=True) if not c.error],
            worktree,
            tuple(files),
            self.options.drop_test_edits,
        )
        candidates = [
            _candidate(
                instance, i, c, Extracted(reason=f"model error: {c.error}") if c.error else made[a]
            )
            for i, (a, c) in enumerate(zip(answers, completions, strict=True))
        ]
        return Generation(instance.instance_id, candidates, overhead, tuple(files))

    async def localize(
        self, instance: Instance, worktree: Path
    ) -> tuple[list[str], list[Completion]]:
        top = await in_pool(
            rank_files, worktree, instance.problem_statement, self.options.ranked_files
        )
        ranked = [p for p, _ in top]
        fallback = ranked[: self.options.edit_files]
        if not self.options.localize_with_model or len(ranked) <= 1:
            return fallback, []
        ask = prompt(
            "localize",
            repo=instance.repo,
            problem_statement=instance.problem_statement,
            file_list="\n".join(ranked),
            max_files=str(self.options.edit_files),
        )
        (answer,) = await self.model.complete(
            [{"role": "user", "content": ask}], SamplingConfig(temperature=0.0, max_tokens=200), 1
        )
        picked = [ln.strip(" -*`'\"") for ln in answer.text.splitlines()]
        chosen = list(dict.fromkeys(p for p in picked if p in ranked))[: self.options.edit_files]
        return chosen or fallback, [answer]

    def code_context(self, worktree: Path, files: list[str]) -> str:
        budget = self.options.context_tokens * CHARS_PER_TOKEN
        parts = []
        for path in files:
            text = (worktree / path).read_text(errors="replace")
            block = f"### {path}\n```python\n{text}\n```\n"
            if len(block) > budget:
                if not parts:  # never send no code at all: keep the head of the top file
                    parts.append(f"### {path} (first part)\n```python\n{text[:budget]}\n```\n")
                break
            parts.append(block)
            budget -= len(block)
        return "\n".join(parts)


def _candidate(
    instance: Instance, index: int, completion: Completion, made: Extracted
) -> Candidate:
    return Candidate(
        instance.instance_id,
        index,
        made.patch,
        made.sha,
        made.reason,
        completion.text,
        completion.prompt_tokens,
        completion.completion_tokens,
        completion.latency_s,
        completion.finish_reason,
        made.files,
    )
