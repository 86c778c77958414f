"""Sampling speed of the embedded model on this CPU: what k samples of one repair prompt cost
on llama.cpp's server, three ways, measured side by side in one run.

  - 1 stream:      one sample (the single-sequence decode rate);
  - k one by one:  k requests of one prompt in turn (the server reuses the evaluated prompt,
                   decoding one sequence at a time: llama-cpp-python's server's best case);
  - k in one:      one request for n = k (the harness's path: the prompt evaluated once, the
                   k sequences decoded together in the server's slots).
Tokens are counted per sample by the server's tokenizer (its usage counts only the first
choice of n); prompt tokens evaluated come from the server's own timings.

    .venv/bin/python bench/bench_generation.py [--model embedded|embedded:1.5b] [-k 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
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
from agents.openai_model import ClientOptions, OpenAICompatModel  # noqa: E402
from agents.servers import embedded_server  # noqa: E402
from harness import wiring  # noqa: E402

MAX_TOKENS = 256


def repair_messages() -> list[dict]:
    """The real repair prompt of minicalc-1, as the agent builds it."""
    instance = wiring.load("mini", patterns=["swe-monkeys__minicalc-1"])[0]
    repo = wiring.repo_cache_for(instance)
    work = Path(tempfile.mkdtemp(prefix="bench-generation-")) / "repo"
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


def request(client, counter, model: str, messages, n: int, seed: int) -> tuple[int, int, int]:
    """(samples, completion tokens counted per sample, prompt tokens the server evaluated)."""
    response = client.chat.completions.create(
        model=model, messages=messages, n=n, max_tokens=MAX_TOKENS, temperature=0.8, seed=seed
    )
    tokens = sum(counter._count_tokens(c.message.content or "") or 0 for c in response.choices)
    timings = (response.model_extra or {}).get("timings") or {}
    return len(response.choices), tokens, int(timings.get("prompt_n", 0))


def scenario(client, counter, model, messages, k: int, how: str, seed: int) -> dict:
    start = time.monotonic()
    if how == "1 stream":
        results = [request(client, counter, model, messages, 1, seed)]
    elif how == "k one by one":
        results = [request(client, counter, model, messages, 1, seed + i) for i in range(k)]
    else:
        results = [request(client, counter, model, messages, k, seed)]
    wall = time.monotonic() - start
    return {
        "how": how,
        "wall": wall,
        "samples": sum(r[0] for r in results),
        "tokens": sum(r[1] for r in results),
        "prompt_evaluated": sum(r[2] for r in results),
        "requests": len(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="embedded")
    parser.add_argument("-k", type=int, default=16)
    args = parser.parse_args()
    model = by_spec(args.model)
    messages = repair_messages()
    with embedded_server(model) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="EMPTY", timeout=1800)
        tokenize = server.base_url.removesuffix("/v1") + "/tokenize"
        counter = OpenAICompatModel(ClientOptions(server.base_url, "x", tokenize_url=tokenize))
        # a first request evaluates the prompt: every row below starts from it cached
        request(client, counter, server.model_name, messages, 1, 0)
        rows = [
            scenario(client, counter, server.model_name, messages, args.k, how, 100 * i)
            for i, how in enumerate(("1 stream", "k one by one", "k in one"))
        ]
    table = Table(
        title=f"k = {args.k} samples of one repair prompt, {model.name}, "
        f"{MAX_TOKENS} tokens max, {model.slots} slots"
    )
    for col in ("how", "wall s", "samples", "tokens", "tok/s", "vs one by one",
                "prompt tokens evaluated / request"):  # fmt: skip
        table.add_column(col)
    base = rows[1]["tokens"] / rows[1]["wall"]
    for row in rows:
        rate = row["tokens"] / row["wall"]
        table.add_row(
            row["how"],
            f"{row['wall']:.1f}",
            str(row["samples"]),
            str(row["tokens"]),
            f"{rate:.1f}",
            f"{rate / base:.2f}x",
            f"{row['prompt_evaluated'] / row['requests']:.0f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
