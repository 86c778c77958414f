"""URL slugs from titles."""
import re
import unicodedata


def slugify(title, sep="-"):
    """ASCII-only, lower-case slug with runs of other characters collapsed to `sep`."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-zA-Z0-9]+", sep, text).lower()
    return text.lstrip(sep)
