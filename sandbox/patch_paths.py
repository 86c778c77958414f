"""The paths a patch names, decoded as git and GNU patch decode them, so that a path check sees
what the tools will write: git's quoted form (`"b/.gi\\164/hooks/x"`, C escapes and octal
bytes), `a/`/`b/` prefixes, renames and copies, context-diff (`***`) and `Index:` headers.

The reading is deliberately wider than either tool's: every header line outside a unified hunk
counts, and an unquoted header is read whole and also word by word (`patch` cuts a name at a
tab or a space before a timestamp). A path that only one reading finds still counts, so a
check that refuses `.git` in any of them refuses every spelling that a tool could write to.
"""

from __future__ import annotations

import re

ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
HEADERS = (
    "diff --git ",
    "--- ",
    "+++ ",
    "*** ",
    "Index: ",
    "rename from ",
    "rename to ",
    "copy from ",
    "copy to ",
    "rename old ",
    "rename new ",
)
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def unquote(text: str) -> tuple[str, str]:
    """A C-quoted name at the start of `text` decoded as git does (octal escapes are bytes of
    UTF-8), and the rest after its closing quote. Unquoted text comes back as it is."""
    if not text.startswith('"'):
        return text, ""
    out, i = bytearray(), 1
    while i < len(text) and text[i] != '"':
        char = text[i]
        if char != "\\" or i + 1 >= len(text):
            out += char.encode("utf-8", "surrogateescape")
            i += 1
            continue
        nxt = text[i + 1]
        octal = re.match(r"[0-7]{1,3}", text[i + 1 :])
        if octal:
            out.append(int(octal.group(0), 8) & 0xFF)
            i += 1 + len(octal.group(0))
        else:
            out.append(ESCAPES.get(nxt, ord(nxt) if ord(nxt) < 256 else 63))
            i += 2
    return out.decode("utf-8", "surrogateescape"), text[i + 1 :]


def readings(rest: str) -> list[str]:
    """Every name a header's remainder may stand for."""
    names = []
    while rest.strip():
        rest = rest.lstrip()
        if rest.startswith('"'):
            name, rest = unquote(rest)
            names.append(name)
            continue
        names += rest.replace("\t", " ").split()
        names.append(rest.rstrip("\n"))  # whole, for a name with spaces
        for quoted in re.findall(r'"(?:[^"\\]|\\.)*"', rest):
            names.append(unquote(quoted)[0])
        break
    return names


def header_paths(patch: str) -> list[str]:
    """Every path the patch's headers name, decoded, in order (duplicates kept)."""
    paths: list[str] = []
    old_left = new_left = 0
    for line in patch.splitlines():
        if old_left > 0 or new_left > 0:  # inside a unified hunk: content, not headers
            tag = line[:1]
            old_left -= tag in (" ", "-", "")
            new_left -= tag in (" ", "+", "")
            if tag in (" ", "-", "+", "\\", ""):
                continue
            old_left = new_left = 0
        if hunk := _HUNK.match(line):
            old_left, new_left = (int(n) if n is not None else 1 for n in hunk.groups())
            continue
        for header in HEADERS:
            if line.startswith(header):
                paths += readings(line[len(header) :])
                break
    return paths


def components(path: str) -> list[str]:
    """A path's parts, with the `a/`/`b/` prefix gone and backslashes read as separators."""
    stripped = path[2:] if path[:2] in ("a/", "b/") else path
    return [p for p in re.split(r"[/\\]", stripped) if p not in ("", ".")]


def unsafe(path: str) -> bool:
    """The path leaves the repository or enters a .git folder (any case, any component)."""
    if path == "/dev/null" or not path.strip():
        return False
    parts = components(path)
    return path.startswith(("/", "\\")) or ".." in parts or any(is_git_dir(p) for p in parts)


def is_git_dir(part: str) -> bool:
    """`.git`, in any case and with the trailing dots or spaces some file systems drop."""
    return part.rstrip(". ").lower() == ".git"


def first_unsafe(patch: str) -> str | None:
    """The first path a patch names that a strict check refuses (its a/ or b/ prefix gone),
    if any."""
    bad = next((p for p in header_paths(patch) if unsafe(p)), None)
    return bad[2:] if bad is not None and bad[:2] in ("a/", "b/") else bad
