"""From k answers to k candidates: what the harness spends per sample once the model has
answered, on a large checkout, against the pre-#15 path measured in the same run.

The model is the scripted server (real HTTP) answering one `n = K` request at once, so the
model costs nothing and what is left is the harness: localisation (BM25 over the checkout),
turning each answer into a normalised patch, and whether the event loop stays free for other
issues' responses meanwhile. The answers are whole-function rewrites of functions in the
checkout's largest modules, in a k = 250 mix: most repeat an earlier answer, some are prose.

  - serial git (before #15): each answer applied to the checkout on the event loop, then
    `git add -A`, `git diff`, normalise, `git reset --hard`, `git clean`, `git apply --check`;
  - pool: distinct answers once each, edited in memory and diffed, in a process pool.

    .venv/bin/python bench/bench_candidates.py [--repo CHECKOUT_OR_GIT_DIR] [-k 250]

Without --repo it uses the sympy snapshot at /work/.mirror/sympy+sympy/repo if there is one,
else a generated repository of sympy's size (about 1,500 modules of 400 lines).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.agentless import AgentlessAgent, AgentlessOptions, _candidate  # noqa: E402
from agents.edits import EditError, Files  # noqa: E402
from agents.extract import Extracted, pool  # noqa: E402
from agents.localize import rank_files  # noqa: E402
from agents.openai_model import ClientOptions, OpenAICompatModel  # noqa: E402
from agents.patches import PatchRejected, check_applies, normalise  # noqa: E402
from agents.scripted_server import Reply, ScriptedServer  # noqa: E402
from harness.types import Generation, Instance, SamplingConfig  # noqa: E402

SYMPY = Path("/work/.mirror/sympy+sympy/repo")


def checkout(source: Path | None, into: Path) -> Path:
    work = into / "repo"
    if source is None and SYMPY.exists():
        source = SYMPY
    if source is not None:
        subprocess.run(["git", "clone", "-q", str(source), str(work)], check=True)
        return work
    rng = random.Random(0)
    for i in range(1500):
        body = "".join(
            f"def function_{i}_{j}(x):\n    value = x * {rng.randint(1, 99)}\n"
            f"    return value + {j}\n\n\n"
            for j in range(80)
        )
        path = work / f"pkg{i // 100}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""Module {i}."""\n\n\n' + body)
    git = ["git", "-c", "user.email=b@b", "-c", "user.name=b"]
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run([*git, "add", "-A"], cwd=work, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=work, check=True)
    return work


