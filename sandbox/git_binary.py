"""What a `GIT binary patch` would write, decoded: git's base85 lines, zlib, and for a delta
the bytes it inserts (its copies come from the old file, which the patch does not hold).

A binary hunk hides its text from a line-by-line screen; decoded, the screen reads it like any
added line. A hunk that does not decode is reported as such rather than passed over.
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass

from sandbox.patch_paths import readings

IMPORTED = (".py", ".pyc", ".pyo", ".pyd", ".so", ".pth", ".pyx", ".pxd", ".pyi", ".egg")
"""Suffixes of files the tests may import or the interpreter may run: a binary patch to one of
them is refused (a compiled module's content cannot be screened)."""
_DIFF = re.compile(r"^diff --git (.*)$")
_PART = re.compile(r"^(literal|delta) (\d+)$")


@dataclass(frozen=True)
class BinaryFile:
    path: str
    """The target path as the `diff --git` header names it (b/ side, decoded)."""
    written: bytes
    """The decoded bytes the patch writes (a delta's inserted bytes only)."""
    readable: bool
    """Every part decoded."""


def _target(header: str) -> str:
    """The b/ side of a `diff --git` header."""
    if '"' in header:
        name = readings(header)[-1]
    else:
        name = header.rsplit(" b/", 1)[-1] if " b/" in header else header.split()[-1]
    return name[2:] if name.startswith("b/") else name


def binary_files(patch: str) -> list[BinaryFile]:
    """Each file of the patch that carries a `GIT binary patch` or says `Binary files ...
    differ` (which git cannot apply, but names a binary change)."""
    found, path, lines = [], "", patch.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if diff := _DIFF.match(line):
            path = _target(diff.group(1))
        elif line.startswith("Binary files ") and line.endswith(" differ"):
            found.append(BinaryFile(path, b"", False))
        elif line == "GIT binary patch":
            written, readable, i = _parts(lines, i + 1)
            found.append(BinaryFile(path, written, readable))
            continue
        i += 1
    return found


def _parts(lines: list[str], i: int) -> tuple[bytes, bool, int]:
    """The forward part (the first; the second is the reverse) decoded, and where it ends."""
    written, readable, part = b"", True, 0
    while i < len(lines) and (head := _PART.match(lines[i])):
        data, i = _base85(lines, i + 1)
        if part == 0:
            decoded = _inflate(data)
            readable = decoded is not None
            if decoded is not None:
                written = decoded if head.group(1) == "literal" else _inserted(decoded)
        part += 1
        while i < len(lines) and not lines[i].strip():
            i += 1
    return written, readable, i


def _base85(lines: list[str], i: int) -> tuple[bytes | None, int]:
    out, ok = bytearray(), True
    while i < len(lines) and lines[i].strip():
        line = lines[i]
        size = ord(line[0]) - (ord("A") - 1 if line[0] <= "Z" else ord("a") - 27)
        try:
            out += base64.b85decode(line[1:])[:size]
        except ValueError:
            ok = False
        i += 1
    return (bytes(out) if ok else None), i


def _inflate(data: bytes | None) -> bytes | None:
    try:
        return zlib.decompress(data) if data is not None else None
    except zlib.error:
        return None


def _varint(data: bytes, i: int) -> int:
    while i < len(data) and data[i] & 0x80:
        i += 1
    return i + 1


def _inserted(delta: bytes) -> bytes:
    """The bytes a git delta inserts (copy instructions reference the old file)."""
    i = _varint(delta, _varint(delta, 0))  # source and target sizes
    out = bytearray()
    while i < len(delta):
        op = delta[i]
        i += 1
        if op & 0x80:  # copy: offset and size bytes, one per bit set
            i += bin(op & 0x7F).count("1")
        elif op:
            out += delta[i : i + op]
            i += op
    return bytes(out)


def refused(patch: str) -> BinaryFile | None:
    """The first binary change to a file the tests may import or run."""
    return next((f for f in binary_files(patch) if f.path.endswith(IMPORTED)), None)
