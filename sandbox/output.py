"""A bounded capture of a command's output that keeps its head and its tail."""

from __future__ import annotations


class CappedOutput:
    """Keeps the first and last `cap // 2` bytes; test summaries live at the tail and
    SWE-bench's start marker near the head, so both ends matter more than the middle."""

    def __init__(self, cap: int) -> None:
        self.half = max(cap // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def write(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        excess = len(self.tail) - self.half
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        middle = f"\n[... {self.dropped} bytes of output dropped ...]\n" if self.dropped else ""
        return (
            bytes(self.head).decode("utf-8", "replace")
            + middle
            + bytes(self.tail).decode("utf-8", "replace")
        )
