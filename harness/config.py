"""Options for verification: isolation limits and where images and repos come from."""

from __future__ import annotations

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
    cpus: float = 2.0
    """CPU quota in cores."""
    timeout_s: float = 1800.0
    """Wall clock for the tests; past it the container is killed (the official default is 1800)."""
    log_cap_bytes: int = 8 * 1024 * 1024
    """Captured output per command; past it the middle is dropped, keeping head and tail."""

    def to_dict(self) -> dict:
        return asdict(self)
