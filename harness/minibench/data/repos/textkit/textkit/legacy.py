"""Deprecated helpers kept for old callers; nothing in textkit uses them any more."""
import re
import warnings


def old_slugify(title):
    """Deprecated: use textkit.slugify, which also handles accented letters."""
    warnings.warn("old_slugify is deprecated; use textkit.slugify", DeprecationWarning, stacklevel=2)
    text = re.sub(r"[^a-z0-9]+", "-", title.lower())
    return text.lstrip("-")


def old_titlecase(text):
    """Deprecated: use str.title."""
    warnings.warn("old_titlecase is deprecated; use str.title", DeprecationWarning, stacklevel=2)
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))
