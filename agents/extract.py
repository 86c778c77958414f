"""From a model's answer to a candidate patch, off the event loop and on every core.

At k = 250 the answers of one issue are mostly repeats, and each distinct one costs a parse,
an edit of the files in memory and a diff. `extract_all` makes each distinct answer once, in
a process pool shared by all issues, so the event loop keeps serving the model server's
responses while the cores extract; the checkout is only read (see `agents.edits.Files`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from agents.edit_formats import by_name
from agents.edits import EditError, Files
from agents.patches import PatchRejected, check_applies, diff_texts, normalise


@dataclass(frozen=True)
class Extracted:
    patch: str = ""
    sha: str | None = None
    reason: str | None = None
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What of a completion decides its patch: equal answers make equal candidates."""

    text: str
    truncated: bool


def extract(
    format_name: str, answer: Answer, root: str, shown: tuple[str, ...], drop_tests: bool
) -> Extracted:
    """The candidate patch an answer makes at the checkout `root` (never written)."""
    files = Files(Path(root))
    try:
        by_name(format_name).apply(answer.text, files, list(shown))
    except EditError as exc:
        if answer.truncated:
            return Extracted(reason=f"answer truncated at max_tokens: {exc}")
        return Extracted(reason=str(exc))
    changes = files.changes()
    if not changes:
        return Extracted(reason="the answer changes nothing")
    try:
        normal = normalise(diff_texts(changes), drop_tests)
        if normal.dropped:  # hunks or files left out: it must still apply to the base commit
            check_applies(Path(root), normal.text)
    except PatchRejected as exc:
        return Extracted(reason=str(exc))
    return Extracted(normal.text, normal.sha, None, normal.files)


_POOL: Executor | None = None
_POOL_BROKEN = False
"""The process pool could not start here: threads do the work from then on."""


def pool() -> Executor:
    """One process per core, started on first use (spawned: the harness has threads)."""
    global _POOL
    if _POOL is None:
        workers = int(os.environ.get("SWEM_EXTRACT_WORKERS") or os.cpu_count() or 1)
        _POOL = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_setup
        )
    return _POOL


def _worker_setup() -> None:
    """Ctrl-C reaches the whole process group: the harness stops its run and the pool, and a
    worker's own KeyboardInterrupt would only print a traceback per core. A worker whose
    harness died without shutting the pool down (a kill) exits too, instead of waiting on
    its queue for ever (seen once here: a worker outlived its bench by an hour)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()


async def in_pool(fn, *args):
    """`fn(*args)` in the extraction pool, awaited without blocking the event loop. Where
    the pool cannot start (a script calling the harness without an `if __name__ ==
    "__main__":` guard, which spawned processes re-import), a thread does the work."""
    global _POOL_BROKEN
    if not _POOL_BROKEN:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool(), fn, *args)
        except BrokenProcessPool:
            _POOL_BROKEN = True
    return await asyncio.to_thread(fn, *args)


async def extract_all(
    format_name: str,
    answers: list[Answer],
    root: Path,
    shown: tuple[str, ...],
    drop_tests: bool,
) -> dict[Answer, Extracted]:
    """Each distinct answer's candidate, made once."""
    distinct = list(dict.fromkeys(answers))
    done = await asyncio.gather(
        *(in_pool(extract, format_name, a, str(root), shown, drop_tests) for a in distinct)
    )
    return dict(zip(distinct, done, strict=True))
