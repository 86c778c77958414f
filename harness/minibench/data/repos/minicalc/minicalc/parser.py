"""Parse tokens into a tree of tuples: ("num", value) or (operator, left, right)."""
from minicalc.tokenizer import tokenize


class ParseError(ValueError):
    pass


class Parser:
    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self):
        tok = self.peek()
        if tok is None:
            raise ParseError("unexpected end of expression")
        self.pos += 1
        return tok

    def expression(self):
        node = self.term()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.text in "+-":
            self.take()
            node = (tok.text, node, self.term())
        return node

    def term(self):
        node = self.factor()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.text in "*/":
            self.take()
            node = (tok.text, node, self.factor())
        return node

    def factor(self):
        tok = self.take()
        if tok.kind == "num":
            return ("num", float(tok.text))
        if tok.kind == "lparen":
            node = self.expression()
            if self.take().kind != "rparen":
                raise ParseError("expected ')'")
            return node
        raise ParseError(f"unexpected token {tok.text!r}")


def parse(source):
    parser = Parser(tokenize(source))
    node = parser.expression()
    if parser.peek() is not None:
        raise ParseError(f"unexpected token {parser.peek().text!r}")
    return node
