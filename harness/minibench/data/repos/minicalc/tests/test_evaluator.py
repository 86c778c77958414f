from minicalc import evaluate


def test_arithmetic():
    assert evaluate("2 * (3 + 4)") == 14.0


def test_division():
    assert evaluate("7 / 2") == 3.5


def test_nested_parentheses():
    assert evaluate("((1 + 1) * (2 + 2)) / 4") == 2.0
