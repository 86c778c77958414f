"""The span format's answer rules, on the answers small models give: what the harness keeps
is bounded by the span it showed (pure: files in a temporary folder)."""

from __future__ import annotations

import pytest

from agents.code_units import Unit, units
from agents.edits import EditError, Files
from agents.span_edit import SpanRewrite, numbered, window
from agents.spans import fit

SOURCE = '''"""Shapes."""
import math


class Circle:
    """A circle."""

    def __init__(self, radius):
        self.radius = radius

    def area(self):
        return 3.14 * self.radius**2

    def perimeter(self):
        return 2 * 3.14 * self.radius
'''
FIXED_BODY = "        return math.pi * self.radius**2"
EXPECTED = SOURCE.replace("        return 3.14 * self.radius**2", FIXED_BODY)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "shapes.py").write_text(SOURCE)
    return Files(tmp_path)


def area() -> Unit:
    return next(u for u in units("shapes.py", SOURCE) if u.name == "Circle.area")


def rewrite(files: Files, block: str, before: str = "", after: str = "") -> str:
    SpanRewrite().apply(f"{before}```python\n{block}\n```{after}", files, [area()])
    return files.read("shapes.py")


def test_the_rewritten_method_goes_back_by_line_range(files):
    answer = "    def area(self):\n" + FIXED_BODY
    assert rewrite(files, answer, "Here is the fix:\n", "\nIt uses math.pi.") == EXPECTED


def test_a_class_header_around_the_method_and_an_added_method_are_left_out(files):
    answer = (
        "class Circle:\n    def area(self):\n" + FIXED_BODY + "\n\n    def format(self):\n"
        "        return str(self.radius)"
    )
    assert rewrite(files, answer) == EXPECTED


def test_changed_indentation_is_put_back(files):
    assert rewrite(files, "def area(self):\n    return math.pi * self.radius**2") == EXPECTED


def test_imports_the_file_has_go_and_a_new_one_moves_to_the_imports(files):
    answer = "import math\nimport cmath\n\ndef area(self):\n" + FIXED_BODY.replace("    ", "", 1)
    text = rewrite(files, answer)
    assert text == EXPECTED.replace("import math\n", "import math\nimport cmath\n")


def test_copied_line_numbers_and_context_lines_are_left_out(files):
    lines = SOURCE.splitlines()
    above, own, below = window(lines, area())
    shown = numbered(above + own + below, area().start - len(above))
    fixed = shown.replace("3.14 * self.radius**2", "math.pi * self.radius**2", 1)
    assert rewrite(files, fixed) == EXPECTED


def test_a_path_inside_the_fence_is_no_code(files):
    assert rewrite(files, "shapes.py\n    def area(self):\n" + FIXED_BODY) == EXPECTED


def test_an_answer_for_another_function_is_refused_with_the_reason(files):
    with pytest.raises(EditError, match=r"rewrites perimeter\(\), not the area\(\)"):
        rewrite(files, "    def perimeter(self):\n        return 0")


def test_an_unchanged_answer_changes_nothing(files):
    rewrite(files, "    def area(self):\n        return 3.14 * self.radius**2")
    assert files.changes() == []


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("```python\n    def area(self):\n        return (", "ends before its closing fence"),
        ("I would change the area.", "no code block"),
        ("```python\n    def area(self):\n        return (\n```", "does not parse"),
    ],
)
def test_unusable_answers_are_refused_with_the_reason(files, answer, reason):
    with pytest.raises(EditError, match=reason):
        SpanRewrite().apply(answer, files, [area()])


def test_a_long_function_is_cut_to_its_statements_the_issue_names():
    body = "\n".join(f"    step_{i} = compute_{i}(value)" for i in range(200))
    source = (
        f"def long(value):\n{body}\n    checksum = verify_total(step_199)\n    return checksum\n"
    )
    unit = units("long.py", source)[0]
    cut = fit(unit, source, 400, "verify_total gives the wrong checksum")
    assert cut.kind == "lines" and cut.end == unit.end
    assert sum(len(ln) + 1 for ln in source.splitlines()[cut.start - 1 : cut.end]) <= 400
    assert fit(unit, source, 100_000, "anything") == unit


