"""One conformance suite for the model seam, run against our scripted server (both the
n-honouring and the one-choice kind) and the real embedded llama.cpp server: the same client
code path vLLM uses must give every backend the same guarantees."""

from __future__ import annotations

import asyncio
import os

import pytest

from agents.model_store import QWEN_05B
from agents.openai_model import ClientOptions, OpenAICompatModel
from agents.scripted_server import Reply, Rule, ScriptedServer
from agents.servers import embedded_server
from harness.types import SamplingConfig

MESSAGES = [
    {"role": "system", "content": "You write Python."},
    {"role": "user", "content": "Write a function that adds two numbers."},
]
ANSWER = "def add(a, b):\n    return a + b\n" * 20


@pytest.fixture(
    scope="module",
    params=["scripted-n", "scripted-one-choice", pytest.param("embedded", marks=pytest.mark.slow)],
)
def backend(request):
    """(model, server-process-pid or None)."""
    if request.param == "embedded":
        with embedded_server(QWEN_05B) as server:
            options = ClientOptions(
                server.base_url,
                server.model_name,
                concurrency=2,
                max_n=QWEN_05B.slots,
                tokenize_url=server.base_url.removesuffix("/v1") + "/tokenize",
            )
            yield OpenAICompatModel(options), server
        return
    rule = Rule("two numbers", [Reply(ANSWER)], repeat_last=True)
    with ScriptedServer([rule], honour_n=request.param == "scripted-n") as server:
        yield OpenAICompatModel(ClientOptions(server.base_url, "scripted")), None


def complete(model, k, max_tokens=24, seed=1):
    return asyncio.run(
        model.complete(MESSAGES, SamplingConfig(max_tokens=max_tokens, seed=seed), k)
    )


def test_exactly_k_completions_with_text(backend):
    model, _ = backend
    out = complete(model, 3)
    assert len(out) == 3
    assert all(c.error is None and c.text.strip() for c in out)


def test_usage_is_counted_and_bounded_by_max_tokens(backend):
    model, _ = backend
    out = complete(model, 2, max_tokens=16)
    assert sum(c.prompt_tokens for c in out) > 5
    assert all(0 < c.completion_tokens for c in out)
    assert sum(c.completion_tokens for c in out) <= 2 * 16
    assert all(c.finish_reason in ("stop", "length") for c in out)
    assert any(c.finish_reason == "length" for c in out)


def test_latency_is_recorded(backend):
    model, _ = backend
    (only,) = complete(model, 1)
    assert only.latency_s > 0


def test_embedded_server_stops_with_its_process_group():
    with embedded_server(QWEN_05B) as server:
        pid = server.process.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


test_embedded_server_stops_with_its_process_group = pytest.mark.slow(
    test_embedded_server_stops_with_its_process_group
)


@pytest.mark.slow
def test_the_embedded_coder_model_writes_edits_the_harness_can_apply(tmp_path):
    """The real 0.5B on a mini task: every sample is an answer (text, tokens, no error), and
    in the embedded default (span) form at least one of them is a patch that applies to the
    base commit.
    Whether it fixes the issue is the benchmark's business, not this test's."""
    import json

    from typer.testing import CliRunner

    from harness.cli import app

    args = ["run", "--issue", "swe-monkeys__minicalc-1", "-k", "4", "--max-tokens", "400"]
    args += ["--seed", "1", "--no-verify", "--runs-dir", str(tmp_path), "--run-id", "r"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "r/candidates.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert all(r["raw_output"].strip() and r["completion_tokens"] > 0 for r in rows)
    assert not any((r["reason"] or "").startswith("model error") for r in rows)
    valid = [r for r in rows if r["patch_sha"]]
    assert valid, [r["reason"] for r in rows]
    assert all(r["patch"].startswith("diff --git a/minicalc/") for r in valid)


def test_the_embedded_server_says_what_it_is_doing(backend):
    """llama-server's /slots, read while a request of n decodes: the live view's step line."""
    import threading
    import time

    from agents.servers import SlotWatch

    model, server = backend
    if server is None:
        pytest.skip("only llama-server has /slots")
    watch = SlotWatch(server.base_url)
    assert watch.describe() is None  # idle
    seen: list[str] = []
    done = threading.Event()

    def look() -> None:
        while not done.is_set():
            if said := watch.describe():
                seen.append(said)
            time.sleep(0.05)

    thread = threading.Thread(target=look)
    thread.start()
    try:
        complete(model, 4, max_tokens=64, seed=5)
    finally:
        done.set()
        thread.join()
    decoding = [s for s in seen if s.startswith("model: decoding")]
    assert decoding, seen
    assert any("tok/s" in s for s in decoding)
    assert watch.describe() is None
