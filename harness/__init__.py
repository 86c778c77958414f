"""swe-monkeys: repeated sampling for SWE-bench, verified by each repo's own tests in Docker."""

__version__ = "0.1.0"
