# ruff: noqa: UP031, UP032
"""swe-monkeys' own record of a pytest run, written into the container after the eval script's
setup (install steps, git commands) has finished, next to its one-time key.

Loaded with `PYTEST_ADDOPTS=-p swem_guard`, so pytest imports it before setuptools plugins,
conftest.py files and any code of the repository. At import it reads and deletes its key, and
builds everything it records with inside one function: its state lives in closures, never in
a module attribute or an importable name. What the module exposes is the hook functions pytest
registers, nothing else; looking up any other name on it is recorded (signed) as an attempt to
reach the guard. Before every record and at the end it checks that its hooks are still
registered and that none of its functions (code, defaults, closure cells) was swapped; a
change is recorded as tampering. Each record is a JSON line with a sequence number, signed
with HMAC-SHA256; the finish event says how many came before it, so a record with lines
removed does not verify.

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


def _install(module_name):
    import hashlib
    import hmac
    import json
    import os
    import sys
    import time

    import pytest

    guard_dir = os.environ.get("SWEM_GUARD_DIR", "/opt/swem-guard")
    end_marker = ">>>>> swe-monkeys runner finished"
    module = sys.modules[module_name]
    try:
        with open(os.path.join(guard_dir, "key"), "rb") as f:
            key = f.read().strip()
        os.unlink(os.path.join(guard_dir, "key"))
    except OSError:
        return {}  # a second pytest in the same run, or an xdist worker: the first records
    fd = os.open(
        os.path.join(guard_dir, "report.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
    )
    stdout = os.dup(1)
    write, sign, sha256, dumps = os.write, hmac.new, hashlib.sha256, json.dumps
    monotonic = time.monotonic
    skip_exc, xfail_exc = pytest.skip.Exception, pytest.xfail.Exception
    get_module = sys.modules.get
    required, first = frozenset(), frozenset()
    try:  # the plan: read once and deleted like the key; none for a full run
        with open(os.path.join(guard_dir, "stop-on.json")) as f:
            plan = json.load(f)
        os.unlink(os.path.join(guard_dir, "stop-on.json"))
        required, first = frozenset(plan["required"]), frozenset(plan["first"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    seq = [0]
    outer, stopped, block_end, started, alarms = [], [], [], [], []
    """The config of the pytest run the key was armed for (pytest's own suite starts inner
    runs in the same process: their tests, exit status and end marker are not the run's),
    where the run stopped, the last test moved to the front, the session's start, and the
    tamperings already recorded."""
    snapshot = []

    def cells_of(function):
        return tuple(id(c.cell_contents) if filled(c) else None for c in function.__closure__ or ())

    def filled(cell):
        try:
            cell.cell_contents  # noqa: B018 - an empty cell raises
            return True
        except ValueError:
            return False

    def impls_of(manager, name):
        caller = getattr(manager.hook, name, None)
        if caller is None:
            return []
        if hasattr(caller, "get_hookimpls"):
            impls = caller.get_hookimpls()
        else:  # the pluggy of pytest 3.0-3.6
            impls = list(caller._wrappers) + list(caller._nonwrappers)
        return [impl.function for impl in impls if impl.plugin is module]

    def emit(record):
        record["seq"] = seq[0]
        seq[0] += 1
        body = dumps(record, sort_keys=True)
        mac = sign(key, body.encode("utf-8"), sha256).hexdigest()
        write(fd, (mac + " " + body + "\n").encode("utf-8"))

    def alarm(what):
        if what not in alarms:
            alarms.append(what)
            emit({"event": "tampered", "what": what})

    def finished():
        # pytest's summary may still sit in Python's buffer: out before the marker.
        for stream in (sys.stdout, sys.__stdout__, sys.stderr, sys.__stderr__):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed or replaced stream
                pass
        mac = sign(key, b"runner finished", sha256).hexdigest()
        write(stdout, ("\n" + end_marker + " " + mac + "\n").encode("utf-8"))

    def classify(call):
        """What the phase did, from its raw outcome alone."""
        if call.excinfo is None:
            return "passed"
        if call.excinfo.errisinstance(xfail_exc):
            return "xfailed"
        if call.excinfo.errisinstance(skip_exc):
            return "skipped"
        return "failed" if call.when == "call" else "error"

    def is_outer(config):
        return bool(outer) and config is outer[0]

    def take_snapshot(config):
        """What must stay as it is: every function of the guard (code, defaults, closure
        cells), the hooks the plugin manager holds for it, the module's names."""
        functions = [emit, alarm, finished, classify, is_outer, check, stop, take_snapshot]
        functions += [cells_of, filled, impls_of, __getattr__] + list(hooks.values())
        cells = [(f, f.__code__, f.__defaults__, f.__kwdefaults__, cells_of(f)) for f in functions]
        manager = config.pluginmanager
        registered = [(name, impls_of(manager, name)) for name in hooks]
        names = dict((name, id(value)) for name, value in module.__dict__.items())
        snapshot.append((cells, registered, manager, names))

    def check():
        if not snapshot:
            return
        cells, registered, manager, names = snapshot[0]
        for f, code, defaults, kwdefaults, contents in cells:
            same = f.__code__ is code and f.__defaults__ is defaults
            if not (same and f.__kwdefaults__ is kwdefaults and cells_of(f) == contents):
                alarm("function " + f.__name__ + " changed")
        for name, impls in registered:
            if impls_of(manager, name) != impls:
                alarm("hook " + name + " unregistered or replaced")
        now = dict((name, id(value)) for name, value in module.__dict__.items())
        if now != names or get_module(module_name) is not module:
            alarm("guard module changed")

    def stop(item, why):
        if stopped:
            return
        stopped.append(item.nodeid)
        emit({"event": "stopped", "nodeid": item.nodeid, "why": why})
        session = item.session
        reason = "swe-monkeys: stopped after " + item.nodeid + " (" + why + ")"
        if why == "failed" and hasattr(session, "shouldfail"):  # pytest >= 3.1: as -x (status 1)
            session.shouldfail = reason
        else:
            session.shouldstop = reason

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(config):
        if not outer:
            outer.append(config)
            take_snapshot(config)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(session, config, items):
        # Last, so the order other plugins chose is the one kept within both parts.
        if not is_outer(config) or not first:
            return
        front = [i for i in items if i.nodeid in first]
        rest = [i for i in items if i.nodeid not in first]
        if front and rest and list(map(id, items)) != list(map(id, front + rest)):
            items[:] = front + rest
            block_end.append(front[-1])
            emit({"event": "reordered", "first": len(front)})

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(item, call):
        # Outermost wrapper: the report it sees is the final one, after every other plugin.
        outcome = yield
        if not is_outer(item.config):
            return
        check()
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
        check()
        # The final report, as the log will show it: an xfail-marked test that fails is
        # reported skipped (XFAIL, passing for swebench) and does not stop the run.
        if reported == "failed" and call.when in ("setup", "call") and item.nodeid in required:
            stop(item, "failed")
        elif call.when == "teardown" and block_end and item is block_end[0]:
            stop(item, "checked")

    def pytest_sessionstart(session):
        if is_outer(session.config):
            started.append(monotonic())

    def pytest_sessionfinish(session, exitstatus):
        if is_outer(session.config):
            check()
            # pytest's own seconds (collection and tests), apart from the eval script's
            # reinstall
            seconds = monotonic() - started[0] if started else None
            count = seq[0]  # the records before this one
            emit(
                {
                    "event": "finish",
                    "exitstatus": int(exitstatus),
                    "seconds": seconds,
                    "count": count,
                }
            )

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(config):
        if is_outer(config):
            check()
            finished()

    def __getattr__(name):
        # Only names the module does not have come here (Python 3.7 on): pytest and pluggy
        # ask for pytest_* and dunder names; anything else is someone looking for the guard.
        if not (name.startswith("pytest_") or name.startswith("__")):
            alarm("guard module asked for " + repr(name)[:60])
        raise AttributeError(name)

    hooks = {
        "pytest_configure": pytest_configure,
        "pytest_collection_modifyitems": pytest_collection_modifyitems,
        "pytest_runtest_makereport": pytest_runtest_makereport,
        "pytest_sessionstart": pytest_sessionstart,
        "pytest_sessionfinish": pytest_sessionfinish,
        "pytest_unconfigure": pytest_unconfigure,
    }
    return dict(hooks, __getattr__=__getattr__)


globals().update(_install(__name__))
del _install
