"""Sampling speed of the embedded model on this CPU: what k samples of one repair prompt
cost, against the same k prompts each evaluated from scratch.

Three ways to get k samples of the mini benchmark's minicalc-1 repair prompt, all through
the harness's own client against the embedded llama.cpp server (streamed, so the time to
the first token is the prompt's evaluation):
  - cold:   k requests, each with a different first line, so no prompt is reused
            (what k independent prompts would cost);
  - shared: k requests of one prompt one after another (the server keeps the evaluated
            prefix: the harness's path);
  - parallel: the same k requests in flight at once (the server queues them: llama-cpp-
            python decodes one sequence at a time).
The table gives wall seconds, prompt tokens the server had to evaluate (estimated from the
time to the first token at the cold rate), decode tokens per second, and each row's ratio
against `cold` measured in the same run.

    .venv/bin/python bench/bench_generation.py [--model embedded|embedded:1.5b] [-k 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import openai
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.agentless import AgentlessAgent, prompt  # noqa: E402
from agents.edit_formats import by_name  # noqa: E402
from agents.model_store import by_spec  # noqa: E402
from agents.servers import embedded_server  # noqa: E402
from harness import wiring  # noqa: E402

MAX_TOKENS = 160


def repair_messages() -> list[dict]:
    """The real repair prompt of minicalc-1, as the agent builds it."""
    instance = wiring.load("mini", patterns=["swe-monkeys__minicalc-1"])[0]
    repo = wiring.repo_cache_for(instance)
    work = Path(wiring.cache_dir()) / "bench-generation-worktree"
    repo.checkout(instance.repo, instance.base_commit, work)
    agent = AgentlessAgent(model=None, options=None)  # only for its prompt pieces
    files = ["minicalc/evaluator.py"]
    user = prompt(
        "repair",
        repo=instance.repo,
        problem_statement=instance.problem_statement,
        code=agent.code_context(work, files),
        instructions=prompt(by_name("whole-function").instructions, example_path=files[0]),
    )
    return [
        {"role": "system", "content": prompt("repair_system")},
        {"role": "user", "content": user},
    ]


async def one(client, model: str, messages, seed: int) -> tuple[float, float, int]:
    """(seconds to the first token, seconds in all, completion tokens)."""
    start = time.monotonic()
    first = None
    tokens = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=MAX_TOKENS,
        temperature=0.8,
        seed=seed,
        stream=True,
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or time.monotonic() - start
            tokens += 1  # one streamed piece is one token for llama.cpp's server
    return first or 0.0, time.monotonic() - start, tokens


async def scenario(client, model, messages, k: int, mode: str) -> dict:
    start = time.monotonic()
    if mode == "cold":
        results = []
        for i in range(k):
            fresh = [dict(m) for m in messages]
            fresh[0]["content"] = f"[request {i} {time.time()}]\n" + fresh[0]["content"]
            results.append(await one(client, model, fresh, i))
    elif mode == "shared":
        results = [await one(client, model, messages, i) for i in range(k)]
    else:
        results = await asyncio.gather(*(one(client, model, messages, i) for i in range(k)))
    wall = time.monotonic() - start
    decode = sum(r[2] for r in results)
    decode_s = sum(max(r[1] - r[0], 1e-6) for r in results)
    return {
        "mode": mode,
        "wall": wall,
        "first_token_s": statistics.mean(r[0] for r in results),
        "tokens": decode,
        "decode_tps": decode / decode_s if mode != "parallel" else decode / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="embedded")
    parser.add_argument("-k", type=int, default=4)
    args = parser.parse_args()
    model = by_spec(args.model)
    messages = repair_messages()
    with embedded_server(model) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", timeout=900)

        async def run_all():
            await one(client, server.model_name, [{"role": "user", "content": "hi"}], 0)
            return [
                await scenario(client, server.model_name, messages, args.k, mode)
                for mode in ("cold", "shared", "parallel")
            ]

        rows = asyncio.run(run_all())
    cold = rows[0]
    prompt_tokens = len(" ".join(m["content"] for m in messages)) // 4
    table = Table(
        title=f"{args.k} samples of one repair prompt, {model.name}, {MAX_TOKENS} tokens max"
    )
    for col in (
        "how",
        "wall s",
        "vs cold",
        "first token s (mean)",
        "prompt tokens evaluated / request (est.)",
        "decode tok/s",
    ):
        table.add_column(col)
    rate = prompt_tokens / cold["first_token_s"]  # the cold prompt evaluation rate
    for row in rows:
        evaluated = min(prompt_tokens, row["first_token_s"] * rate)
        table.add_row(
            row["mode"],
            f"{row['wall']:.1f}",
            f"{cold['wall'] / row['wall']:.2f}x",
            f"{row['first_token_s']:.2f}",
            "- (queued)" if row["mode"] == "parallel" else f"{evaluated:.0f} of ~{prompt_tokens}",
            f"{row['decode_tps']:.1f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
