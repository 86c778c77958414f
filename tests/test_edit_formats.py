"""The edit formats' parsers on the answers small models really give (pure: files in a
temporary folder)."""

from __future__ import annotations

import pytest

from agents.edit_formats import FORMATS, WholeFile, WholeFunction, by_name
from agents.edits import EditError, Files
from harness.errors import UserError

EVALUATOR = '''"""Evaluate parsed expressions."""
from minicalc.parser import parse


class EvaluationError(ArithmeticError):
    pass


def apply(op, left, right):
    if op == "/":
        return left / right
    raise EvaluationError(f"unknown operator {op!r}")


def evaluate(source):
    return apply(*parse(source))
'''
FIXED_APPLY = """def apply(op, left, right):
    if op == "/":
        if right == 0:
            raise EvaluationError("division by zero")
        return left / right
    raise EvaluationError(f"unknown operator {op!r}")
"""


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "minicalc").mkdir()
    (tmp_path / "minicalc/evaluator.py").write_text(EVALUATOR)
    return Files(tmp_path)


SHOWN = ["minicalc/evaluator.py"]


def test_whole_function_replaces_only_that_function(tree):
    answer = f"minicalc/evaluator.py\n```python\n{FIXED_APPLY}```\nThis raises the error."
    assert WholeFunction().apply(answer, tree, SHOWN) == ["minicalc/evaluator.py"]
    text = tree.read("minicalc/evaluator.py")
    old_apply = EVALUATOR[EVALUATOR.index("def apply") : EVALUATOR.index("\n\n\ndef evaluate")]
    assert text == EVALUATOR.replace(old_apply, FIXED_APPLY.rstrip("\n"))


def test_whole_function_takes_a_whole_file_rewrite_and_new_imports(tree):
    whole = EVALUATOR.replace('"""Evaluate parsed expressions."""\n', "import math\n").replace(
        "        return left / right\n", "        return math.nan if right == 0 else left / right\n"
    )
    WholeFunction().apply(f"```python\n# minicalc/evaluator.py\n{whole}```", tree, SHOWN)
    text = tree.read("minicalc/evaluator.py")
    assert "import math\n" in text and "math.nan if right == 0" in text
    assert text.startswith('"""Evaluate parsed expressions."""\n')


def test_an_echoed_example_and_a_cut_off_tail_are_left_out(tree):
    answer = (
        "### shapes/geometry.py\n```python\ndef area(w, h):\n    return w * h\n```\n"
        f"### minicalc/evaluator.py\n```python\n{FIXED_APPLY}```\n"
        "### minicalc/parser.py\n```python\ndef parse(source):\n    return"  # max_tokens
    )
    assert WholeFunction().apply(answer, tree, SHOWN) == ["minicalc/evaluator.py"]
    assert [path for path, _, _ in tree.changes()] == ["minicalc/evaluator.py"]


@pytest.mark.parametrize(
    "answer,reason",
    [
        ("Check for zero first.", "no rewritten function"),
        ("```python\ndef apply(op, left, right)\n    return 1\n```", "does not parse"),
        ("```python\nx = compute()\n```", "code outside a function or class"),
        ("```python\ndef apply(op, left, right):\n", "ends before its closing fence"),
        ("### shapes/geometry.py\n```python\ndef area():\n    pass\n```", "does not exist"),
    ],
)
def test_whole_function_says_why_an_answer_is_unusable(tree, answer, reason):
    with pytest.raises(EditError, match=reason):
        WholeFunction().apply(answer, tree, SHOWN)
    assert tree.read("minicalc/evaluator.py") == EVALUATOR


def test_whole_file_refuses_elided_rewrites(tree):
    elided = EVALUATOR.split("def apply")[0] + "# ... rest of the code unchanged\n"
    with pytest.raises(EditError, match="leaves code out"):
        WholeFile().apply(f"minicalc/evaluator.py\n```python\n{elided}```", tree, SHOWN)
    fixed = EVALUATOR.replace("        return left / right\n", FIXED_APPLY.split(":\n", 2)[2])
    assert WholeFile().apply(f"```python\n{fixed}```", tree, SHOWN) == SHOWN


def test_formats_are_named_and_a_wrong_name_is_one_line():
    assert set(FORMATS) == {"search-replace", "whole-file", "whole-function", "span"}
    with pytest.raises(UserError, match="--edit-format diff: use search-replace"):
        by_name("diff")


def test_several_files_in_one_block_are_told_apart_by_path_comments(tree):
    (tree.root / "minicalc/__init__.py").write_text(
        '"""Calc."""\nfrom minicalc.evaluator import evaluate\n'
    )
    answer = (
        f"```python\n# minicalc/evaluator.py\n{FIXED_APPLY}\n"
        "# minicalc/__init__.py\nfrom minicalc.evaluator import evaluate\n```"
    )
    shown = ["minicalc/evaluator.py", "minicalc/__init__.py"]
    assert WholeFunction().apply(answer, tree, shown) == ["minicalc/evaluator.py"]
    assert 'raise EvaluationError("division by zero")' in tree.read("minicalc/evaluator.py")
