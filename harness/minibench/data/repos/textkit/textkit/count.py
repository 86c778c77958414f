"""Counting words and lines."""


def word_count(text):
    """How many words `text` has; words are separated by any run of whitespace."""
    return len(text.split(" "))


def line_count(text):
    """How many lines `text` has; a final newline does not start another line."""
    return len(text.split("\n"))
