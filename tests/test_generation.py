"""Candidate generation against our scripted OpenAI-compatible server (real HTTP): the client,
the agent, patch handling, and `harness run` end to end with verification in Docker."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time

import pytest
from typer.testing import CliRunner

from agents.openai_model import ClientOptions, OpenAICompatModel
from agents.scripted_server import Reply, Rule, ScriptedServer
from harness.cli import app
from harness.types import SamplingConfig

CALC = "swe-monkeys__minicalc-1"
GOOD_EDIT = """I will make division by zero raise the package's error.

### minicalc/evaluator.py
<<<<<<< SEARCH
    if op == "/":
        return left / right
=======
    if op == "/":
        if right == 0:
            raise EvaluationError("division by zero")
        return left / right
>>>>>>> REPLACE
"""
# The same fix, with the model's usual sloppiness: no trailing newline, CRLF line endings.
GOOD_EDIT_CRLF = GOOD_EDIT.rstrip("\n").replace("\n", "\r\n")
BROKEN_EDIT = GOOD_EDIT.replace(
    '    if op == "/":\n        return left / right',
    '    if op == "//":\n        return left // right',
    1,
)
PROSE = "The problem is in the evaluator. You should check for zero before dividing."
TRUNCATED = GOOD_EDIT.split("=======")[0]


def client(server: ScriptedServer, **kw) -> OpenAICompatModel:
    options = {"retries": 3, "backoff_s": 0.01, "timeout_s": 5.0, **kw}
    return OpenAICompatModel(ClientOptions(server.base_url, "scripted", **options))


def ask(model: OpenAICompatModel, k: int, seed: int | None = None):
    messages = [{"role": "user", "content": "fix it"}]
    return asyncio.run(model.complete(messages, SamplingConfig(seed=seed), k))


def test_n_is_sent_once_when_the_server_honours_it():
    with ScriptedServer([Rule("fix", [Reply("a b"), Reply("c"), Reply("d e f")])]) as server:
        out = ask(client(server), 3)
    assert [c.text for c in out] == ["a b", "c", "d e f"]
    assert len(server.requests) == 1 and server.requests[0]["n"] == 3
    # usage: 2 prompt words shared out, 6 completion words apportioned by length
    assert sum(c.prompt_tokens for c in out) == 2
    assert sum(c.completion_tokens for c in out) == 6
    assert not any(c.usage_exact for c in out)


def test_a_server_returning_one_choice_is_topped_up_with_distinct_seeds():
    replies = [Reply(f"answer {i}") for i in range(4)]
    with ScriptedServer([Rule("fix", replies)], honour_n=False) as server:
        out = ask(client(server), 4, seed=7)
    assert sorted(c.text for c in out) == [f"answer {i}" for i in range(4)]
    assert len(server.requests) == 4
    assert sorted(r["seed"] for r in server.requests) == [7, 8, 9, 10]
    assert all(c.usage_exact and c.completion_tokens == 2 for c in out)


@pytest.mark.parametrize("honour_n", [True, False])
def test_k_past_the_servers_cap_on_n_is_split_and_sample_i_keeps_seed_plus_i(honour_n):
    """llama-server refuses n above its slots: k = 5 with a cap of 2 asks 2 + 2 + 1, and a
    server that answers one choice per request is topped up; either way the five samples
    carry seeds 7 .. 11, once each."""

    def by_seed(body):  # the answer names the seed it was sampled with (llama.cpp: seed + i)
        return [Reply(f"seed {body['seed'] + i}") for i in range(body["n"])]

    with ScriptedServer([], honour_n=honour_n, responder=by_seed) as server:
        out = ask(client(server, max_n=2), 5, seed=7)
    assert sorted(int(c.text.split()[1]) for c in out) == [7, 8, 9, 10, 11]
    assert max(r["n"] for r in server.requests) == 2
    assert len(server.requests) == (3 if honour_n else 5)


def test_choices_of_one_request_are_counted_by_the_servers_tokenizer_when_it_has_one():
    """llama-server's usage for n > 1 counts the first choice only; with its /tokenize each
    sample's tokens are its own (a word is a token on the scripted server)."""
    replies = [Reply("one"), Reply("two words"), Reply("and three words")]
    with ScriptedServer([Rule("fix", replies)]) as server:
        tokenize = server.base_url.removesuffix("/v1") + "/tokenize"
        out = ask(client(server, tokenize_url=tokenize), 3)
    assert [c.completion_tokens for c in out] == [1, 2, 3]
    assert all(c.usage_exact for c in out)


