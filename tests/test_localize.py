"""Hierarchical localisation on a generated repo (real git): what the issue names outright,
a traceback frame, a function's name, a module path, each ranks its target first; the gold
patch's units are read as the scorer reads them."""

from __future__ import annotations

import subprocess

import pytest

from agents.code_units import units
from agents.gold_locations import edited_files, edited_units
from agents.localize import localize
from agents.mentions import mentions

FILLER = "\n".join(f"def helper_{i}(value):\n    return value + {i}\n" for i in range(6))
FILES = {
    "shop/cart.py": '''"""A shopping cart."""
import math


class Cart:
    """Items and their prices."""

    currency = "EUR"

    def __init__(self):
        self.items = []

    def add(self, item, price):
        self.items.append((item, price))

    def total(self):
        return sum(price for _, price in self.items)
'''
    + FILLER,
    "shop/pricing.py": '''"""Prices, discounts and taxes."""

DEFAULT_TAX = 0.2
ROUNDING = 2


def apply_discount(price, percent):
    return price - price * percent / 100


def with_tax(price, rate=DEFAULT_TAX):
    return round(price * (1 + rate), ROUNDING)
'''
    + FILLER,
    "shop/receipts/printer.py": '''"""Receipts."""


def format_line(item, price):
    return f"{item}: {price}"


def print_receipt(cart):
    lines = [format_line(i, p) for i, p in cart.items]
    return "\\n".join(lines)
'''
    + FILLER,
    "shop/receipts/__init__.py": "",
    "shop/__init__.py": "",
    "tests/test_cart.py": "def test_total():\n    assert True\n",
    "docs/conf.py": "project = 'shop discount tax price cart receipt'\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def test_a_traceback_frame_ranks_its_file_and_function_first(repo):
    issue = (
        "Printing crashes\n\nTraceback (most recent call last):\n"
        '  File "/home/me/app.py", line 3, in <module>\n'
        '  File "/usr/lib/python3/site-packages/shop/receipts/printer.py", line 9, in '
        "print_receipt\nTypeError: cannot unpack non-iterable int object"
    )
    found = localize(repo, issue)
    assert found.files[0] == "shop/receipts/printer.py"
    assert found.units[0].key == "shop/receipts/printer.py::print_receipt"


def test_a_named_function_ranks_first_over_a_file_with_more_matching_words(repo):
    issue = "`with_tax` rounds wrong. Cart total, cart items, cart prices and the cart are fine."
    found = localize(repo, issue)
    assert found.units[0].key == "shop/pricing.py::with_tax"


def test_a_module_path_in_the_issue_ranks_its_file_first(repo):
    issue = "In shop.receipts.printer the lines have no currency; the cart has one."
    assert localize(repo, issue).files[0] == "shop/receipts/printer.py"


def test_a_method_named_with_its_class_ranks_first_and_tests_and_docs_are_never_ranked(repo):
    found = localize(repo, "Cart.add should refuse a negative price (tax, discount, receipt)")
    assert found.units[0].key == "shop/cart.py::Cart.add"
    assert not {p for p in found.files if p.startswith(("tests/", "docs/"))}


def test_units_name_functions_methods_classes_and_statement_blocks():
    found = {u.name: (u.kind, u.start, u.end) for u in units("p.py", FILES["shop/pricing.py"])}
    assert found["DEFAULT_TAX..ROUNDING"] == ("statement", 3, 4)
    assert found["with_tax"][0] == "function"
    cart = {u.name: u.kind for u in units("c.py", FILES["shop/cart.py"])}
    assert cart["Cart"] == "class" and cart["Cart.total"] == "method"
    assert units("bad.py", "def broken(:\n") == []


def test_gold_units_are_read_from_the_hunks(repo):
    gold = """--- a/shop/pricing.py
+++ b/shop/pricing.py
@@ -1,12 +1,13 @@
 \"\"\"Prices, discounts and taxes.\"\"\"
+import decimal
~
-DEFAULT_TAX = 0.2
+DEFAULT_TAX = 0.21
 ROUNDING = 2
~
~
 def apply_discount(price, percent):
     return price - price * percent / 100
~
~
 def with_tax(price, rate=DEFAULT_TAX):
     return round(price * (1 + rate), ROUNDING)
+    # unreachable
--- a/shop/cart.py
+++ b/shop/cart.py
@@ -15,3 +15,6 @@ class Cart:
~
     def total(self):
         return sum(price for _, price in self.items)
+
+    def clear(self):
+        self.items = []
""".replace("~", " ")  # "~": a blank context line
    assert edited_files(gold) == ["shop/pricing.py", "shop/cart.py"]
    keys = [u.key for u in edited_units(gold, repo)]
    # the import names no unit, the comment names none; the new method goes on its class
    assert keys == ["shop/cart.py::Cart", "shop/pricing.py::DEFAULT_TAX..ROUNDING"]


def test_mentions_reads_frames_paths_modules_and_code_identifiers():
    text = (
        "See src/_pytest/logging.py and `DEFAULT_LOG_FORMAT`; _pytest.logging.LogCaptureFixture"
        ' fails.\n  File "x/flask/blueprints.py", line 195, in __init__\n'
        "testing/test_foo.py:12: in test_bar\nThe format of the output is wrong."
    )
    named = mentions(text)
    assert "src/_pytest/logging.py" in named.paths
    assert "_pytest.logging.LogCaptureFixture" in named.modules
    frames = {(f.path, f.line, f.function) for f in named.frames}
    assert ("x/flask/blueprints.py", 195, "__init__") in frames
    assert ("testing/test_foo.py", 12, "test_bar") in frames
    assert {"DEFAULT_LOG_FORMAT", "LogCaptureFixture"} <= named.identifiers
    assert "format" not in named.identifiers and "output" not in named.identifiers


def test_the_localize_command_scores_against_gold_as_json(mini_instances):
    import json

    from typer.testing import CliRunner

    from harness.cli import app

    args = [
        "localize",
        "-d",
        "mini",
        "--instances",
        "swe-monkeys__minicalc-1,swe-monkeys__textkit-1",
    ]
    result = CliRunner().invoke(app, [*args, "--against-gold", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out["file_recall"]) == set(out["function_recall"]) == {"1", "3", "5", "10"}
    calc = next(r for r in out["instances"] if r["instance_id"] == "swe-monkeys__minicalc-1")
    assert calc["gold_units"] == ["minicalc/evaluator.py::apply"]
    assert calc["units"][0] == "minicalc/evaluator.py::apply"  # the issue names division
    assert out["file_recall"]["10"] == 1.0
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0 and "function 1. minicalc/evaluator.py::apply" in plain.output
    assert "gold" not in plain.output  # the gold patch is read only with --against-gold
    wrong = CliRunner().invoke(app, [*args, "--localizer", "llm"])
    assert wrong.exit_code != 0 and "use hierarchical or bm25" in str(wrong.exception)
