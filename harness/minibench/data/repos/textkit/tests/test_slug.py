from textkit import slugify


def test_simple_title():
    assert slugify("Hello World") == "hello-world"


def test_accents_are_folded():
    assert slugify("Crème Brûlée") == "creme-brulee"


def test_leading_punctuation_is_dropped():
    assert slugify("...and then") == "and-then"


def test_custom_separator():
    assert slugify("a b c", sep="_") == "a_b_c"