def test_http_500_is_retried_then_succeeds():
    with ScriptedServer([Rule("fix", [Reply(status=500), Reply("fine")])]) as server:
        (out,) = ask(client(server), 1)
    assert out.text == "fine" and out.error is None
    assert len(server.requests) == 2


def test_a_slow_answer_past_the_timeout_becomes_an_error_sample_in_bounded_time():
    slow = [Reply("late", delay_s=3.0) for _ in range(3)]
    with ScriptedServer([Rule("fix", slow)]) as server:
        start = time.monotonic()
        (out,) = ask(client(server, timeout_s=0.5, retries=2), 1)
        elapsed = time.monotonic() - start
    assert out.error == "request timed out" and out.text == ""
    assert len(server.requests) == 2 and elapsed < 5


def test_an_exhausted_script_fails_the_sample_not_the_run():
    with ScriptedServer([Rule("fix", [Reply("only one")])]) as server:
        out = ask(client(server, retries=1), 2)
    assert out[0].text == "only one"
    assert out[1].error and "HTTP 500" in out[1].error


def script(*repairs: Reply) -> list[Rule]:
    return [
        Rule("Which of these files", [Reply("minicalc/evaluator.py")], repeat_last=True),
        Rule("SEARCH/REPLACE", list(repairs)),
    ]


def run_cli(server: ScriptedServer, tmp_path, k: int, *extra: str):
    args = [
        "run",
        "--issue",
        CALC,
        "--samples",
        str(k),
        "--model",
        f"{server.base_url}#scripted",
        "--runs-dir",
        str(tmp_path),
        "--run-id",
        "r",
        "--retries",
        "2",
        "--no-pull",
        *extra,
    ]
    return CliRunner().invoke(app, args)


def test_run_resolves_with_a_scripted_correct_edit_and_verifies_duplicates_once(
    docker_engine, tmp_path
):
    replies = [
        Reply(GOOD_EDIT),
        Reply(BROKEN_EDIT),
        Reply(PROSE),
        Reply(GOOD_EDIT_CRLF),
        Reply(TRUNCATED, finish_reason="length"),
    ]
    with ScriptedServer(script(*replies)) as server:
        result = run_cli(server, tmp_path, 5)
    assert result.exit_code == 0, result.output
    assert "5 samples, 2 valid, 1 unique patches, 2 resolving" in result.output
    candidates = [json.loads(x) for x in (tmp_path / "r/candidates.jsonl").read_text().splitlines()]
    reasons = [c["reason"] for c in candidates]
    assert reasons[0] is None and reasons[3] is None
    assert candidates[0]["patch_sha"] == candidates[3]["patch_sha"]
    assert reasons[1] == "SEARCH text not found in minicalc/evaluator.py"
    assert reasons[2] == "no SEARCH/REPLACE edit in the answer"
    assert reasons[4].startswith("answer truncated at max_tokens: an edit block ends before")
    verdicts = (tmp_path / "r/verdicts.jsonl").read_text().splitlines()
    assert len(verdicts) == 1 and json.loads(verdicts[0])["status"] == "resolved"
    assert json.loads(verdicts[0])["apply_command"] == "git apply --verbose"
    overhead = [json.loads(x) for x in (tmp_path / "r/overhead.jsonl").read_text().splitlines()]
    assert [o["purpose"] for o in overhead] == ["localize"] and overhead[0]["prompt_tokens"] > 0
    assert all(c["raw_output"] for c in candidates)