def test_an_answer_for_a_statement_span_may_not_define_a_function_it_does_not_hold(tmp_path):
    source = "RATE = 2\nLIMIT = 3\n\n\ndef scale(x):\n    return x * RATE\n"
    (tmp_path / "m.py").write_text(source)
    span = units("m.py", source)[0]
    assert span.name == "RATE..LIMIT"
    answer = "```python\ndef scale(x):\n    return x * RATE * LIMIT\n```"
    with pytest.raises(EditError, match="defines scale, which lines 1-2 do not hold"):
        SpanRewrite().apply(answer, Files(tmp_path), [span])
    files = Files(tmp_path)
    SpanRewrite().apply("```python\nRATE = 3\nLIMIT = 3\n```", files, [span])
    assert files.read("m.py") == source.replace("RATE = 2", "RATE = 3")


def test_a_numbered_answer_that_runs_past_the_span_until_cut_keeps_the_span(files):
    lines = SOURCE.splitlines()
    unit = area()
    rest = numbered(lines[unit.start - 1 :], unit.start)  # the span, then the next method
    fixed = rest.replace("3.14 * self.radius**2", "math.pi * self.radius**2", 1)
    cut = "```python\n" + fixed[: fixed.index("perimeter") + 4]  # max_tokens ends it here
    SpanRewrite().apply(cut, files, [unit])
    assert files.read("shapes.py") == EXPECTED


def test_a_window_inside_a_function_shows_context_that_an_answer_may_copy(tmp_path):
    body = "\n".join(f"    v{i} = v{i - 1} + 1" for i in range(1, 40))
    source = f"def long(v0):\n{body}\n    return v39\n"
    (tmp_path / "l.py").write_text(source)
    span = Unit("l.py", 20, 22, "long[20-22]", "lines")
    above, own, below = window(source.splitlines(), span)
    assert len(above) == len(below) == 3
    copied = above + [own[0], "    v20 = v19 + 2", own[2]] + below
    files = Files(tmp_path)
    SpanRewrite().apply("```python\n" + "\n".join(copied) + "\n```", files, [span])
    assert files.read("l.py") == source.replace("    v20 = v19 + 1\n", "    v20 = v19 + 2\n")


@pytest.mark.parametrize(
    "body",
    [FIXED_BODY, FIXED_BODY.strip(), "    " + FIXED_BODY.strip()],
    ids=["as-shown", "flush", "one-level"],
)
def test_a_body_without_its_def_goes_under_the_functions_own_header(files, body):
    """28 of the 0.5B's 320 answers on mini were a function's body alone: the fix, without
    the `def` line it was shown under."""
    assert rewrite(files, body) == EXPECTED


def test_statements_for_a_function_that_define_a_class_are_still_refused(files):
    with pytest.raises(EditError, match="rewrites no function"):
        rewrite(files, "class Area:\n    pass")


def test_a_body_without_the_docstring_keeps_the_functions_docstring(tmp_path):
    source = 'def area(r):\n    """The area."""\n    return 3.14 * r**2\n'
    (tmp_path / "a.py").write_text(source)
    unit = next(u for u in units("a.py", source) if u.name == "area")
    files = Files(tmp_path)
    SpanRewrite().apply("```python\nreturn math.pi * r**2\n```", files, [unit])
    assert files.read("a.py") == source.replace("3.14", "math.pi")


def test_a_runs_stored_answers_replay_through_todays_extraction(tmp_path):
    """scripts/replay_answers.py: a body-only answer of the 0.5B's mini run, refused then,
    becomes a patch now (no model call: the stored answer is extracted again)."""
    import importlib.util
    import json

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("replay", ROOT / "scripts" / "replay_answers.py")
    replay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replay)
    answer = '```python\n    return len(text.split(" "))  # Corrected line_count function\n```'
    record = {
        "instance_id": "swe-monkeys__textkit-4", "sample_index": 0, "patch": "",
        "patch_sha": None, "reason": "the answer rewrites no function", "raw_output": answer,
        "prompt_tokens": 1, "completion_tokens": 1, "latency_s": 1.0, "finish_reason": "stop",
        "edited_files": [], "locations": ["textkit/count.py::line_count@9-11"],
    }  # fmt: skip
    (tmp_path / "candidates.jsonl").write_text(json.dumps(record) + "\n")
    before, after, new = replay.replay(tmp_path, "mini")
    assert (before["valid"], after["valid"]) == (0, 1)
    (((iid, _), patch),) = new.items()
    assert iid == "swe-monkeys__textkit-4" and '+    return len(text.split(" "))' in patch
