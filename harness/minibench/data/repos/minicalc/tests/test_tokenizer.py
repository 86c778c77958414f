import pytest

from minicalc.tokenizer import Token, TokenizeError, tokenize


def test_numbers_and_operators():
    assert tokenize("12 + 3.5") == [Token("num", "12"), Token("op", "+"), Token("num", "3.5")]


def test_parentheses():
    assert [t.kind for t in tokenize("(1)")] == ["lparen", "num", "rparen"]


def test_unknown_character():
    with pytest.raises(TokenizeError):
        tokenize("2 $ 3")
