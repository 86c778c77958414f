"""The multi-turn agent in real containers, driven by scripted trajectories (and once by the
embedded model): it resolves a task, and every runaway trajectory ends within its budgets."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from agents.agentic import REPEATED, AgenticAgent, AgenticOptions, parse_actions
from agents.openai_model import ClientOptions, OpenAICompatModel
from agents.scripted_server import Reply, ScriptedServer
from harness.cli import app
from harness.types import SamplingConfig
from tests.conftest import TEST_LIMITS, containers_of
from tests.test_generation import GOOD_EDIT

CALC = "swe-monkeys__minicalc-1"
# The same fix as the one-shot tests use, sent as a `replace` action.
FIX = (
    "I will make the division check for zero.\n\n```replace\n"
    + GOOD_EDIT.split("\n\n", 1)[1]
    + "```"
)
SOLVE = [
    'Let me find the evaluator.\n\n```bash\ngrep -n "def apply" -A10 minicalc/evaluator.py\n```',
    "```view\nminicalc/evaluator.py:10-20\n```",
    FIX,
    "```bash\ncd /testbed && python3 -c \"from minicalc import evaluate; evaluate('1/0')\"\n```",
    "The fix works.\n\n```submit\n```",
]


def agentic_run(*args: str):
    return CliRunner().invoke(app, ["run", *args])


def by_step(script: list[str]):
    """Reply number n of a trajectory is script[n] (the last one repeats)."""

    def respond(body: dict) -> list[Reply]:
        step = sum(m["role"] == "assistant" for m in body["messages"])
        return [Reply(script[min(step, len(script) - 1)])]

    return respond


def test_parse_actions():
    assert parse_actions("ok\n```bash\nls -la\n```") == [("bash", "ls -la\n")]
    assert parse_actions("```submit\n```")[0][0] == "submit"
    with pytest.raises(ValueError, match="no action"):
        parse_actions("```python\nprint(1)\n```")
    assert [a for a, _ in parse_actions("```bash\nls\n```\n```python\nx\n```\n```submit\n```")] == [
        "bash",
        "submit",
    ]


def test_agentic_run_resolves_and_show_prints_the_transcript(docker_engine, tmp_path):
    with ScriptedServer([], responder=by_step(SOLVE)) as server:
        result = agentic_run(
            "--agent",
            "agentic",
            "--issue",
            CALC,
            "-k",
            "2",
            "--model",
            f"{server.base_url}#scripted",
            "--runs-dir",
            str(tmp_path),
            "--run-id",
            "a",
            "--no-pull",
        )
    assert result.exit_code == 0, result.output
    assert "2 samples, 2 valid, 1 unique patches, 2 resolving" in result.output
    shown = CliRunner().invoke(app, ["show", str(tmp_path / "a"), CALC, "1"])
    assert shown.exit_code == 0, shown.output
    assert "5 steps" in shown.output and "ended: submitted" in shown.output
    assert "replaced in minicalc/evaluator.py" in shown.output
    assert "EvaluationError: division by zero" in shown.output  # the model ran the fix
    assert containers_of(docker_engine, "a") == []


# What the 0.5B writes (88 of its 163 replies on mini): a look, an edit and a submit at once.
ALL_AT_ONCE = [SOLVE[0] + "\n" + SOLVE[1] + "\n" + FIX + "\n" + SOLVE[4]]


def test_a_reply_of_several_actions_runs_them_in_order(docker_engine, tmp_path):
    with ScriptedServer([], responder=by_step(ALL_AT_ONCE)) as server:
        result = agentic_run(
            *("--agent", "agentic", "--issue", CALC, "-k", "1", "--no-pull"),
            *("--model", f"{server.base_url}#scripted", "--runs-dir", str(tmp_path)),
            *("--run-id", "once"),
        )
    assert result.exit_code == 0, result.output
    assert "1 samples, 1 valid, 1 unique patches, 1 resolving" in result.output
    shown = CliRunner().invoke(app, ["show", str(tmp_path / "once"), CALC, "0"])
    assert "4 steps" in shown.output and "ended: submitted" in shown.output, shown.output


TOOL_SOLVE = [
    [{"name": "bash", "arguments": {"command": "grep -n 'left / right' minicalc/evaluator.py"}}],
    [
        {"name": "view", "arguments": {"path": "minicalc/evaluator.py", "start": 14, "end": 18}},
        {"name": "bash", "arguments": {"command": "ls"}},
    ],  # a second call is answered, not run
    [
        {
            "name": "replace",
            "arguments": {
                "path": "minicalc/evaluator.py",
                "search": '    if op == "/":\n        return left / right\n',
                "replace": '    if op == "/":\n        if right == 0:\n'
                '            raise EvaluationError("division by zero")\n'
                "        return left / right\n",
            },
        }
    ],
    [{"name": "submit", "arguments": {}}],
]


def by_step_tools(script):
    def respond(body: dict) -> list[Reply]:
        assert [t["function"]["name"] for t in body["tools"]] == [
            "bash",
            "view",
            "replace",
            "submit",
        ]
        step = sum(m["role"] == "assistant" for m in body["messages"])
        return [Reply("", tool_calls=script[min(step, len(script) - 1)])]

    return respond


def test_tool_call_trajectories_resolve(docker_engine, tmp_path):
    with ScriptedServer([], responder=by_step_tools(TOOL_SOLVE)) as server:
        result = agentic_run(
            "--agent",
            "agentic",
            "--action-format",
            "tools",
            "--issue",
            CALC,
            "-k",
            "1",
            "--model",
            f"{server.base_url}#scripted",
            "--runs-dir",
            str(tmp_path),
            "--run-id",
            "tools",
            "--no-pull",
        )
        last = server.requests[-1]["messages"]
    assert result.exit_code == 0, result.output
    assert "1 samples, 1 valid, 1 unique patches, 1 resolving" in result.output
    tool_results = [m for m in last if m["role"] == "tool"]
    assert "ignored: one tool call per turn" in [m["content"] for m in tool_results]
    assert any("14" in m["content"] and "left / right" in m["content"] for m in tool_results)


RUNAWAYS = {
    "loops forever": (["```bash\nls\n```"], {}, "step limit (4)"),
    "malformed actions": (["Let me think about the evaluator some more."], {}, "step limit (4)"),
    "command never ends": (
        [f"```bash\nsleep {1000 + n}\n```" for n in range(4)],  # each new: none is refused
        {"command_timeout_s": 2, "max_seconds": 6},
        "time limit (6 s)",
    ),
    "bad view range": (["```view\nminicalc/evaluator.py:ten-twenty\n```"], {}, "step limit (4)"),
    "floods output": (["```bash\nyes | head -c 5000000\n```"], {}, "step limit (4)"),
    "edits blind": (  # an edit that fails stops its reply: the submit after it never runs
        [
            "```replace\nminicalc/evaluator.py\n<<<<<<< SEARCH\nnot there\n=======\nx\n"
            ">>>>>>> REPLACE\n```\n```submit\n```"
        ],
        {},
        "step limit (4)",
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", list(RUNAWAYS))
def test_runaway_trajectories_end_within_budgets(
    name, make_pipeline, mini_instances, docker_engine
):
    script, budget, reason = RUNAWAYS[name]
    pipe = make_pipeline()
    options = AgenticOptions(**{"max_steps": 4, "observation_chars": 500, **budget})
    with ScriptedServer([], responder=by_step(script)) as server:
        model = OpenAICompatModel(ClientOptions(server.base_url, "scripted"))
        agent = AgenticAgent(
            model,
            lambda inst, label: pipe.sandbox.open(
                pipe.verifier.image_for(inst), TEST_LIMITS, pipe.store.run_id
            ),
            options,
        )
        candidate, trajectory = asyncio.run(
            agent.trajectory(mini_instances[CALC], 0, SamplingConfig())
        )
    assert trajectory.exit_reason == reason
    assert not candidate.valid and reason in candidate.reason
    assert all(len(step.observation) <= 500 + 60 for step in trajectory.steps)
    if name == "loops forever":  # the same look again is refused, not run again
        assert [s.observation for s in trajectory.steps[1:]] == [REPEATED] * 3
    if name == "malformed actions":
        assert trajectory.steps[0].observation.startswith("format error: no action")
    if name == "command never ends":
        assert "[command killed after 2 s]" in trajectory.steps[0].observation
    if name == "bad view range":
        assert trajectory.steps[0].observation.startswith("view failed: invalid literal")
    if name == "edits blind":
        assert trajectory.steps[0].observation.startswith("replace failed: SEARCH")
        assert "the 1 actions after it were not run" in trajectory.messages[3]["content"]
    if name == "floods output":
        assert "characters cut" in trajectory.steps[0].observation
    assert containers_of(docker_engine, pipe.store.run_id) == []


@pytest.mark.slow
def test_agentic_run_with_the_embedded_model_completes(docker_engine, tmp_path):
    result = agentic_run(
        "--agent",
        "agentic",
        "--issue",
        CALC,
        "-k",
        "3",
        "--max-steps",
        "2",
        "--max-tokens",
        "48",
        "--runs-dir",
        str(tmp_path),
        "--run-id",
        "emb",
        "--no-pull",
    )
    assert result.exit_code == 0, result.output
    assert "3 samples" in result.output
    shown = CliRunner().invoke(app, ["show", str(tmp_path / "emb"), CALC, "0"])
    assert shown.exit_code == 0 and "ended:" in shown.output
    assert containers_of(docker_engine, "emb") == []