def test_run_without_verification_and_a_server_that_ignores_n(tmp_path):
    with ScriptedServer(script(Reply(GOOD_EDIT), Reply(PROSE)), honour_n=False) as server:
        result = run_cli(server, tmp_path, 2, "--no-verify")
    assert result.exit_code == 0, result.output
    assert "2 samples, 1 valid, 1 unique patches, 0 resolving" in result.output
    assert not (tmp_path / "r/verdicts.jsonl").exists()


def test_unknown_model_spec_is_a_user_error(tmp_path):
    result = CliRunner().invoke(
        app,
        ["run", "--issue", CALC, "--model", "gpt-9", "--no-verify", "--runs-dir", str(tmp_path)],
    )
    assert result.exit_code != 0
    assert "--model gpt-9: use embedded, vllm:MODEL" in str(result.exception)


NEW_MODULE = """### minicalc/zero.py
<<<<<<< SEARCH
=======
def check(right):
    return right != 0
>>>>>>> REPLACE
"""


def test_agent_makes_each_answer_a_patch_from_an_untouched_checkout(tmp_path, mini_instances):
    import subprocess

    from agents.agentless import AgentlessAgent
    from harness import wiring

    instance = mini_instances[CALC]
    work = wiring.repo_cache_for(instance).checkout(
        instance.repo, instance.base_commit, tmp_path / "w"
    )
    replies = [GOOD_EDIT, GOOD_EDIT_CRLF, NEW_MODULE, PROSE, GOOD_EDIT]
    with ScriptedServer(script(*map(Reply, replies))) as server:
        generation = asyncio.run(
            AgentlessAgent(client(server)).generate(instance, work, 5, SamplingConfig())
        )
    good, crlf, new, prose, again = generation.candidates
    assert [c.valid for c in generation.candidates] == [True, True, True, False, True]
    assert good.patch_sha == crlf.patch_sha == again.patch_sha  # one fix, one hash
    assert "no SEARCH/REPLACE edit" in prose.reason
    assert generation.context_files[0] == "minicalc/evaluator.py"
    assert all(c.locations == generation.context_files for c in generation.candidates)

    def git(*args, patch=None):
        return subprocess.run(["git", *args], cwd=work, input=patch, capture_output=True, text=True)

    assert git("status", "--porcelain").stdout == ""  # edits were made in memory
    for candidate in (good, new):  # made in memory, applied by git
        assert git("apply", "--check", "-", patch=candidate.patch).returncode == 0
    assert "new file mode" in new.patch and new.edited_files == ("minicalc/zero.py",)


WHOLE_FUNCTION = """minicalc/evaluator.py
```python
def apply(op, left, right):
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        if right == 0:
            raise EvaluationError("division by zero")
        return left / right
    raise EvaluationError(f"unknown operator {op!r}")
```
This checks for zero before dividing."""


