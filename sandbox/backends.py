"""The sandbox backends by name (`--sandbox NAME`). A backend is one module that registers
itself here; the built-in ones are imported when first named, so using Docker never imports
Podman's module and a test's fake needs nothing but its own module and a `register` call."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from harness.errors import UserError
from harness.protocols import Backend

_FACTORIES: dict[str, Callable[[], Backend]] = {}
BUILTIN = {"docker": "sandbox.docker_backend", "podman": "sandbox.podman"}
"""Name -> the module that registers it."""


def register(name: str, factory: Callable[[], Backend]) -> None:
    _FACTORIES[name] = factory


def names() -> list[str]:
    return sorted({*BUILTIN, *_FACTORIES})


def get(name: str) -> Backend:
    if name not in _FACTORIES and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    if name not in _FACTORIES:
        raise UserError(f"--sandbox {name}: use one of {', '.join(names())}")
    return _FACTORIES[name]()
