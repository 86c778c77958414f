"""One conformance suite for every sandbox implementation (after inspect_ai's self_check):
the local double and the real container sandbox (Docker, or Podman with SWEM_TEST_SANDBOX)
must behave alike at the seam."""

from __future__ import annotations

import dataclasses
import time

import pytest

from harness import minibench
from harness.protocols import SandboxError
from tests.conftest import BACKEND, TEST_LIMITS

LIMITS = dataclasses.replace(TEST_LIMITS, log_cap_bytes=64 * 1024)


@pytest.fixture(params=["local", BACKEND, "overlap"])
def provider(request, tmp_path):
    """(sandbox, image) with the minicalc repo at /testbed; "overlap" is the container
    sandbox starting the next container ahead and removing in the background (eval's way)."""
    if request.param == "local":
        from sandbox.local import LocalSandbox

        return LocalSandbox(), str(minibench.DATA / "repos" / "minicalc")
    request.getfixturevalue("docker_engine")
    make_pipeline = request.getfixturevalue("make_pipeline")
    pipe = make_pipeline()
    pipe.sandbox.overlap = request.param == "overlap"
    request.addfinalizer(pipe.sandbox.settle)  # background removals done before the test ends
    calc = next(
        i
        for i in request.getfixturevalue("mini_instances").values()
        if i.repo == "swe-monkeys/minicalc"
    )
    return pipe.sandbox, pipe.verifier.image_for(calc)


@pytest.fixture
def session(provider):
    sandbox, image = provider
    with sandbox.open(image, LIMITS, "contract") as s:
        yield s


def test_exec_returns_exit_code_and_both_streams(session):
    result = session.exec("echo to-out; echo to-err >&2; exit 3", timeout_s=30)
    assert result.returncode == 3 and not result.timed_out and not result.ok
    assert "to-out" in result.output and "to-err" in result.output


def test_default_workdir_is_the_testbed(session):
    result = session.exec("ls", timeout_s=30)
    assert result.ok
    assert {"minicalc", "tests", "README.md"} <= set(result.output.split())


def test_timeout_is_reported_promptly(session):
    start = time.monotonic()
    result = session.exec("sleep 60", timeout_s=2)
    assert result.timed_out and result.returncode is None
    assert time.monotonic() - start < 20


def test_quiesce_stops_what_commands_left_running(session, provider):
    """A daemon an earlier command started must not outlive quiesce (a container sandbox);
    the local double, whose processes are the host's, stops none and says so."""
    session.exec("(sleep 300 &) ; (sleep 301 &) ; true", timeout_s=30)
    stopped = session.quiesce()
    left = session.exec("ps -eo args 2>/dev/null || ls /proc", timeout_s=30).output
    if session.changes() is None:  # the local double
        assert stopped == 0
        session.exec("pkill -f 'sleep 30[01]' || true", timeout_s=30)
    else:
        assert stopped >= 2 and "sleep 300" not in left and "sleep 301" not in left


def test_changes_are_recorded_from_outside(session):
    """What a command wrote, as the engine lists it (None: the sandbox cannot tell)."""
    session.exec("echo x > /testbed/new.txt && echo y >> /testbed/README.md", timeout_s=30)
    changes = session.changes()
    if changes is None:
        return
    assert ("A", "/testbed/new.txt") in changes and ("C", "/testbed/README.md") in changes


def test_files_round_trip_as_bytes(session):
    data = bytes(range(256)) * 4
    session.write_file("/testbed/sub/dir/blob.bin", data)
    assert session.read_file("/testbed/sub/dir/blob.bin") == data
    assert session.exec("wc -c < sub/dir/blob.bin", timeout_s=30).output.strip() == "1024"
    with pytest.raises(FileNotFoundError):
        session.read_file("/testbed/no/such/file")


def test_several_files_are_written_at_once(session):
    files = {"/testbed/a.txt": "text\n", "/tmp/deep/b/c.bin": bytes(range(256)), "/d.sh": "x"}
    session.write_files(files)
    for path, content in files.items():
        expected = content.encode() if isinstance(content, str) else content
        assert session.read_file(path) == expected


def test_output_is_capped_keeping_head_and_tail(session):
    result = session.exec(
        "echo BEGIN; head -c 3000000 /dev/zero | tr '\\0' a; echo; echo END", timeout_s=60
    )
    assert result.ok and result.truncated_bytes > 2_000_000
    assert result.output.startswith("BEGIN") and result.output.rstrip().endswith("END")
    assert len(result.output) < 70 * 1024


def test_close_is_idempotent_and_final(provider):
    sandbox, image = provider
    with sandbox.open(image, LIMITS, "contract") as s:
        s.close()
        s.close()
        with pytest.raises(SandboxError):
            s.exec("true", timeout_s=5)


def test_cleanup_finds_sessions_left_open(provider):
    sandbox, image = provider
    held = sandbox.open(image, LIMITS, "contract-leak")
    held.__enter__()
    assert sandbox.cleanup("contract-leak") == 1
    assert sandbox.cleanup("contract-leak") == 0
    held.__exit__(None, None, None)


def test_every_session_is_a_fresh_sandbox(provider):
    """Also when containers are started ahead: what one session wrote, the next never sees,
    and after cleanup nothing of the run is left."""
    sandbox, image = provider
    for n in range(3):
        with sandbox.open(image, LIMITS, "contract-fresh") as s:
            assert s.exec("test ! -e mark && touch mark", timeout_s=30).ok, n
            if getattr(sandbox, "overlap", False) and n:
                assert sandbox.count("contract-fresh") >= 2  # this one and the next, ready
    sandbox.cleanup("contract-fresh")
    assert sandbox.count("contract-fresh") == 0