@pytest.mark.parametrize("edit_format", ["whole-function", "whole-file"])
def test_the_rewrite_formats_resolve_end_to_end(
    docker_engine, tmp_path, mini_instances, edit_format
):
    """The model rewrites a function (or the whole file); the harness makes the diff, which
    verifies as resolved in Docker. The prompt asks for that format."""
    if edit_format == "whole-function":
        answer = WHOLE_FUNCTION
    else:
        from harness import wiring

        instance = mini_instances[CALC]
        mirror = wiring.repo_cache_for(instance).ensure_commit(instance.repo, instance.base_commit)
        source = mirror.git.show(f"{instance.base_commit}:minicalc/evaluator.py") + "\n"
        fixed = source.replace(
            '    if op == "/":\n',
            '    if op == "/":\n        if right == 0:\n'
            '            raise EvaluationError("division by zero")\n',
        )
        answer = f"### minicalc/evaluator.py\n```python\n{fixed}```\n"
    rules = [
        Rule("Which of these files", [Reply("minicalc/evaluator.py")], repeat_last=True),
        Rule("minicalc/evaluator.py", [Reply(answer), Reply(PROSE)]),
    ]
    with ScriptedServer(rules) as server:
        result = run_cli(server, tmp_path, 2, "--edit-format", edit_format)
        repair_prompt = server.requests[-1]["messages"][-1]["content"]
    assert result.exit_code == 0, result.output
    assert "2 samples, 1 valid, 1 unique patches, 1 resolving" in result.output
    assert ("functions that need to change" in repair_prompt) == (edit_format == "whole-function")
    assert "SEARCH" not in repair_prompt
    (candidate, _) = [
        json.loads(x) for x in (tmp_path / "r/candidates.jsonl").read_text().splitlines()
    ]
    added = [ln for ln in candidate["patch"].splitlines() if ln[:1] == "+" and ln[:3] != "+++"]
    assert len(added) == 2 and "-" not in {ln[:1] for ln in candidate["patch"].splitlines()[3:]}


FIXED_APPLY_SPAN = (
    "```python\nclass Evaluator:\n"
    + textwrap.indent(WHOLE_FUNCTION.split("```python\n")[1].split("```")[0], "    ")
    + "```"
)
"""The fixed apply() wrapped in a class header the file does not have (a small model's habit)."""


def span_responder(body: dict) -> list[Reply]:
    """The fix for the prompt that shows apply(), prose for any other location."""
    prompt = body["messages"][-1]["content"]
    shown = "def apply(op, left, right)" in prompt
    return [Reply(FIXED_APPLY_SPAN if shown else PROSE)] * body.get("n", 1)


def test_span_samples_spread_over_locations_one_request_each(tmp_path, mini_instances):
    """Sample i is shown location i mod m; each location's samples are one request of n
    whose seed is the base seed + its first sample; every sample records its location."""
    from agents.agentless import AgentlessAgent, AgentlessOptions
    from harness import wiring

    instance = mini_instances[CALC]
    work = wiring.repo_cache_for(instance).checkout(
        instance.repo, instance.base_commit, tmp_path / "w"
    )
    agent = AgentlessAgent(None, AgentlessOptions(edit_format="span", locations=3))
    with ScriptedServer([], responder=span_responder) as server:
        agent.model = client(server)
        generation = asyncio.run(
            agent.generate(instance, work, 5, SamplingConfig(seed=10), indices=[2, 3, 4, 5, 6])
        )
        requests = sorted(server.requests, key=lambda r: r["seed"])
    where = {c.sample_index: c.locations[0] for c in generation.candidates}
    assert [c.sample_index for c in generation.candidates] == [2, 3, 4, 5, 6]
    assert where[2] == where[5] and where[3] == where[6] and len(set(where.values())) == 3
    assert [(r["seed"], r["n"]) for r in requests] == [(12, 2), (13, 2), (14, 1)]
    assert len({r["max_tokens"] for r in requests}) >= 2  # each sized from its own span
    fixes = [c for c in generation.candidates if c.valid]
    assert fixes and all("::apply@" in c.locations[0] for c in fixes)
    assert all("minicalc/evaluator.py" in c.edited_files for c in fixes)
    assert all(c.reason for c in generation.candidates if not c.valid)


def test_the_span_format_resolves_end_to_end(docker_engine, tmp_path):
    """Localised, shown as one span, answered with a class header around the function (left
    out), verified as resolved in Docker."""
    with ScriptedServer([], responder=span_responder) as server:
        result = run_cli(server, tmp_path, 3, "--edit-format", "span", "--locations", "3")
    assert result.exit_code == 0, result.output
    candidates = [json.loads(x) for x in (tmp_path / "r/candidates.jsonl").read_text().splitlines()]
    assert all(c["locations"] for c in candidates)
    assert "1 resolving" in result.output, result.output
