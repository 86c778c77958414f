"""Split an arithmetic expression into tokens."""
from dataclasses import dataclass


class TokenizeError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "op", "lparen" or "rparen"
    text: str


OPERATORS = "+-*/"


def tokenize(source):
    tokens = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit() or ch == ".":
            start = i
            while i < len(source) and (source[i].isdigit() or source[i] == "."):
                i += 1
            tokens.append(Token("num", source[start:i]))
        elif ch in OPERATORS:
            tokens.append(Token("op", ch))
            i += 1
        elif ch == "(":
            tokens.append(Token("lparen", ch))
            i += 1
        elif ch == ")":
            tokens.append(Token("rparen", ch))
            i += 1
        else:
            raise TokenizeError(f"unexpected character {ch!r} at position {i}")
    return tokens
