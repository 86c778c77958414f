"""The grading channels, without Docker: signed records, the end marker, and each way the
channels can disagree. The hostile-patch suite runs the same code against real pytest."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys

from sandbox import guard

KEY = "k" * 64
F2P = "tests/t.py::test_fix"
P2P = "tests/t.py::test_old"


def line(record: dict, key: str = KEY) -> bytes:
    body = json.dumps(record, sort_keys=True).encode()
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest().encode() + b" " + body


def phase(nodeid, when, raw, reported=None, wasxfail=False) -> bytes:
    record = {"nodeid": nodeid, "when": when, "raw": raw, "reported": reported or raw}
    return line({**record, "wasxfail": wasxfail})


def record(*lines: bytes, exitstatus: int | None = 0) -> bytes:
    """The lines numbered in order as the plugin numbers them (a forged line keeps its bad
    signature and takes no number), then the finish event counting them."""
    out, n = [], 0
    for signed in lines:
        mac, _, body = signed.partition(b" ")
        if hmac.compare_digest(mac.decode(), line(json.loads(body)).partition(b" ")[0].decode()):
            signed, n = line({**json.loads(body), "seq": n}), n + 1
        out.append(signed)
    if exitstatus is not None:
        out.append(line({"event": "finish", "exitstatus": exitstatus, "count": n, "seq": n}))
    return b"\n".join(out) + b"\n"


def passing(nodeid) -> list[bytes]:
    return [phase(nodeid, w, "passed") for w in ("setup", "call", "teardown")]


def judge(data: bytes, log_f2p="PASSED", log_p2p="PASSED", log_exit=0, **kw):
    channel = guard.read_channel(data, KEY, key_left=kw.pop("key_left", False))
    return guard.judge(
        {F2P: log_f2p},
        {P2P: log_p2p},
        log_exit,
        channel,
        kw.pop("expected", True),
        kw.pop("end_found", True),
    )


def test_agreeing_channels_resolve():
    j = judge(record(*passing(F2P), *passing(P2P)))
    assert j.resolved and not j.suspicious and j.channel == "pytest-plugin"


def test_a_forged_line_is_suspicious():
    forged = phase(F2P, "call", "passed").replace(b"passed", b"passed ", 1)
    j = judge(record(*passing(F2P), *passing(P2P), forged))
    assert not j.resolved and "forged" in j.suspicious
    other_key = line({"event": "finish", "exitstatus": 0}, key="x" * 64)
    assert "forged" in judge(record(*passing(F2P), *passing(P2P), other_key)).suspicious


def test_a_failing_call_reported_passed_is_a_rewritten_report():
    data = record(phase(F2P, "call", "failed", reported="passed"), *passing(P2P))
    j = judge(data)
    assert not j.resolved and "report rewritten" in j.suspicious


def test_xfail_does_not_count_for_fail_to_pass():
    j = judge(
        record(phase(F2P, "call", "xfailed", reported="skipped"), *passing(P2P)), log_f2p="XFAIL"
    )
    assert not j.resolved and not j.suspicious
    assert "counts only when it PASSED" in j.reason


def test_output_after_pytest_and_a_changed_exit_status():
    j = judge(
        record(phase(F2P, "call", "failed"), *passing(P2P), exitstatus=1),
        log_exit=0,
        log_f2p="FAILED",
    )
    assert "exited 0" in j.suspicious
    ghost = judge(record(*passing(P2P), exitstatus=0))  # the log claims F2P, pytest never ran it
    assert "never ran it" in ghost.suspicious


def test_a_plugin_that_never_loaded_where_pytest_runs():
    assert "never loaded" in judge(b"", key_left=True).suspicious
    log_only = judge(b"", key_left=True, expected=False)
    assert log_only.resolved and log_only.channel == "log"


def test_pytest_that_did_not_start_is_unresolved_not_suspicious():
    """A candidate that breaks pytest's own code (pytest's repo) or a conftest import stops
    pytest before any plugin loads: no channel claims a pass, so nothing disagrees."""
    channel = guard.read_channel(b"", KEY, key_left=True)
    j = guard.judge({F2P: "MISSING"}, {P2P: "MISSING"}, 1, channel, True, False, "SyntaxError: bad")
    assert not j.resolved and not j.suspicious
    assert j.reason == "pytest did not start: SyntaxError: bad"
    log = "+ : '>>>>> Start Test Output'\nTraceback (most recent call last):\n  File x\n"
    log += "ImportError: cannot import name 'y'\n+ : '>>>>> End Test Output'\n"
    markers = (">>>>> Start Test Output", ">>>>> End Test Output")
    assert guard.start_error(log, *markers) == "ImportError: cannot import name 'y'"


def test_an_empty_record_is_never_graded_from_the_log():
    """The guard's per-test lines dropped, its finish event kept: the log alone says the tests
    passed, which the runner never recorded."""
    j = judge(record())
    assert not j.resolved and "never ran it" in j.suspicious and j.channel == "pytest-plugin"
    honest = judge(record(), log_f2p="FAILED", log_p2p="FAILED")
    assert not honest.resolved and not honest.suspicious
    assert honest.fail_to_pass == {F2P: "MISSING"}


def test_lines_removed_or_replayed_do_not_verify():
    whole = record(phase(F2P, "call", "failed"), *passing(P2P)).splitlines()
    assert "missing" in judge(b"\n".join(whole[1:])).suspicious  # the failure cut out
    assert "missing" in judge(b"\n".join([*whole, whole[1]])).suspicious  # a line replayed


def test_a_second_passing_line_does_not_cover_a_failure():
    channel = guard.read_channel(
        record(phase(F2P, "call", "failed"), phase(F2P, "call", "passed")), KEY, False
    )
    assert channel.tests[F2P] == "FAILED"


def test_the_guard_reporting_itself_tampered_is_suspicious():
    j = judge(record(*passing(F2P), *passing(P2P), line({"event": "tampered", "what": "x"})))
    assert not j.resolved and j.suspicious == "suspicious: the guard was tampered with (x)"


def test_the_record_is_named_as_the_repos_parser_names_tests():
    """swebench's parser keeps a test name up to its first space (flask-5063:
    `test_locate_app[cliapp.factory-create_app2("foo", "bar")]`), and pylint's shortens
    path-like parametrize ids (7080: `test_stdin[/mymodule.py]`)."""
    full = 'tests/t.py::test_old[app("foo", "bar")]'
    cut = full.split(" ")[0]

    def parse(text):  # as swebench's pytest parser names tests
        return {line.split()[1]: line.split()[0] for line in text.splitlines()}

    channel = guard.read_channel(record(*passing(F2P), *passing(full)), KEY, False)
    channel = guard.named_as_the_log(channel, parse)
    j = guard.judge({F2P: "PASSED"}, {cut: "PASSED"}, 0, channel, True, True)
    assert j.resolved, j.reason
    worse = guard.read_channel(
        record(*passing(F2P), *passing(full), phase(full.replace("bar", "baz"), "call", "failed")),
        KEY,
        False,
    )
    assert guard.named_as_the_log(worse, parse).tests[cut] == "FAILED"  # the worst stands


def test_a_name_no_runner_gives_is_graded_from_the_log():
    """pytest-5227 lists "[100%]" in PASS_TO_PASS: swebench's parser read it from a test's
    output. Gold's log has it; the runner cannot, and that is no disagreement."""
    channel = guard.read_channel(record(*passing(F2P), *passing(P2P)), KEY, False)
    j = guard.judge({F2P: "PASSED"}, {P2P: "PASSED", "[100%]": "PASSED"}, 0, channel, True, True)
    assert j.resolved and not j.suspicious, j.reason
    absent = guard.judge({F2P: "PASSED"}, {P2P: "PASSED", "[": "MISSING"}, 0, channel, True, True)
    assert not absent.resolved and absent.pass_to_pass["["] == "MISSING"
    ghost = guard.judge(
        {F2P: "PASSED"}, {"tests/t.py::test_gone": "PASSED"}, 0, channel, True, True
    )
    assert "never ran it" in ghost.suspicious  # a real node id still must have run


