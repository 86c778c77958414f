"""A multi-turn repair agent: the model explores, edits and runs code in the instance's own
container, one action per turn, until it submits or a budget runs out; the candidate is the
working tree's diff. Each sample is one trajectory, in its own container."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template

from agents.edits import EditError, parse_edits
from agents.patches import PatchRejected, normalise
from harness.protocols import ModelBackend, SandboxError, SandboxSession
from harness.types import Candidate, Generation, Instance, SamplingConfig

PROMPTS = Path(__file__).parent / "prompts"
ACTION = re.compile(r"```([a-z]+)[ \t]*\n(.*?)```", re.S)
ACTIONS = ("bash", "view", "replace", "submit")


def _tool(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


TOOLS = [
    _tool(
        "bash",
        "Run a shell command in /testbed and see its output.",
        {"command": {"type": "string"}},
        ["command"],
    ),
    _tool(
        "view",
        "Show a file's lines, numbered.",
        {"path": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"}},
        ["path"],
    ),
    _tool(
        "replace",
        "Replace exact text in a file.",
        {"path": {"type": "string"}, "search": {"type": "string"}, "replace": {"type": "string"}},
        ["path", "search", "replace"],
    ),
    _tool("submit", "Finish: the repository's changes are the fix.", {}, []),
]


def action_from_tool_call(call: dict) -> tuple[str, str]:
    """A tool call as the (action, argument) of the fenced format; ValueError if unusable."""
    try:
        args = json.loads(call.get("arguments") or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"tool arguments are not JSON ({exc.msg})") from None
    name = call.get("name")
    if name == "bash":
        return "bash", str(args.get("command", ""))
    if name == "view":
        return "view", f"{args.get('path', '')}:{args.get('start') or 1}-{args.get('end') or ''}"
    if name == "replace":
        search, replace = (str(args.get(k, "")).removesuffix("\n") for k in ("search", "replace"))
        return "replace", (
            f"{args.get('path', '')}\n<<<<<<< SEARCH\n{search}\n=======\n"
            f"{replace}\n>>>>>>> REPLACE\n"
        )
    if name == "submit":
        return "submit", ""
    raise ValueError(f"unknown tool {name!r}")


@dataclass(frozen=True)
class AgenticOptions:
    max_steps: int = 30
    max_tokens: int = 200_000
    """Prompt plus completion tokens over the whole trajectory."""
    max_seconds: float = 1800.0
    observation_chars: int = 4000
    """Each observation is cut to this many characters (head and tail kept)."""
    command_timeout_s: float = 60.0
    drop_test_edits: bool = False
    parallel: int = max(2, os.cpu_count() or 2)
    """Trajectories (so containers) at once; the model client bounds requests separately."""
    action_format: str = "fenced"
    """fenced: one fenced block per reply (any chat model); tools: OpenAI tool calls."""


@dataclass
class Step:
    action: str
    argument: str
    observation: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


@dataclass
class Trajectory:
    instance_id: str
    sample_index: int
    messages: list[dict] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    exit_reason: str = ""
    seconds: float = 0.0

    @property
    def tokens(self) -> tuple[int, int]:
        return (
            sum(s.prompt_tokens for s in self.steps),
            sum(s.completion_tokens for s in self.steps),
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "format": "swe-monkeys-trajectory-1"}


def _assistant_message(reply) -> dict:
    if not reply.tool_calls:
        return {"role": "assistant", "content": reply.text}
    return {
        "role": "assistant",
        "content": reply.text or None,
        "tool_calls": [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in reply.tool_calls
        ],
    }


def _observation_messages(reply, observation: str) -> list[dict]:
    """A tool result for every call the model made (the API requires one each); only the
    first call is acted on."""
    if not reply.tool_calls:
        return [{"role": "user", "content": observation}]
    first, *rest = reply.tool_calls
    return [{"role": "tool", "tool_call_id": first["id"], "content": observation}] + [
        {"role": "tool", "tool_call_id": c["id"], "content": "ignored: one tool call per turn"}
        for c in rest
    ]


def parse_actions(text: str) -> list[tuple[str, str]]:
    """Every (action, argument) of a reply, in order; raises ValueError with what the model
    should fix when there is none."""
    blocks = [(kind, body) for kind, body in ACTION.findall(text) if kind in ACTIONS]
    if not blocks:
        raise ValueError("no action: reply with one fenced block (bash, view, replace or submit)")
    return blocks


FAILED = ("format error", "view failed", "replace failed")
"""How an observation starts when its action did nothing: the reply's later actions are not
run (an edit after a failed one would be written blind)."""

REPEATED = (
    "not run: it is the same as your last action, whose output is above. Take the next step: "
    "view the code it found, or replace to edit it."
)
"""What a small model that repeats one look (the 0.5B sent one grep 15 times in a row on
mini) is told instead of the same output again."""


def _repeats(steps: list[Step], action: str, argument: str) -> bool:
    """The same look as the step before (an edit or a submit is never a repeat to refuse)."""
    last = steps[-1] if steps else None
    return (
        action in ("bash", "view")
        and last is not None
        and (last.action, last.argument.strip()) == (action, argument.strip())
    )


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


class AgenticAgent:
    name = "agentic"
    needs_worktree = False
    """It works in the instance's container, not in a checkout on the host."""

    @property
    def _system_prompt(self) -> str:
        tools = self.options.action_format == "tools"
        return "agentic_system_tools.txt" if tools else "agentic_system.txt"

    def __init__(
        self,
        model: ModelBackend,
        open_session: Callable[[Instance, str], AbstractContextManager[SandboxSession]],
        options: AgenticOptions | None = None,
    ) -> None:
        self.model = model
        self.open_session = open_session
        """(instance, label) -> a sandbox session from the instance's image, removed on exit."""
        self.options = options or AgenticOptions()

    async def generate(
        self,
        instance: Instance,
        worktree: Path,
        k: int,
        sampling: SamplingConfig,
        indices: list[int] | None = None,
    ) -> Generation:
        """Sample i of `indices` (default 0..k-1) runs with seed + i."""
        indices = list(range(k)) if indices is None else list(indices)
        gate = asyncio.Semaphore(self.options.parallel)

        async def bounded(i: int):
            seeded = (
                sampling
                if sampling.seed is None
                else SamplingConfig(
                    sampling.temperature, sampling.top_p, sampling.max_tokens, sampling.seed + i
                )
            )
            async with gate:
                return await self.trajectory(instance, i, seeded)

        trajectories = await asyncio.gather(*(bounded(i) for i in indices))
        candidates = [c for c, _ in trajectories]
        return Generation(
            instance.instance_id, candidates, trajectories=[t.to_dict() for _, t in trajectories]
        )

    async def trajectory(
        self, instance: Instance, index: int, sampling: SamplingConfig
    ) -> tuple[Candidate, Trajectory]:
        t = Trajectory(
            instance.instance_id,
            index,
            [
                {"role": "system", "content": (PROMPTS / self._system_prompt).read_text()},
                {
                    "role": "user",
                    "content": Template((PROMPTS / "agentic_instance.txt").read_text()).substitute(
                        repo=instance.repo, problem_statement=instance.problem_statement
                    ),
                },
            ],
        )
        start = time.monotonic()
        session_cm = await asyncio.to_thread(self.open_session, instance, f"traj-{index}")
        session = await asyncio.to_thread(session_cm.__enter__)
        try:
            await self._loop(t, session, sampling, start)
            patch = await asyncio.to_thread(self._diff, session)
        finally:
            await asyncio.to_thread(session_cm.__exit__, None, None, None)
        t.seconds = round(time.monotonic() - start, 3)
        return self._candidate(instance, index, t, patch), t

    async def _loop(self, t: Trajectory, session, sampling, start: float) -> None:
        o = self.options
        while True:
            if len(t.steps) >= o.max_steps:
                t.exit_reason = f"step limit ({o.max_steps})"
                return
            if sum(t.tokens) >= o.max_tokens:
                t.exit_reason = f"token limit ({o.max_tokens})"
                return
            if time.monotonic() - start >= o.max_seconds:
                t.exit_reason = f"time limit ({o.max_seconds:g} s)"
                return
            step_start = time.monotonic()
            tools = TOOLS if o.action_format == "tools" else None
            (reply,) = await self.model.complete(t.messages, sampling, 1, tools)
            if reply.error:
                t.exit_reason = f"model error: {reply.error}"
                return
            t.messages.append(_assistant_message(reply))
            try:
                if reply.tool_calls:
                    actions = [action_from_tool_call(reply.tool_calls[0])]
                else:
                    actions = parse_actions(reply.text)
            except ValueError as exc:
                actions = [("invalid", str(exc))]
            if await self._run(t, session, reply, actions, step_start):
                return

    async def _run(self, t: Trajectory, session, reply, actions, step_start: float) -> bool:
        """A reply's actions in order, a step each (the reply's tokens on its first): a small
        model writes a look, an edit and a submit in one reply (the 0.5B did in 88 of 163
        replies on mini), so they run as a script would, until one fails, the step limit, or
        a submit. Their observations go back as one message. True when the trajectory ends."""
        seen: list[str] = []
        for n, (action, argument) in enumerate(actions):
            if len(t.steps) >= self.options.max_steps:
                t.exit_reason = f"step limit ({self.options.max_steps})"
                break
            tokens = (reply.prompt_tokens, reply.completion_tokens) if n == 0 else (0, 0)
            if action == "submit":
                t.steps.append(Step(action, "", "", *tokens, time.monotonic() - step_start))
                t.exit_reason = "submitted"
                break
            try:
                observation = await self._observe(t, session, action, argument)
            except SandboxError as exc:
                t.exit_reason = f"sandbox error: {exc}"
                return True
            observation = cut(observation, self.options.observation_chars)
            shown = "" if action == "invalid" else argument  # the error is the observation
            t.steps.append(
                Step(action, shown, observation, *tokens, round(time.monotonic() - step_start, 3))
            )
            seen.append(observation if len(actions) == 1 else f"[{action}] {observation}")
            if observation.startswith(FAILED):
                if n + 1 < len(actions):
                    seen.append(f"[the {len(actions) - n - 1} actions after it were not run]")
                break
        if seen:
            t.messages += _observation_messages(reply, "\n\n".join(seen))
        return bool(t.exit_reason)

    async def _observe(self, t: Trajectory, session, action: str, argument: str) -> str:
        if action == "invalid":
            return f"format error: {argument}"
        if _repeats(t.steps, action, argument):
            return REPEATED
        try:
            return await asyncio.to_thread(self._act, session, action, argument)
        except ValueError as exc:
            return f"{action} failed: {exc}"

    def _act(self, session, action: str, argument: str) -> str:
        timeout = self.options.command_timeout_s
        if action == "bash":
            # `timeout` inside the container ends just this command; the session lives on.
            command = f"timeout -s KILL {timeout:g} bash -c {shlex.quote(argument)}"
            result = session.exec(command, timeout + 30)
            if result.returncode == 137:
                return f"{result.output}\n[command killed after {timeout:g} s]"
            return f"{result.output}\n[exit code {result.returncode}]"
        if action == "view":
            path, _, lines = argument.strip().partition(":")
            first, _, last = lines.partition("-")
            start, end = int(first or 1), int(last) if last else 10**9
            awk = f'NR>={start} && NR<={end} {{printf "%6d  %s\\n", NR, $0}}'
            result = session.exec(f"awk {shlex.quote(awk)} {shlex.quote(path)}", timeout)
            return result.output or "(empty)"
        try:
            edits = parse_edits(argument)
        except EditError as exc:
            return f"replace failed: {exc}"
        if len(edits) != 1:
            return "replace failed: give the file path, then exactly one SEARCH/REPLACE block"
        edit = edits[0]
        try:
            current = session.read_file(f"/testbed/{edit.path}").decode()
        except FileNotFoundError:
            return f"replace failed: no file {edit.path}"
        if edit.search not in current:
            return f"replace failed: SEARCH text not found in {edit.path}"
        session.write_file(f"/testbed/{edit.path}", current.replace(edit.search, edit.replace, 1))
        return f"replaced in {edit.path}"

    def _diff(self, session) -> str:
        # Bytecode from running the code is not part of a fix (a repo may lack a .gitignore).
        result = session.exec(
            "git add -A -- . ':(exclude)*.pyc' ':(exclude)**/__pycache__/**' && "
            "git -c core.fileMode=false diff --cached --no-renames --no-color HEAD",
            120,
        )
        return result.output if result.ok else ""

    def _candidate(self, instance, index, t: Trajectory, patch: str) -> Candidate:
        prompt, completion = t.tokens
        last = t.messages[-1]["content"] if len(t.messages) > 2 else ""
        try:
            normal = normalise(patch, self.options.drop_test_edits)
            sha, text, reason, files = normal.sha, normal.text, None, normal.files
        except PatchRejected as exc:
            sha, text, reason, files = None, "", f"{t.exit_reason}; {exc}", ()
        return Candidate(
            instance.instance_id,
            index,
            text,
            sha,
            reason,
            last,
            prompt,
            completion,
            t.seconds,
            t.exit_reason,
            files,
        )
