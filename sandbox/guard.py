"""Grading that a candidate cannot talk its way through (issue #12).

Three channels say how the tests went: the log (what swebench parses), the eval script's record
of the test command's exit status, and our pytest plugin's signed record (swem_guard.py), which
the candidate cannot write without the key it never sees. Our verdict:

- reads test outcomes from the plugin's record where the runner is pytest, else from the log;
- ignores everything the log holds after the plugin's signed end marker;
- counts a FAIL_TO_PASS test only when it PASSED (xfail, xpass and skip do not, whatever the
  official grading says; PASS_TO_PASS keeps the official rule);
- is `suspicious`, with the reason, when the channels disagree: a forged record, a report
  rewritten to "passed" over a failing call, a plugin that never loaded, a log claiming a test
  the runner never ran, or an exit status that changed after pytest finished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

GUARD_DIR = "/opt/swem-guard"
PLUGIN = "swem_guard"
KEY_PATH = f"{GUARD_DIR}/key"
REPORT_PATH = f"{GUARD_DIR}/report.jsonl"
STOP_PATH = f"{GUARD_DIR}/stop-on.json"
"""The run's plan: {"required": [...], "first": [...]}; the plugin ends the run after the first
required test that fails, and after the "first" tests when it moved them to the front."""
END_MARKER = ">>>>> swe-monkeys runner finished"
PASSING_LOG = {"PASSED", "XFAIL"}
"""What swebench's grading counts as passing."""


def plugin_source() -> str:
    return (Path(__file__).with_name(f"{PLUGIN}.py")).read_text()


def new_key() -> str:
    return secrets.token_hex(32)


def files(key: str) -> dict[str, str]:
    """The plugin and its one-time key, as a sandbox's `write_files` takes them."""
    return {f"{GUARD_DIR}/{PLUGIN}.py": plugin_source(), KEY_PATH: key}


def record(session) -> tuple[bytes, bool]:
    """The plugin's record from a session, and whether its key is still there: the plugin
    creates the record in the same step that deletes the key, so no record means it never
    loaded (one read, not two; a candidate that deletes the record only makes its own run
    suspicious)."""
    try:
        return session.read_file(REPORT_PATH), False
    except FileNotFoundError:
        return b"", True


def env_lines() -> list[str]:
    """Shell lines that load the plugin into any pytest the eval script starts."""
    return [
        f"export SWEM_GUARD_DIR={GUARD_DIR}",
        f'export PYTHONPATH="{GUARD_DIR}${{PYTHONPATH:+:$PYTHONPATH}}"',
        f'export PYTEST_ADDOPTS="-p {PLUGIN} ${{PYTEST_ADDOPTS:-}}"',
    ]


def expects_plugin(test_cmd: str) -> bool:
    """Where the plugin must load: pytest run directly. tox (sphinx) drops the environment and
    other runners (django, sympy) are not pytest; there the log is the only record."""
    return "pytest" in test_cmd and "tox" not in test_cmd