NESTED = """
import pytest

def test_outer(tmp_path):
    (tmp_path / "test_inner.py").write_text("def test_inner(): assert False")
    assert pytest.main(["-q", "-p", "no:cacheprovider", str(tmp_path)]) == 1
"""


def run_guarded(tmp_path, tests: dict[str, str], plan: dict | None = None):
    """Real pytest with the plugin armed as the eval script arms it; (run, channel, guard dir)."""
    guard_dir, work = tmp_path / "guard", tmp_path / "work"
    guard_dir.mkdir(parents=True)
    work.mkdir()
    (guard_dir / f"{guard.PLUGIN}.py").write_text(guard.plugin_source())
    (guard_dir / "key").write_text(KEY)
    if plan is not None:
        (guard_dir / "stop-on.json").write_text(json.dumps(plan))
    for name, text in tests.items():
        (work / name).write_text(text)
    env = {**os.environ, "SWEM_GUARD_DIR": str(guard_dir), "PYTHONPATH": str(guard_dir)}
    env["PYTEST_ADDOPTS"] = f"-p {guard.PLUGIN}"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", *tests],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    channel = guard.read_channel((guard_dir / "report.jsonl").read_bytes(), KEY, False)
    return run, channel, guard_dir


def test_a_pytest_run_inside_the_tests_is_not_the_runs_record(tmp_path):
    """pytest's own suite calls pytest.main in-process (test_invoke_plugin_api), which loads
    the plugin again through PYTEST_ADDOPTS: the inner run's tests, exit status and end marker
    are not the run's (pytest-11148's gold log was cut at an inner marker and lost every
    outcome)."""
    run, channel, _ = run_guarded(tmp_path, {"test_nested.py": NESTED})
    assert run.returncode == 0, run.stdout + run.stderr
    assert channel.tests == {"test_nested.py::test_outer": "PASSED"}
    assert channel.exitstatus == 0 and not channel.forged
    assert run.stdout.count(guard.END_MARKER) == 1
    assert run.stdout.rstrip().splitlines()[-1].startswith(guard.END_MARKER)


