"""An Agentless-style repair agent: localise, then sample k repairs.

Localisation runs once per issue (`agents.localize`: files, then their functions). With the
span format (the embedded models' default) the k samples spread over the top m locations:
sample i is shown location i mod m, one function or window of lines with its numbers, and
each location's samples go out as one request of n so its prompt is evaluated once. The
other formats show the top files whole (the model picks among them) in one shared prompt.
The answers become patches in `agents.extract`'s process pool, each distinct answer once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from string import Template

from agents.code_units import Unit
from agents.edit_formats import EditFormat, by_name
from agents.extract import Answer, Extracted, extract_all, in_pool
from agents.gold_locations import edited_units
from agents.localize import localize, rank_files
from agents.span_edit import numbered, window
from agents.spans import fit
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
    """search-replace, whole-file, whole-function, span, or auto: the model's own default
    (`edit_format` on the backend: the embedded models name theirs), else search-replace."""
    localizer: str = "hierarchical"
    """hierarchical (agents.localize.localize) or bm25 (files only, as before issue #25)."""
    locations: int = 3
    """span: how many of the top locations the k samples spread over."""
    prompt_tokens: int = 1500
    """span: the repair prompt's budget (issue text and code)."""
    oracle_locations: bool = False
    """A diagnostic, never a headline figure: show the gold patch's edited units instead of
    the localised ones, so a loss splits into wrong place and wrong fix."""


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
        self,
        instance: Instance,
        worktree: Path,
        k: int,
        sampling: SamplingConfig,
        indices: list[int] | None = None,
    ) -> Generation:
        """`indices`: the samples' numbers in the run (default 0..k-1); sample i is asked
        for with seed + i and, in the span format, shown location i mod m."""
        indices = list(range(k)) if indices is None else list(indices)
        if self.format.name == "span":
            return await self.generate_spans(instance, worktree, indices, sampling)
        if sampling.seed is not None:
            sampling = replace(sampling, seed=sampling.seed + indices[0])
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
        made_here = _candidates(instance, range(k), answers, completions, made)
        candidates = [replace(c, locations=tuple(files)) for c in made_here]
        return Generation(instance.instance_id, candidates, overhead, tuple(files))

    async def generate_spans(
        self, instance: Instance, worktree: Path, indices: list[int], sampling: SamplingConfig
    ) -> Generation:
        spans = await in_pool(
            spans_to_show,
            instance,
            worktree,
            self.options.locations,
            self.code_chars(instance),
            self.options.oracle_locations,
        )
        if not spans:
            candidates = [
                _candidate(instance, i, Completion(""), Extracted(reason="no location found"))
                for i in indices
            ]
            return Generation(instance.instance_id, candidates)
        groups = [[i for i in indices if i % len(spans) == j] for j in range(len(spans))]
        parts = await asyncio.gather(
            *(
                self.sample_span(instance, worktree, span, group, sampling)
                for span, group in zip(spans, groups, strict=True)
                if group
            )
        )
        by_index = {c.sample_index: c for part in parts for c in part}
        shown = tuple(dict.fromkeys(s.path for s in spans))
        return Generation(instance.instance_id, [by_index[i] for i in indices], [], shown)

    def issue_text(self, instance: Instance) -> str:
        """The problem statement within about 40 % of the prompt's budget (its head: the
        title and the first description; the rest is cut with a mark)."""
        limit = int(self.options.prompt_tokens * CHARS_PER_TOKEN * 0.4)
        text = instance.problem_statement.strip()
        return text if len(text) <= limit else text[:limit].rstrip() + "\n[...]"

    def code_chars(self, instance: Instance) -> int:
        used = len(prompt("repair_system")) + len(self.issue_text(instance)) + 600
        return max(800, self.options.prompt_tokens * CHARS_PER_TOKEN - used)

    def span_messages(self, instance: Instance, worktree: Path, span: Unit) -> list[dict]:
        lines = (worktree / span.path).read_text(errors="replace").splitlines()
        above, own, below = window(lines, span)
        code = numbered(above + own + below, span.start - len(above))
        values = dict(repo=instance.repo, problem_statement=self.issue_text(instance))
        values |= dict(path=span.path, start=str(span.start), end=str(span.end), code=code)
        return [
            {"role": "system", "content": prompt("repair_system")},
            {"role": "user", "content": prompt("repair_span", **values)},
        ]

    async def sample_span(
        self,
        instance: Instance,
        worktree: Path,
        span: Unit,
        group: list[int],
        sampling: SamplingConfig,
    ) -> list[Candidate]:
        """One request of n for the samples shown `span`: its prompt is evaluated once. The
        answer's budget follows the span's size, so a rewrite is never cut inside it."""
        seed = None if sampling.seed is None else sampling.seed + group[0]
        budget = answer_tokens(worktree, span)
        asked = replace(sampling, seed=seed, max_tokens=budget)
        messages = self.span_messages(instance, worktree, span)
        completions = await self.model.complete(messages, asked, len(group))
        answers = [Answer(c.text, c.finish_reason == "length") for c in completions]
        made = await extract_all(
            "span",
            [a for a, c in zip(answers, completions, strict=True) if not c.error],
            worktree,
            (span,),
            self.options.drop_test_edits,
        )
        where = (f"{span.key}@{span.start}-{span.end}",)
        made_here = _candidates(instance, group, answers, completions, made)
        return [replace(c, locations=where) for c in made_here]

    async def localize(
        self, instance: Instance, worktree: Path
    ) -> tuple[list[str], list[Completion]]:
        if self.options.localizer == "hierarchical":
            found = await in_pool(localize, worktree, instance.problem_statement)
            ranked = list(found.files[: self.options.ranked_files])
        else:
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


def spans_to_show(
    instance: Instance, worktree: Path, m: int, budget: int, oracle: bool
) -> list[Unit]:
    """The top m locations, each cut to the prompt's code budget (in the extraction pool:
    ranking reads the whole checkout)."""
    if oracle:
        found = edited_units(instance.gold_patch, worktree)
    else:
        found = list(localize(worktree, instance.problem_statement).units)
    return [
        fit(u, (worktree / u.path).read_text(errors="replace"), budget, instance.problem_statement)
        for u in found[:m]
    ]


def answer_tokens(worktree: Path, span: Unit) -> int:
    """An answer's token budget: the span's own tokens (about 3 characters each in code)
    half again, plus room for the fence; a rewrite that needs more is no longer the span."""
    lines = (worktree / span.path).read_text(errors="replace").splitlines()
    chars = sum(len(ln) + 1 for ln in lines[span.start - 1 : span.end])
    return max(128, chars // 3 * 3 // 2 + 64)


def _candidates(
    instance: Instance, indices, answers: list[Answer], completions: list[Completion], made
) -> list[Candidate]:
    """Sample `indices[j]` from completion j: its answer's patch, or the model's error."""
    return [
        _candidate(
            instance, i, c, Extracted(reason=f"model error: {c.error}") if c.error else made[a]
        )
        for i, a, c in zip(indices, answers, completions, strict=True)
    ]


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
