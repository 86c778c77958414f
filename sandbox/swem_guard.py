# ruff: noqa: UP031, UP032
"""swe-monkeys' own record of a pytest run, copied into the container next to its key.

Loaded with `PYTEST_ADDOPTS=-p swem_guard`, so pytest imports it before setuptools plugins,
conftest.py files and any code of the repository. At import it reads and deletes its one-time
key, and keeps local references to what it writes with, so code that the patch brings in later
can neither read the key nor reach the record through the names it uses. Each record is a
JSON line signed with HMAC-SHA256; the harness accepts only lines that verify.

What it records is decided from the raw call (did the test function raise, and what), not from
the TestReport that plugins and patched code may rewrite: a failure turned into `xfail` is
recorded as xfailed, an outcome forced to "passed" is recorded as what the call did. After the
run it prints a signed end marker to the real stdout; the harness ignores anything printed
after it (an atexit hook printing PASSED lines, for one).

Given a plan (written beside the key unless --full-tests: the run's required tests, and maybe
the FAIL_TO_PASS tests to run first), it ends the run after the first required test whose
final report failed in setup or call, as pytest's `-x` would: a required test that failed
decides the verdict. With a "first" list it also moves those tests to the front (keeping the
order within both parts) and ends the run after them: the harness then runs the tests again
in the official order for the verdict. Signed records say that the order changed and where
and why the run stopped.

It must run on every Python and pytest an SWE-bench environment has (3.5 on), hence no
f-strings and no annotations.
"""

import hashlib
import hmac
import json
import os
import sys
import time

import pytest

GUARD_DIR = os.environ.get("SWEM_GUARD_DIR", "/opt/swem-guard")
END_MARKER = ">>>>> swe-monkeys runner finished"


def _arm():
    key_path = os.path.join(GUARD_DIR, "key")
    try:
        with open(key_path, "rb") as f:
            key = f.read().strip()
        os.unlink(key_path)
    except OSError:
        return None  # a second pytest in the same run, or an xdist worker: the first records
    fd = os.open(
        os.path.join(GUARD_DIR, "report.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
    )
    stdout = os.dup(1)
    write, sign, sha256, dumps = os.write, hmac.new, hashlib.sha256, json.dumps
    skip_exc, xfail_exc = pytest.skip.Exception, pytest.xfail.Exception

    def emit(record):
        body = dumps(record, sort_keys=True)
        mac = sign(key, body.encode("utf-8"), sha256).hexdigest()
        write(fd, (mac + " " + body + "\n").encode("utf-8"))

    def finished():
        # pytest's summary may still sit in Python's buffer: out before the marker.
        for stream in (sys.stdout, sys.__stdout__, sys.stderr, sys.__stderr__):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed or replaced stream
                pass
        mac = sign(key, b"runner finished", sha256).hexdigest()
        write(stdout, ("\n" + END_MARKER + " " + mac + "\n").encode("utf-8"))

    def classify(call):
        """What the phase did, from its raw outcome alone."""
        if call.excinfo is None:
            return "passed"
        if call.excinfo.errisinstance(xfail_exc):
            return "xfailed"
        if call.excinfo.errisinstance(skip_exc):
            return "skipped"
        return "failed" if call.when == "call" else "error"

    return emit, finished, classify, _plan()


def _plan():
    """(required tests, tests to run first), read once and deleted like the key; empty sets
    for a full run."""
    path = os.path.join(GUARD_DIR, "stop-on.json")
    try:
        with open(path) as f:
            plan = json.load(f)
        os.unlink(path)
        return frozenset(plan["required"]), frozenset(plan["first"])
    except (OSError, ValueError, TypeError, KeyError):
        return frozenset(), frozenset()


_ARMED = _arm()
_STOPPED = []
_BLOCK_END = []
"""The last of the tests moved to the front, when the order changed."""
_OUTER = []
"""The config of the pytest run the key was armed for. pytest's own suite (pytester) starts
pytest runs in the same process, which load this module again through PYTEST_ADDOPTS: their
tests, exit status and end marker are not the run's and are not recorded."""


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if not _OUTER:
        _OUTER.append(config)


def _outer(config):
    return _ARMED is not None and bool(_OUTER) and config is _OUTER[0]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    # Last, so the order other plugins chose is the one kept within both parts.
    if not _outer(config) or not _ARMED[3][1]:
        return
    first = _ARMED[3][1]
    front = [i for i in items if i.nodeid in first]
    rest = [i for i in items if i.nodeid not in first]
    if front and rest and list(map(id, items)) != list(map(id, front + rest)):
        items[:] = front + rest
        _BLOCK_END.append(front[-1])
        _ARMED[0]({"event": "reordered", "first": len(front)})


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Outermost wrapper: the report it sees is the final one, after every other plugin.
    outcome = yield
    if not _outer(item.config):
        return
    emit, _, classify, (required, _first) = _ARMED
    try:
        report = outcome.get_result()
        reported, wasxfail = report.outcome, hasattr(report, "wasxfail")
    except BaseException:  # noqa: B036 - a broken report is itself worth recording
        reported, wasxfail = "broken", False
    emit(
        {
            "nodeid": item.nodeid,
            "when": call.when,
            "raw": classify(call),
            "reported": reported,
            "wasxfail": wasxfail,
        }
    )
    # The final report, as the log will show it: an xfail-marked test that fails is reported
    # skipped (XFAIL, passing for swebench) and does not stop the run.
    if reported == "failed" and call.when in ("setup", "call") and item.nodeid in required:
        _stop(item, emit, "failed")
    elif call.when == "teardown" and _BLOCK_END and item is _BLOCK_END[0]:
        _stop(item, emit, "checked")


def _stop(item, emit, why):
    if _STOPPED:
        return
    _STOPPED.append(item.nodeid)
    emit({"event": "stopped", "nodeid": item.nodeid, "why": why})
    session = item.session
    reason = "swe-monkeys: stopped after " + item.nodeid + " (" + why + ")"
    if why == "failed" and hasattr(session, "shouldfail"):  # pytest >= 3.1: as -x (status 1)
        session.shouldfail = reason
    else:
        session.shouldstop = reason


_STARTED = []


def pytest_sessionstart(session):
    if _outer(session.config):
        _STARTED.append(time.monotonic())


def pytest_sessionfinish(session, exitstatus):
    if _outer(session.config):
        # pytest's own seconds (collection and tests), apart from the eval script's reinstall
        seconds = time.monotonic() - _STARTED[0] if _STARTED else None
        _ARMED[0]({"event": "finish", "exitstatus": int(exitstatus), "seconds": seconds})


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if _outer(config):
        _ARMED[1]()
