import pytest

from minicalc.parser import ParseError, parse


def test_precedence():
    assert parse("1 + 2 * 3") == ("+", ("num", 1.0), ("*", ("num", 2.0), ("num", 3.0)))


def test_left_associative():
    assert parse("8 - 2 - 1") == ("-", ("-", ("num", 8.0), ("num", 2.0)), ("num", 1.0))


def test_unbalanced_parenthesis():
    with pytest.raises(ParseError):
        parse("(1 + 2")