ORDERED = """
import pytest

def test_old(): pass
def test_other_fails(): assert False
@pytest.mark.xfail
def test_known_bug(): assert False
def test_fix(): assert False
def test_later(): pass
def test_after_that(): assert False
"""


def test_the_run_ends_at_the_first_required_test_that_fails(tmp_path):
    """Not at a failing test nobody requires, nor at an xfail-marked one (swebench counts
    XFAIL as passing), but at the first required FAILED; what ran before ran in order."""
    required = [f"test_o.py::{t}" for t in ("test_old", "test_known_bug", "test_fix", "test_later")]
    plan = {"required": required, "first": []}
    run, channel, guard_dir = run_guarded(tmp_path, {"test_o.py": ORDERED}, plan)
    assert (channel.stopped_at, channel.stop_why) == ("test_o.py::test_fix", "failed")
    assert not channel.reordered
    assert channel.tests == {
        "test_o.py::test_old": "PASSED",
        "test_o.py::test_other_fails": "FAILED",
        "test_o.py::test_known_bug": "XFAIL",
        "test_o.py::test_fix": "FAILED",
    }
    assert channel.exitstatus == 1 == run.returncode, run.stdout
    assert "FAILED test_o.py::test_fix" in run.stdout and "test_later" not in run.stdout
    assert not (guard_dir / "stop-on.json").exists()  # read once, like the key
    assert run.stdout.rstrip().splitlines()[-1].startswith(guard.END_MARKER)


def test_fail_to_pass_tests_run_first_and_a_failure_ends_the_run(tmp_path):
    plan = {
        "required": ["test_o.py::test_old", "test_o.py::test_fix"],
        "first": ["test_o.py::test_fix"],
    }
    run, channel, _ = run_guarded(tmp_path, {"test_o.py": ORDERED}, plan)
    assert channel.reordered and channel.stop_why == "failed"
    assert channel.tests == {"test_o.py::test_fix": "FAILED"}, run.stdout


def test_fail_to_pass_tests_that_pass_first_end_the_run_for_an_ordered_one(tmp_path):
    """After the moved tests the run stops ("checked"): its order is not the official one, so
    the harness runs again in order for the verdict."""
    plan = {"required": ["test_o.py::test_later"], "first": ["test_o.py::test_later"]}
    run, channel, _ = run_guarded(tmp_path, {"test_o.py": ORDERED}, plan)
    assert channel.reordered and channel.stop_why == "checked"
    assert channel.tests == {"test_o.py::test_later": "PASSED"}, run.stdout
    in_place = {"required": ["test_o.py::test_old"], "first": ["test_o.py::test_old"]}
    run, channel, _ = run_guarded(tmp_path / "2", {"test_o.py": ORDERED}, in_place)
    assert not channel.reordered and channel.stopped_at is None  # already first: a full run
    assert len(channel.tests) == 6


