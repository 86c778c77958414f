import pytest

from textkit import wrap


def test_short_text_is_one_line():
    assert wrap("hello world", 40) == ["hello world"]


def test_breaks_between_words():
    assert wrap("the quick brown fox", 10) == ["the quick", "brown fox"]


def test_width_must_be_positive():
    with pytest.raises(ValueError):
        wrap("x", 0)
