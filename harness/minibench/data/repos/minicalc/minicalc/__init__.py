"""A small arithmetic expression calculator."""
from minicalc.evaluator import EvaluationError, evaluate
from minicalc.parser import ParseError, parse
from minicalc.tokenizer import TokenizeError, tokenize

__all__ = ["EvaluationError", "ParseError", "TokenizeError", "evaluate", "parse", "tokenize"]