def test_without_a_plan_every_test_runs(tmp_path):
    run, channel, _ = run_guarded(tmp_path, {"test_o.py": ORDERED})
    assert channel.stopped_at is None and len(channel.tests) == 6
    assert 0 < channel.seconds < 60  # pytest's own time, for choosing FAIL_TO_PASS first
    assert channel.tests["test_o.py::test_after_that"] == "FAILED"


def test_the_log_is_cut_at_the_signed_marker():
    mac = hmac.new(KEY.encode(), b"runner finished", hashlib.sha256).hexdigest()
    log = (
        f"PASSED {P2P}\nFAILED {F2P}\n{guard.END_MARKER} {'0' * 64}\n"  # an unsigned copy
        f"{guard.END_MARKER} {mac}\nPASSED {F2P}\n>>>>> End Test Output\n"
    )
    cut, found = guard.cut_at_end(log, KEY, (">>>>> End Test Output",))
    assert found and f"PASSED {F2P}" not in cut and ">>>>> End Test Output" in cut
    assert f"FAILED {F2P}" in cut


def test_a_spec_cpu_request_is_a_floor_under_the_cpu_limit():
    import os

    from harness.config import SandboxLimits
    from harness.types import Instance
    from sandbox.verifier import Verifier

    pylint = Instance(
        "pylint-dev__pylint-7114", "pylint-dev/pylint", "c" * 40, "", "2.15", "", "", (), ()
    )
    flask = Instance("pallets__flask-4045", "pallets/flask", "c" * 40, "", "2.0", "", "", (), ())
    one = SandboxLimits(cpus=1.0)
    assert Verifier.limits_for(pylint, one).cpus == min(2.0, float(os.cpu_count() or 1))
    assert Verifier.limits_for(flask, one).cpus == 1.0


def test_pylints_parser_names_are_matched():
    from harness.types import Instance
    from sandbox import swebench_adapter

    inst = Instance(
        "pylint-dev__pylint-7080", "pylint-dev/pylint", "c" * 40, "", "2.15", "", "", (), ()
    )
    nodeid = "tests/test_self.py::TestRunTC::test_stdin[/testbed/tests/mymodule.py-m-/x.py]"
    channel = guard.read_channel(record(*passing(nodeid)), KEY, False)
    named = guard.named_as_the_log(
        channel, lambda text: swebench_adapter.parse_statuses(inst, text)
    )
    assert named.tests == {"tests/test_self.py::TestRunTC::test_stdin[/x.py]": "PASSED"}


def test_what_the_setup_may_not_change():
    """The engine's list of a container's changes after the eval script's setup: the
    editable install's files and path-only .pth files pass; what runs before the guard
    does not."""
    from sandbox import runner_env

    site = "/opt/testbed/lib/python3.9/site-packages"
    files = {f"{site}/minicalc.pth": b"/testbed\n", f"{site}/evil.pth": b"import os\n"}
    honest = [
        ("C", "/testbed/src/x.py"),
        ("A", f"{site}/__editable__.pkg-1.0.pth"),
        ("A", f"{site}/__editable___pkg_1_0_finder.py"),
        ("A", f"{site}/pkg-1.0.dist-info/RECORD"),
        ("C", f"{site}/minicalc.pth"),
        ("C", f"{site}/pylint"),
        ("C", "/opt/testbed/bin/pylint"),
        ("D", f"{site}/old.pth"),
        ("A", "/root/.cache/pip/x"),
        ("C", "/root/.gitconfig"),
    ]
    assert runner_env.trace(honest, "pylint-dev/pylint", files.__getitem__) is None
    for change in [
        ("A", f"{site}/evil.pth"),
        ("A", "/tmp/x/sitecustomize.py"),
        ("C", f"{site}/_pytest/runner.py"),
        ("C", f"{site}/pluggy/_hooks.py"),
        ("C", "/opt/testbed/bin/pytest"),
        ("C", "/opt/testbed/bin/python3.9"),
        ("A", "/etc/ld.so.preload"),
        ("C", "/opt/testbed/lib/python3.9/os.py"),
        ("A", "/testbed/.git/hooks/post-checkout"),
        ("C", "/testbed/.git/config"),
        ("C", "/opt/swem/services.sh"),
        ("A", "/opt/swem-guard/swem_guard.py"),
    ]:
        assert runner_env.trace([change], "pylint-dev/pylint", files.__getitem__) == " ".join(
            change
        ), change
    # pytest's own repo reinstalls its launcher
    assert runner_env.trace([("C", "/opt/testbed/bin/pytest")], "pytest-dev/pytest") is None
