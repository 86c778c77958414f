"""Choosing one patch without the hidden tests (issue #16): the semantic key, the selectors,
selection@k, the report's predictions, and that no selector can read a hidden test."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.scripted_server import Reply, ScriptedServer
from harness import selection
from harness.cli import app
from harness.errors import UserError
from harness.selection import (
    Sample,
    first_valid,
    regression_vote,
    reproduction_vote,
    selection_curves,
    semantic_key,
    semantic_vote,
    vote,
)


def patch(*added: str) -> str:
    """A well-formed diff of m.py replacing `return x` with the added lines."""
    head = f"diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,{1 + len(added)} @@\n"
    return head + " def f(x):\n-    return x\n" + "".join(f"+{line}\n" for line in added)


def test_comments_blank_lines_and_spacing_do_not_change_the_semantic_key():
    plain = semantic_key(patch("    return x+1"))
    assert semantic_key(patch("    return x + 1  # off by one")) == plain
    assert semantic_key(patch("    # the fix", "", "    return  x +1")) == plain
    assert semantic_key(patch("    return x + 2")) != plain
    assert semantic_key(patch("return x + 1")) != plain  # indentation is Python's syntax
    assert semantic_key(patch('    return "x  +  1"')) != semantic_key(patch('    return "x + 1"'))


def test_the_semantic_key_compares_syntax_trees_where_a_run_of_lines_parses():
    one_line = semantic_key(patch("    return f(x, 'a')"))
    assert semantic_key(patch("    return f(", "        x,", '        "a",', "    )")) == one_line
    assert semantic_key(patch("    return (f(x, 'a'))  # wrapped")) == one_line
    assert semantic_key(patch("    return f(x, 'b')")) != one_line
    deep = semantic_key(patch("    return " + "+".join(["x"] * 100_000)))  # no RecursionError
    assert deep != one_line
    # Half a statement does not parse alone: compared line by line, spacing aside.
    half = semantic_key(patch("    return f(x,"))
    assert semantic_key(patch("    return f( x ,")) == half != one_line


def test_a_pooled_minority_beats_a_wrong_majority():
    """Three samples of one wrong patch against four of the right change worded apart."""
    wrong = [Sample("w", "kw", None, None)] * 3
    right = [Sample(f"r{i}", "kr", None, None) for i in range(4)]
    samples = [wrong[0], right[0], wrong[1], right[1], wrong[2], right[2], right[3]]
    assert vote(samples) == "w"  # each wording of the fix has one vote
    assert semantic_vote(samples) == "r0"  # the earliest patch of the winning change
    assert first_valid([Sample(None, None, None, None), *samples]) == "w"
    assert vote([Sample(None, None, None, None)]) is None


def test_regression_vote_prefers_patches_that_broke_no_existing_test():
    samples = [
        Sample("w", "kw", 1, None),
        Sample("w", "kw", 1, None),
        Sample("r", "kr", 0, None),
        Sample("u", "ku", None, None),
    ]
    assert vote(samples) == "w" and regression_vote(samples) == "r"
    unknown = [
        Sample("w", "kw", 2, None),
        Sample("w", "kw", 2, None),
        Sample("u", "ku", None, None),
    ]
    assert regression_vote(unknown) == "u"  # not known to break anything beats known to
    assert regression_vote([Sample("w", "kw", 1, None)]) == "w"  # all broke something: plain vote


def test_reproduction_vote_prefers_patches_that_pass_the_most_reproducing_tests():
    samples = [Sample("w", "kw", 0, 0)] * 3 + [
        Sample("r", "kr", 0, 2),
        Sample("h", "kh", 0, 1),
        Sample("u", "ku", 0, None),
    ]
    assert vote(samples) == "w" and reproduction_vote(samples) == "r"
    tie = [
        Sample("a", "ka", 1, 1),
        Sample("b", "kb", 0, 1),
        Sample("b", "kb", 0, 1),
        Sample("c", "kc", 0, 0),
    ]
    assert reproduction_vote(tie) == "b"  # among the best scores, the regression vote
    nothing = [
        Sample("w", "kw", 1, 0),
        Sample("w", "kw", 1, 0),
        Sample("r", "kr", 0, 0),
        Sample("u", "ku", None, None),
    ]
    assert reproduction_vote(nothing) == regression_vote(nothing) == "r"  # no test passed


def test_a_reproduction_test_is_a_parsing_pytest_file():
    from agents.repro import test_file

    code, why = test_file("Here:\n```python\nfrom m import f\n\ndef test_f():\n    assert f()\n```")
    assert code.startswith("from m import f") and why == ""
    assert test_file("```python\ndef helper():\n    pass\n```")[1] == "defines no test function"
    assert test_file("```python\ndef test_f(:\n```")[1].startswith("does not parse")
    assert test_file("I would test that slugify works.")[0] == ""


def test_selection_at_k_averages_subsets_and_is_exact_at_all_samples():
    wrong = [Sample("w", "kw", None, None)] * 3
    right = [Sample(f"r{i}", "kr", None, None) for i in range(4)]
    issue = (
        [wrong[0], right[0], wrong[1], right[1], wrong[2], right[2], right[3]],
        frozenset({"r0", "r1", "r2", "r3"}),
    )
    curves = selection_curves([issue], [1, 3, 7], rounds=64, seed=1)
    assert curves["semantic-vote"]["mean"][-1] == 1.0 and curves["vote"]["mean"][-1] == 0.0
    assert curves["vote"]["spread"][-1] == 0.0  # one exact round at k = all samples
    assert curves["first-valid"]["mean"][0] == pytest.approx(4 / 7, abs=0.15)  # any one sample
    assert curves == selection_curves([issue], [1, 3, 7], rounds=64, seed=1)  # seeded


def test_no_selector_can_read_a_hidden_test():
    """The module that chooses imports nothing that holds an instance, a verdict or a test,
    and names none of their fields; a selector is given the samples and nothing else (which
    patches resolve is scored after it chose)."""
    source = Path(selection.__file__).read_text()
    tree = ast.parse(source)
    imported = {
        alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    ours = {m for m in imported if m.startswith(("harness", "sandbox", "agents"))}
    assert ours <= {"harness.errors.UserError", "harness.metrics"}, ours  # pure functions
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    hidden = {"test_patch", "fail_to_pass", "pass_to_pass", "FAIL_TO_PASS", "PASS_TO_PASS"}
    assert not (names & (hidden | {"Instance", "Verdict", "verdicts"}))
    for name, choose in selection.SELECTORS.items():  # told only the samples
        assert list(inspect.signature(choose).parameters) == ["samples"], name


# End to end: the scripted model's slugify samples, verified for real in the mini benchmark.
WRONG = (
    "### textkit/slug.py\n<<<<<<< SEARCH\n    return text.lstrip(sep)\n=======\n"
    "    return text.rstrip(sep)\n>>>>>>> REPLACE\n"
)


def right(note: str) -> str:
    return (
        "### textkit/slug.py\n<<<<<<< SEARCH\n    return text.lstrip(sep)\n=======\n"
        f"    return text.strip(sep)  # {note}\n>>>>>>> REPLACE\n"
    )


SAMPLES = [WRONG, right("both ends"), WRONG, right("fix"), WRONG, right("strip"), right("ok")]


def scripted_eval(tmp_path: Path, run_id: str, answers: list[str], *more: str) -> None:
    """textkit-1 at k = 7 with the scripted model giving `answers` in turn, verified for real
    (in Docker unless `more` names another --sandbox)."""

    def respond(body: dict) -> list[Reply]:
        if "Which of these files" in body["messages"][-1]["content"]:
            return [Reply("textkit/slug.py")]
        return [Reply(answers[(body["seed"] + j) % len(answers)]) for j in range(body["n"])]

    with ScriptedServer([], responder=respond) as server:
        args = ["eval", "-d", "mini", "--instances", "swe-monkeys__textkit-1", "-k", "7"]
        args += ["--model", f"{server.base_url}#scripted", "--runs-dir", str(tmp_path)]
        args += ["--run-id", run_id, "--no-pull", "--gen-concurrency", "1", "--seed", "0"]
        result = CliRunner().invoke(app, [*args, *more])
    assert result.exit_code == 0, result.output


def test_each_selector_end_to_end_on_the_mini_benchmark(docker_engine, tmp_path):
    scripted_eval(tmp_path, "sel", SAMPLES)
    summary = json.loads((tmp_path / "sel" / "summary.json").read_text())
    assert summary["coverage_at"]["7"] == 1.0
    assert summary["selection"]["majority_vote"] == 0.0  # three of one wrong patch
    assert summary["selection"]["semantic_vote"] == 1.0  # four wordings of the fix
    assert summary["selection"]["first_valid"] == 0.0
    assert summary["selection_at"]["semantic-vote"]["k"][-1] == 7
    for chosen_by, fixed in (("vote", False), ("semantic-vote", True)):
        out = tmp_path / chosen_by
        report = CliRunner().invoke(
            app, ["report", str(tmp_path / "sel"), "--out", str(out), "--selector", chosen_by]
        )
        assert report.exit_code == 0, report.output
        assert "selection without the hidden tests, at k = 7" in report.output
        (pred,) = [json.loads(x) for x in (out / "sel.predictions.jsonl").read_text().splitlines()]
        assert ("text.strip(sep)" in pred["model_patch"]) is fixed
        (official,) = [json.loads(f.read_text()) for f in out.glob("*.sel.json")]
        assert official["resolved_instances"] == int(fixed)  # the same patch as exported
        assert official["selector"].startswith(chosen_by)
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "sel"), "--selector", "oracle"])
    assert isinstance(bad.exception, UserError)  # the CLI's main prints it in one line
    assert (
        "use one of first-valid, vote, semantic-vote, regression-vote, reproduction-vote, judge"
        in str(bad.exception)
    )


def test_the_regression_run_never_sees_the_hidden_tests(mini_instances):
    from sandbox import swebench_adapter
    from sandbox.regression import blind, near_tests

    instance = mini_instances["swe-monkeys__textkit-1"]
    script = swebench_adapter.regression_script(instance, ["tests/test_slug.py"])
    assert script == swebench_adapter.regression_script(blind(instance), ["tests/test_slug.py"])
    assert "test_trailing_punctuation_is_dropped" not in script and "git apply" not in script
    from sandbox.regression import RegressionCheck

    hook = "diff --git a/.git/hooks/post-checkout b/.git/hooks/post-checkout\n"
    refused = RegressionCheck(None, None, None, "x").check(instance, hook, "sha", ["m.py"])
    assert "not run" in refused.error and not refused.strikes  # before any container
    listed = ["textkit/slug.py", "tests/test_slug.py", "tests/test_wrap.py", "a/slug_test.py"]
    assert near_tests(listed, ["textkit/slug.py"]) == ["a/slug_test.py", "tests/test_slug.py"]


# The majority, even pooled by meaning, is wrong (rstrip breaks an existing test); the
# regression signal finds it.
BREAKS = [WRONG, right("a"), WRONG, right("a"), WRONG, right("a"), WRONG]


def test_a_candidate_that_breaks_an_existing_test_is_passed_over(docker_engine, tmp_path):
    scripted_eval(tmp_path, "reg", BREAKS)
    result = CliRunner().invoke(app, ["signals", str(tmp_path / "reg"), "--no-pull"])
    assert result.exit_code == 0, result.output
    assert "2 candidate(s) checked" in result.output and "1 broke a test" in result.output
    signals = [json.loads(x) for x in (tmp_path / "reg" / "signals.jsonl").read_text().splitlines()]
    struck = {tuple(s["strikes"]) for s in signals}
    assert struck == {(), ("tests/test_slug.py::test_leading_punctuation_is_dropped",)}
    out = tmp_path / "rep"
    report = CliRunner().invoke(
        app, ["report", str(tmp_path / "reg"), "--out", str(out), "--selector", "regression-vote"]
    )
    assert report.exit_code == 0, report.output
    summary = json.loads((tmp_path / "reg" / "summary.json").read_text())
    assert summary["selection"]["majority_vote"] == 0.0 == summary["selection"]["semantic_vote"]
    assert summary["selection"]["regression_vote"] == 1.0
    assert summary["selection_cost"]["regression_signals"] == 2
    assert summary["selection_cost"]["regression_container_s"] > 0
    (pred,) = [json.loads(x) for x in (out / "reg.predictions.jsonl").read_text().splitlines()]
    assert "text.strip(sep)" in pred["model_patch"]


# The majority is wrong and breaks nothing (a no-op rewording), so neither pooling by meaning
# nor the regression signal can see it; a model-written test that reproduces the issue can.
HARMLESS = (
    "### textkit/slug.py\n<<<<<<< SEARCH\n    return text.lstrip(sep)\n=======\n"
    "    return text.lstrip(sep).replace(sep + sep, sep)\n>>>>>>> REPLACE\n"
)
QUIET = [HARMLESS, right("a"), HARMLESS, right("a"), HARMLESS, right("a"), HARMLESS]
REPRODUCES = (
    "```python\nfrom textkit import slugify\n\n\ndef test_trailing_dash():\n"
    '    assert slugify("Hello, World!") == "hello-world"\n```'
)
PASSES_ALREADY = (
    "```python\nfrom textkit import slugify\n\n\ndef test_plain():\n"
    '    assert slugify("Hello World") == "hello-world"\n```'
)
DOES_NOT_IMPORT = (
    "```python\nfrom textkit import slug_maker\n\n\ndef test_slug():\n    assert slug_maker\n```"
)
TEST_ANSWERS = [
    REPRODUCES,
    PASSES_ALREADY,
    REPRODUCES,
    "A test should check slugify.",
    DOES_NOT_IMPORT,
]


def test_a_reproduction_test_picks_the_right_minority(docker_engine, tmp_path, mini_instances):
    scripted_eval(tmp_path, "rep", QUIET, "--price-output", "1000000")  # $1 per token

    def write_tests(body: dict) -> list[Reply]:
        assert "reproduces the issue" in body["messages"][-1]["content"]
        return [Reply(TEST_ANSWERS[j % len(TEST_ANSWERS)]) for j in range(body["n"])]

    with ScriptedServer([], responder=write_tests) as server:
        args = ["signals", str(tmp_path / "rep"), "--no-pull", "--repro-tests", "5"]
        result = CliRunner().invoke(app, [*args, "--model", f"{server.base_url}#scripted"])
        again = CliRunner().invoke(app, [*args, "--model", f"{server.base_url}#scripted"])
        asked = len(server.requests)
        more = [*args[:-1], "7", "--model", f"{server.base_url}#scripted"]
        topped = CliRunner().invoke(app, more)  # two more samples, seeded on
    assert topped.exit_code == 0, topped.output
    assert [(r["n"], r["seed"]) for r in server.requests[asked:]] == [(2, 5)]
    assert "2 test file(s) written" in topped.output and "0 candidate(s) scored" in topped.output
    assert result.exit_code == 0, result.output
    # the file that does not import ends nothing but itself
    assert "4 test file(s) written, 1 distinct reproduce their issue" in result.output
    assert "2 candidate(s) scored, 1 pass at least one" in result.output
    assert again.exit_code == 0 and asked == 1  # tests are kept: asked once
    prompt = server.requests[0]["messages"][-1]["content"]
    instance = mini_instances["swe-monkeys__textkit-1"]
    assert "trailing dash" in prompt and "def slugify" in prompt  # the issue and the code
    assert "test_trailing_punctuation_is_dropped" not in prompt  # never a hidden test
    assert instance.test_patch.splitlines()[-1].strip("+ ") not in prompt
    out = tmp_path / "rep-out"
    report = CliRunner().invoke(
        app, ["report", str(tmp_path / "rep"), "--out", str(out), "--selector", "reproduction-vote"]
    )
    assert report.exit_code == 0, report.output
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    picks = summary["selection"]
    assert picks["majority_vote"] == picks["semantic_vote"] == picks["regression_vote"] == 0.0
    assert picks["reproduction_vote"] == 1.0
    cost = summary["selection_cost"]
    assert cost["reproduction_tests"] == {"samples": 7, "distinct": 3, "reproducing": 1}
    assert cost["tokens"]["completion"] > 0 and cost["reproduction_container_s"] > 0
    totals = summary["cost"]  # the tests' tokens priced as the samples' are
    assert totals["selection_dollars"] == cost["tokens"]["completion"] > 0
    assert totals["dollars_with_selection"] == totals["dollars"] + totals["selection_dollars"]
    (pred,) = [json.loads(x) for x in (out / "rep.predictions.jsonl").read_text().splitlines()]
    assert "text.strip(sep)" in pred["model_patch"]

    # The judge compares the top patches, the reproducing one first; this judge prefers the
    # other (B), and the judge selector follows it while reproduction-vote does not.
    with ScriptedServer([], responder=lambda body: [Reply("B")] * body["n"]) as judge:
        args = ["signals", str(tmp_path / "rep"), "--no-pull", "--judge", "3"]
        judged = CliRunner().invoke(app, [*args, "--model", f"{judge.base_url}#scripted"])
    assert judged.exit_code == 0, judged.output
    assert "judge: 1 issue(s) judged" in judged.output
    shown = judge.requests[0]["messages"][-1]["content"]
    assert shown.index("text.strip(sep)") < shown.index("replace(sep + sep, sep)")
    assert "test_trailing_punctuation_is_dropped" not in shown
    CliRunner().invoke(app, ["report", str(tmp_path / "rep"), "--out", str(out)])
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["selection"]["judge"] == 0.0 and summary["selection"]["reproduction_vote"] == 1.0
    assert summary["selection_cost"]["judged_issues"] == 1


def test_a_test_file_cut_at_max_tokens_keeps_its_whole_tests():
    from agents.repro import test_file

    cut = "```python\nimport m\n\n\ndef test_a():\n    assert m.f()\n\n\n"
    cut += "def test_b():\n    assert m.g(1,"
    code, why = test_file(cut)
    assert why == "" and "def test_a" in code and "test_b" not in code
    assert test_file("```python\ndef test_b():\n    assert m.g(1,\n```")[1].startswith("does not")
    deep = "```python\ndef test_d():\n    assert " + "+".join(["1"] * 100_000) + "\n```"
    assert test_file(deep)[1] == "does not parse: nested too deep"


def test_model_written_tests_are_told_apart_under_either_runner():
    """pytest's node ids name the file; sympy's runner reports bare function names, so each
    file's test functions carry its tag, and sympy finds the files only under sympy/."""
    from harness.types import Instance
    from sandbox.regression import near_tests
    from sandbox.reproduction import _file_of, tagged, test_path

    a, b = "a" * 64, "b" * 64
    code = "def test_x():\n    pass\n\n\nclass TestY:\n    def test_z(self):\n        pass\n"
    assert tagged(code, a).startswith(f"def test_x__swem_{a[:12]}(")
    assert "def test_z(self)" in tagged(code, a)  # methods keep their names (ids name the file)
    assert (
        _file_of(
            f"{test_path(Instance('i', 'o/r', 'c', '', '', '', '', (), ()), a)}::TestY::test_z",
            [b, a],
        )
        == a
    )
    assert _file_of(f"test_x__swem_{b[:12]}", [a, b]) == b
    assert _file_of("test_x", [a, b]) is None  # the repo's own test: none of ours
    sympy = Instance("sympy__sympy-1", "sympy/sympy", "c", "", "1.1", "", "", (), ())
    assert test_path(sympy, a).startswith("sympy/swem_repro/")
    listed = ["sympy/physics/tests/test_add.py", "sympy/core/tests/test_add.py", "x/test_mul.py"]
    assert near_tests(listed, ["sympy/core/add.py"])[0] == "sympy/core/tests/test_add.py"


