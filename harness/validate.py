"""Dataset validation: each instance's gold patch must resolve it and the empty patch must not."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.config import SandboxLimits
from harness.errors import UserError
from harness.types import Instance, Verdict, VerdictStatus


@dataclass
class Validation:
    instance_id: str
    gold: Verdict | None
    empty: Verdict | None
    gold_with_network: Verdict | None = None
    """Set when the gold patch failed offline and was tried again with the network."""
    error: str = ""
    """A one-line reason the instance could not be validated at all (e.g. a missing image)."""

    @property
    def needs_network(self) -> bool:
        return self.gold_with_network is not None and self.gold_with_network.resolved

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and self.gold is not None
            and self.gold.resolved
            and self.empty is not None
            and self.empty.status is not VerdictStatus.RESOLVED
        )

    @property
    def note(self) -> str:
        if self.error:
            return self.error
        notes = []
        if self.gold and self.gold.fidelity:
            notes.append(f"fidelity: {self.gold.fidelity}")
        if self.gold and self.gold.durations.get("image_s", 0) > 5:
            notes.append(f"image ready in {self.gold.durations['image_s']:.0f} s")
        if self.needs_network:
            notes.append("gold passes only with the network")
        if self.gold and not self.gold.resolved:
            notes.append(f"gold {self.gold.status.value}: {self.gold.reason}")
        if self.empty and self.empty.resolved:
            notes.append("empty patch resolves: the tests do not decide this issue")
        return "; ".join(notes)


def validate_instance(
    verify: Callable[..., Verdict],
    instance: Instance,
    limits: SandboxLimits,
    network_check: bool = True,
) -> Validation:
    try:
        gold = verify(instance, instance.gold_patch, limits)
        empty = verify(instance, "", limits)
        result = Validation(instance.instance_id, gold, empty)
        if network_check and not gold.resolved and limits.network == "none":
            online = dataclasses.replace(limits, network="bridge")
            result.gold_with_network = verify(instance, instance.gold_patch, online)
    except UserError as exc:
        return Validation(instance.instance_id, None, None, error=str(exc))
    return result


def validate(
    verify: Callable[..., Verdict],
    instances: list[Instance],
    limits: SandboxLimits,
    workers: int = 1,
    network_check: bool = True,
    on_result: Callable[[Validation], None] | None = None,
) -> list[Validation]:
    """Validate every instance; one instance's failure never stops the others."""

    def one(instance: Instance) -> Validation:
        result = validate_instance(verify, instance, limits, network_check)
        if on_result:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, instances))