def _sign(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Channel:
    """What the plugin recorded, after checking every signature."""

    loaded: bool = False
    tests: dict[str, str] = field(default_factory=dict)
    """nodeid -> PASSED, FAILED, ERROR, SKIPPED, XFAIL or XPASS."""
    exitstatus: int | None = None
    seconds: float | None = None
    """pytest's own time, session start to finish (the eval script's reinstall excluded)."""
    forged: int = 0
    tampered: list[str] = field(default_factory=list)
    stopped_at: str | None = None
    """The test after which the plugin ended the run (None: it ran on)."""
    stop_why: str = ""
    """"failed" (a required test failed) or "checked" (the tests run first are done)."""
    reordered: bool = False
    """The plugin moved tests to the front: this run's order is not the official one."""
    tampered_guard: list[str] = field(default_factory=list)
    """What the plugin found changed in itself (a swapped function, an unregistered hook, a
    lookup of a name it does not have)."""
    lost_lines: bool = False
    """The signed lines are not one unbroken sequence, or fewer than the finish event
    counted: lines were removed or replayed."""


RAW_RANK = ("error", "failed", "xfailed", "skipped", "passed")
"""A phase recorded twice keeps its worst outcome: a second, passing line cannot cover a
failure."""


def read_channel(data: bytes, key: str, key_left: bool) -> Channel:
    channel = Channel(loaded=not key_left)
    phases: dict[str, dict[str, dict]] = {}
    seqs: list = []
    for line in data.splitlines():
        mac, _, body = line.partition(b" ")
        if not hmac.compare_digest(mac.decode(errors="replace"), _sign(key, body)):
            channel.forged += 1
            continue
        record = json.loads(body)
        seqs.append(record.get("seq"))
        if record.get("event") == "finish":
            channel.exitstatus, channel.seconds = record["exitstatus"], record.get("seconds")
            channel.lost_lines |= record.get("count") != record.get("seq")
        elif record.get("event") == "stopped":
            channel.stopped_at, channel.stop_why = record["nodeid"], record["why"]
        elif record.get("event") == "reordered":
            channel.reordered = True
        elif record.get("event") == "tampered":
            channel.tampered_guard.append(str(record.get("what")))
        else:
            _keep_worst(phases.setdefault(record["nodeid"], {}), record)
            if _rewritten(record):
                channel.tampered.append(record["nodeid"])
    channel.lost_lines |= seqs != list(range(len(seqs)))
    for nodeid, by_phase in phases.items():
        channel.tests[nodeid] = _status(by_phase)
    return channel


def _keep_worst(by_phase: dict[str, dict], record: dict) -> None:
    seen = by_phase.get(record["when"])
    rank = RAW_RANK.index
    if seen is None or rank(record["raw"]) < rank(seen["raw"]):
        by_phase[record["when"]] = record


def _rewritten(record: dict) -> bool:
    return (
        record["raw"] in ("failed", "error")
        and record["reported"] == "passed"
        and not record["wasxfail"]
    )


WORST = ("ERROR", "FAILED", "XPASS", "XFAIL", "SKIPPED", "PASSED")


def named_as_the_log(channel: Channel, parse) -> Channel:
    """The record's outcomes under the names swebench's parser for the repo gives them (it
    cuts names at a space, shortens path-like parametrize ids, ...): our outcomes are written
    as `-rA` lines and read back with that parser. Where several tests share a name, the
    worst outcome stands (written last, as the parser keeps the last line)."""
    lines = sorted(channel.tests.items(), key=lambda item: -WORST.index(item[1]))
    renamed = parse("\n".join(f"{status} {nodeid}" for nodeid, status in lines))
    return dataclasses.replace(channel, tests=renamed)


def _status(by_phase: dict[str, dict]) -> str:
    if any(r["raw"] == "error" for r in by_phase.values()):
        return "ERROR"
    call = by_phase.get("call")
    if call is None:  # skipped (or failed) in setup
        setup = by_phase.get("setup", {})
        return "SKIPPED" if setup.get("raw") == "skipped" else "ERROR"
    raw, wasxfail = call["raw"], call["wasxfail"]
    if raw == "passed":
        return "XPASS" if wasxfail else "PASSED"
    if raw == "failed":
        return "XFAIL" if wasxfail else "FAILED"
    return {"xfailed": "XFAIL", "skipped": "SKIPPED"}[raw]


def cut_at_end(log: str, key: str, keep: tuple[str, ...]) -> tuple[str, bool]:
    """The log up to the plugin's signed end marker, plus only the eval script's own marker
    lines (`keep`) after it, and whether the signed marker was there. Whatever else follows
    pytest's exit (an atexit hook, a process left running) cannot add a test outcome, and an
    unsigned copy of the marker printed by the candidate cuts nothing."""
    signed = f"{END_MARKER} {_sign(key, b'runner finished')}"
    head, found, tail = log.partition(signed)
    if not found:
        return log, False
    after = [line for line in tail.splitlines() if any(m in line for m in keep)]
    return head + "\n".join(after) + "\n", True


@dataclass(frozen=True)
class Judgement:
    resolved: bool
    suspicious: str
    """Why the channels disagree ('' when they agree)."""
    reason: str
    """Why it is not resolved ('' when resolved)."""
    fail_to_pass: dict[str, str]
    pass_to_pass: dict[str, str]
    channel: str
    """Where the outcomes came from: "pytest-plugin" or "log"."""


def judge(
    fail_to_pass: dict[str, str],
    pass_to_pass: dict[str, str],
    log_exit: int | None,
    channel: Channel,
    expected: bool,
    end_found: bool,
    start_error: str = "",
) -> Judgement:
    """Our verdict from the log's statuses (already cut at the end marker), the script's exit
    status and the plugin's record. Where the plugin loaded, outcomes come from its record
    alone, even an empty one: a required test it did not record did not pass. `start_error`:
    why pytest itself did not start, from the log (its traceback or usage error)."""
    suspicious = _disagreement(fail_to_pass, pass_to_pass, log_exit, channel, expected, end_found)
    if expected and not channel.loaded and not _claims(fail_to_pass, pass_to_pass):
        # pytest stopped before loading any plugin (a candidate that breaks pytest's own
        # code, or the imports of a conftest.py): nothing passed, no channel disagrees.
        return Judgement(
            resolved=False,
            suspicious="",
            reason=f"pytest did not start: {start_error or 'no test ran'}",
            fail_to_pass={t: "MISSING" for t in fail_to_pass},
            pass_to_pass={t: "MISSING" for t in pass_to_pass},
            channel="log",
        )
    use_channel = channel.loaded
    if use_channel:
        f2p = {t: _from_channel(channel, t, s) for t, s in fail_to_pass.items()}
        p2p = {t: _from_channel(channel, t, s) for t, s in pass_to_pass.items()}
    else:
        f2p, p2p = dict(fail_to_pass), dict(pass_to_pass)
    failing = [t for t, s in f2p.items() if s != "PASSED"]
    failing += [t for t, s in p2p.items() if s not in PASSING_LOG]
    reason = ""
    if failing:
        first = failing[0]
        status = f2p.get(first) or p2p.get(first)
        reason = f"{len(failing)} required test(s) not passing, e.g. {first} ({status})"
        if first in f2p and status in ("XFAIL", "XPASS", "SKIPPED"):
            reason += ": a FAIL_TO_PASS test counts only when it PASSED"
    elif not (f2p or p2p):
        reason = "no required tests"
    return Judgement(
        resolved=not failing and bool(f2p or p2p) and not suspicious,
        suspicious=suspicious,
        reason=suspicious or reason,
        fail_to_pass=f2p,
        pass_to_pass=p2p,
        channel="pytest-plugin" if use_channel else "log",
    )


_ERROR_LINE = re.compile(
    r"^(?:E\s+)?(?:[\w.]+\.)?\w*(?:Error|Exception|Interrupt)\b.*|^ERROR: .*|^\w+ while loading .*"
)


def start_error(log: str, start: str, end: str) -> str:
    """Why pytest stopped before any plugin loaded, from its output between the eval script's
    test markers: the last exception line of its traceback, or its usage error."""
    section = log.partition(start)[2].partition(end)[0] or log
    lines = [line.strip() for line in section.splitlines() if _ERROR_LINE.match(line.strip())]
    return lines[-1][:200] if lines else ""


def log_artifact(test: str) -> bool:
    """A listed name no test runner gives: swebench's parser read it from a test's own output
    (pytest-5227's PASS_TO_PASS holds "[100%]" and "[", from lines its logging tests print).
    Only the log can say anything about it, so it is graded from the log, as officially."""
    return "::" not in test and "/" not in test and not test.endswith(".py")


def _from_channel(channel: Channel, test: str, log_status: str) -> str:
    return log_status if log_artifact(test) else channel.tests.get(test, "MISSING")


def _claims(f2p: dict[str, str], p2p: dict[str, str]) -> list[str]:
    """Required tests (not log artefacts) that the log says passed."""
    return [t for t, s in {**f2p, **p2p}.items() if s in PASSING_LOG and not log_artifact(t)]


def _disagreement(f2p, p2p, log_exit, channel: Channel, expected: bool, end_found: bool) -> str:
    if channel.forged:
        return f"suspicious: {channel.forged} forged line(s) in the runner's record"
    if channel.tampered_guard:
        return f"suspicious: the guard was tampered with ({channel.tampered_guard[0]})"
    if channel.lost_lines:
        return "suspicious: lines are missing from the runner's signed record"
    if channel.tampered:
        return f"suspicious: report rewritten to passed over a failing call: {channel.tampered[0]}"
    if expected and not channel.loaded:
        claims = _claims(f2p, p2p)
        if claims:
            return (
                f"suspicious: the guard plugin never loaded into pytest, yet the log reports "
                f"{claims[0]} passing"
            )
        return ""
    if not channel.loaded:
        return ""
    if channel.exitstatus is None:
        if _claims(f2p, p2p):
            return "suspicious: pytest never finished, yet the log reports tests passing"
        return ""
    if not end_found:
        return "suspicious: pytest finished but its end marker is missing from the log"
    if log_exit is not None and (log_exit == 0) != (channel.exitstatus == 0):
        return (
            f"suspicious: pytest finished with status {channel.exitstatus} but the test "
            f"command exited {log_exit}"
        )
    for test, status in {**f2p, **p2p}.items():
        if status in PASSING_LOG and test not in channel.tests and not log_artifact(test):
            return f"suspicious: the log reports {test} {status}, but pytest never ran it"
        seen = channel.tests.get(test)
        if status == "PASSED" and seen is not None and seen != "PASSED":
            return f"suspicious: the log reports {test} PASSED, pytest recorded {seen}"
    return ""