def test_a_patch_that_reaches_the_reproduction_tests_gets_no_score(mini_instances):
    """A conftest.py beside the model-written tests could rewrite their outcomes: refused,
    before any container, as a patch touching .git is."""
    from sandbox.reproduction import BaseRun, ReproductionCheck

    instance = mini_instances["swe-monkeys__textkit-1"]
    base = BaseRun(instance.instance_id, {"a" * 64: ["t::test_x"]}, 1, 1.0)
    for path in (".swem_repro/conftest.py", ".git/hooks/pre-commit"):
        sneaky = f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n"
        sneaky += f"+++ b/{path}\n@@ -0,0 +1 @@\n+x = 1\n"
        signal = ReproductionCheck(None, None, None, "x").check(instance, sneaky, "s", base, {})
        assert signal.error == f"patch touches {path}: not run" and signal.passed == []


def test_a_sandbox_that_fails_leaves_signals_missing_never_unknown(tmp_path):
    """An engine outage is no fact about a patch: the signals it stopped are not recorded,
    the command exits 3, and the next run computes them."""
    from harness.protocols import SandboxError
    from sandbox import backends
    from tests import fake_backend

    class Broken(fake_backend.FakeSandbox):
        def open(self, image, limits, run_id):
            raise SandboxError("the engine went away")

    class BrokenBackend(fake_backend.FakeBackend):
        name = "broken"

        def sandbox(self):
            return Broken()

    fake_backend.register()
    backends.register("broken", BrokenBackend)
    scripted_eval(tmp_path, "out", BREAKS, "--sandbox", "fake")
    signals = ["signals", str(tmp_path / "out"), "--no-pull"]
    broken = CliRunner().invoke(app, [*signals, "--sandbox", "broken"])
    assert broken.exit_code == 3, broken.output
    assert "2 signal(s) not computed: the sandbox failed" in broken.output
    assert not (tmp_path / "out" / "signals.jsonl").exists()
    again = CliRunner().invoke(app, [*signals, "--sandbox", "fake"])
    assert again.exit_code == 0, again.output
    assert "2 candidate(s) checked (0 already)" in again.output  # computed now, none skipped
    assert len((tmp_path / "out" / "signals.jsonl").read_text().splitlines()) == 2


def test_a_selector_without_its_signal_picks_what_its_own_code_would():
    """selection@k reuses the fallback's pick where an issue has no reproduction score or
    judge vote; it must be the pick the selector itself makes."""
    import random

    from harness.selection import SELECTORS, _absent, every_pick

    rng = random.Random(7)
    for with_signals in (False, True, True):
        samples = [
            Sample(
                rng.choice(["a", "b", "c", None]),
                rng.choice(["ka", "kb"]),
                rng.choice([None, 0, 1]),
                rng.choice([None, 0, 1, 2]) if with_signals else None,
                rng.choice([None, 1, 3]) if with_signals else None,
            )
            for _ in range(40)
        ]
        for k in (1, 3, 10, 40):
            subset = samples[:k]
            expected = {name: choose(subset) for name, choose in SELECTORS.items()}
            assert every_pick(subset, _absent(samples)) == expected
            assert every_pick(subset) == expected
