"""Evaluate parsed expressions."""
from minicalc.parser import parse


class EvaluationError(ArithmeticError):
    pass


def apply(op, left, right):
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        return left / right
    raise EvaluationError(f"unknown operator {op!r}")


def evaluate_tree(node):
    kind = node[0]
    if kind == "num":
        return node[1]
    return apply(kind, evaluate_tree(node[1]), evaluate_tree(node[2]))


def evaluate(source):
    return evaluate_tree(parse(source))
