"""Options for verification: isolation limits and where images and repos come from."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SandboxLimits:
    """Isolation of every container the harness starts; each field is a CLI option."""

    network: str = "none"
    """Docker network mode for the tests: "none" (default) or "bridge" (what the official harness
    uses; some real SWE-bench tests reach the network)."""
    memory: str = "4g"
    """Memory limit (swap included); a test that allocates past it is killed by the kernel."""
    pids: int = 1024
    """Most processes at once in the container, so a fork bomb hits a wall."""
    cpus: float = float(max(1, (os.cpu_count() or 2) - 1))
    """CPU quota in cores: by default one core fewer than the host has, so a candidate that
    spins (a fork bomb up to the pids limit) leaves the harness and the other workers room."""
    disk: str = "4g"
    """What the container may write (its writable layer); past it the container is killed.
    overlay2 on ext4 has no quota, so a watchdog measures the layer while the tests run."""
    timeout_s: float = 1800.0
    """Wall clock for the tests; past it the container is killed (the official default is 1800)."""
    log_cap_bytes: int = 8 * 1024 * 1024
    """Captured output per command; past it the middle is dropped, keeping head and tail."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ImageOptions:
    namespace: str = "swebench"
    """Registry namespace of the official eval images (swebench's default is "swebench")."""
    tag: str = "latest"
    pull: bool = True
    """Try `docker pull` when an official image is not present locally."""
    base_suite: str = "bookworm"
    """Debian release of the offline base image (bookworm has Python 3.11, bullseye 3.9)."""
    source: str = "auto"
    """auto: a local image, else the official one pulled, else an offline build; official:
    never build; build: always build offline."""


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([bkmg]?)$", re.I)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def size_bytes(text: str) -> int | None:
    """Docker's size notation (512m, 4g, 100k, bytes) in bytes; None when it is not one."""
    match = _SIZE.match(text.strip())
    return int(float(match[1]) * _UNITS[match[2].lower()]) if match else None


@dataclass(frozen=True)
class RetryPolicy:
    """How often an infrastructure failure is tried again within a run, and how long to wait:
    backoff_s, then x3 each time (5, 15, 45 s by default: a daemon restart fits inside)."""

    attempts: int = 4
    backoff_s: float = 5.0

    @property
    def tries(self) -> range:
        """Attempt numbers, from 1 (at least one attempt)."""
        return range(1, max(self.attempts, 1) + 1)

    def delay(self, attempt: int) -> float:
        return self.backoff_s * 3 ** (attempt - 1)