def answers(work: Path, k: int) -> list[str]:
    """A k = 250 mix: about a third distinct rewrites, the rest repeats, 1 in 10 prose."""
    import ast

    listed = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=work, capture_output=True, text=True, check=True
    ).stdout.split()
    biggest = sorted(listed, key=lambda p: (work / p).stat().st_size)[-5:]
    functions = []
    for path in biggest:
        source = (work / path).read_text()
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and not node.decorator_list:
                functions.append((path, lines[node.lineno - 1 : node.end_lineno]))
    rng = random.Random(1)
    distinct = []
    for i in range(max(1, k // 3)):
        path, lines = rng.choice(functions)
        indent = " " * (len(lines[1]) - len(lines[1].lstrip()) if len(lines) > 1 else 4)
        body = [lines[0], f"{indent}# rewritten by sample {i}", *lines[1:]]
        code = "\n".join(body)
        distinct.append(f"{path}\n```python\n{code}\n```\nThis fixes it.")
    out = []
    for i in range(k):
        if i % 10 == 9:
            out.append("The bug is in the simplification; it should handle this case.")
        else:
            out.append(distinct[i] if i < len(distinct) else rng.choice(distinct))
    return out


class SerialGitAgent(AgentlessAgent):
    """The path before #15, kept here as the baseline: everything on the event loop."""

    async def generate(self, instance, worktree, k, sampling, indices=None):
        files = [p for p, _ in rank_files(worktree, instance.problem_statement, 10)][:3]
        messages = [{"role": "user", "content": "SEARCH/REPLACE fix " + "x" * 3000}]
        completions = await self.model.complete(messages, sampling, k)
        made = [self.serial(worktree, c.text, files) for c in completions]
        candidates = [
            _candidate(instance, i, c, m)
            for i, (c, m) in enumerate(zip(completions, made, strict=True))
        ]
        return Generation(instance.instance_id, candidates, [], tuple(files))

    def serial(self, worktree: Path, text: str, shown: list[str]) -> Extracted:
        def git(*args, **kw):
            return subprocess.run(
                ["git", *args], cwd=worktree, capture_output=True, text=True, **kw
            )

        try:
            files = Files(worktree)
            try:
                self.format.apply(text, files, shown)
            except EditError as exc:
                return Extracted(reason=str(exc))
            for path, _, new in files.changes():
                (worktree / path).write_text(new)
            git("add", "-A")
            diff = git("diff", "--cached", "--no-renames", "--no-color").stdout
            if not diff.strip():
                return Extracted(reason="the answer changes nothing")
            normal = normalise(diff, False)
        except PatchRejected as exc:
            return Extracted(reason=str(exc))
        finally:
            git("reset", "-q", "--hard")
            git("clean", "-fdq")
        try:
            check_applies(worktree, normal.text)
        except PatchRejected as exc:
            return Extracted(reason=str(exc))
        return Extracted(normal.text, normal.sha, None, normal.files)


async def timed(agent, instance, work: Path, k: int) -> tuple[float, float, list]:
    """(wall seconds, longest event-loop stall in seconds, candidates)."""
    stalls = [0.0]
    running = True

    async def ticker():
        last = time.monotonic()
        while running:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            stalls.append(now - last - 0.005)
            last = now

    tick = asyncio.create_task(ticker())
    start = time.monotonic()
    generation = await agent.generate(instance, work, k, SamplingConfig(max_tokens=4096))
    wall = time.monotonic() - start
    running = False
    await tick
    return wall, max(stalls), generation.candidates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path)
    parser.add_argument("-k", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = checkout(args.repo, Path(tmp))
        texts = answers(work, args.k)
        files = subprocess.run(["git", "ls-files"], cwd=work, capture_output=True, text=True)
        size = f"{len(files.stdout.split())} files"
        instance = Instance(
            "bench__candidates-1",
            "bench/candidates",
            "HEAD",
            "The simplification of a product returns the wrong sign for negative powers.",
            "0",
            "",
            "",
            (),
            (),
        )
        pool().submit(int).result()  # start the pool's processes outside the timing

        def server():
            return ScriptedServer([], responder=lambda body: [Reply(t) for t in texts])

        rows = {"serial git": [], "pool": []}
        for _ in range(args.repeat):  # interleaved, so drift in the machine's load hits both
            for name, cls in (("serial git", SerialGitAgent), ("pool", AgentlessAgent)):
                with server() as s:
                    model = OpenAICompatModel(ClientOptions(s.base_url, "scripted", timeout_s=60))
                    agent = cls(
                        model,
                        AgentlessOptions(localize_with_model=False, edit_format="whole-function"),
                    )
                    rows[name].append(asyncio.run(timed(agent, instance, work, args.k)))
    table = Table(title=f"k = {args.k} answers to candidates, {size}, median of {args.repeat}")
    for col in (
        "path",
        "wall s",
        "samples/s",
        "vs serial git",
        "longest loop stall s",
        "valid",
        "distinct patches",
    ):
        table.add_column(col)
    base = statistics.median(w for w, _, _ in rows["serial git"])
    for name, runs in rows.items():
        wall = statistics.median(w for w, _, _ in runs)
        cands = runs[0][2]
        table.add_row(
            name,
            f"{wall:.2f}",
            f"{args.k / wall:.0f}",
            f"{base / wall:.1f}x",
            f"{statistics.median(s for _, s, _ in runs):.2f}",
            str(sum(c.valid for c in cands)),
            str(len({c.patch_sha for c in cands if c.valid})),
        )
    same = [c.patch_sha for c in rows["serial git"][0][2]] == [
        c.patch_sha for c in rows["pool"][0][2]
    ]
    Console().print(table)
    print(
        f"same verdict per sample (valid or not) in both paths: "
        f"{[c.valid for c in rows['serial git'][0][2]] == [c.valid for c in rows['pool'][0][2]]}; "
        f"same patch hashes: {same}"
    )


if __name__ == "__main__":
    main()
