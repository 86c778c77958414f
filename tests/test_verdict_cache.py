"""The verdict cache: a patch already judged in the same environment is not tested again, in
this run or another; anything that can change a verdict is in the key; infrastructure errors
and timeouts are never served; a hit brings its evidence into the run that uses it."""

import json
from pathlib import Path

from harness.config import SandboxLimits
from harness.eval import Evaluation, RetryPolicy
from harness.store import RunStore
from harness.types import Candidate, Instance, SamplingConfig, Verdict, VerdictStatus
from harness.verdict_cache import VerdictCache

INSTANCE = Instance("o__r-1", "o/r", "c" * 40, "issue", "1.0", "", "", ("t",), ())


def candidate(index: int, sha: str | None) -> Candidate:
    return Candidate("o__r-1", index, f"patch {sha}" if sha else "", sha, None, "", 0, 0, 0.0)


def evaluation(tmp_path, run_id, calls, status=VerdictStatus.RESOLVED, limits=None, cache=None):
    store = RunStore(tmp_path / run_id)
    limits = limits or SandboxLimits()

    def verify(instance, patch):
        calls.append(patch)
        sha = patch.split()[-1]
        folder = store.artifact_dir(instance.instance_id, sha)
        (folder / "test_output.txt").write_text(f"log of {sha}")
        return Verdict(
            instance.instance_id,
            sha,
            status,
            log_path=str(folder / "test_output.txt"),
            artifacts=store.relative(folder),
        )

    def key(instance, sha):
        return {"instance": instance.instance_id, "patch": sha, "limits": limits.to_dict()}

    return Evaluation(
        store,
        [INSTANCE],
        3,
        SamplingConfig(),
        None,
        lambda i, d: d,
        verify,
        key,
        cache or VerdictCache(tmp_path / "cache"),
        verify_workers=2,
        retry=RetryPolicy(attempts=1, backoff_s=0),
    )


def test_each_distinct_patch_is_verified_once_across_runs(tmp_path):
    calls: list[str] = []
    cands = [candidate(0, "aa"), candidate(1, "aa"), candidate(2, "bb"), candidate(3, None)]
    evaluation(tmp_path, "one", calls).run(cands)
    assert sorted(calls) == ["patch aa", "patch bb"]
    evaluation(tmp_path, "two", calls).run(cands)
    assert len(calls) == 2  # the second run took both verdicts from the cache
    second = RunStore(tmp_path / "two").verdicts()
    assert sorted(v.patch_sha for v in second) == ["aa", "bb"]
    assert all(v.cached for v in second)


def test_a_hit_brings_its_evidence_into_the_run_with_relative_paths(tmp_path):
    calls: list[str] = []
    evaluation(tmp_path, "one", calls).run([candidate(0, "aa")])
    evaluation(tmp_path, "two", calls).run([candidate(0, "aa")])
    (verdict,) = RunStore(tmp_path / "two").verdicts()
    assert not Path(verdict.log_path).is_absolute()
    assert verdict.log_path.startswith("artifacts/o__r-1/")
    # the first run can go away: the second still holds its evidence
    import shutil

    shutil.rmtree(tmp_path / "one")
    assert (tmp_path / "two" / verdict.log_path).read_text() == "log of aa"
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "two", moved)
    assert (moved / verdict.log_path).read_text() == "log of aa"


def test_other_limits_are_another_key(tmp_path):
    calls: list[str] = []
    evaluation(tmp_path, "one", calls, limits=SandboxLimits(timeout_s=8)).run([candidate(0, "aa")])
    evaluation(tmp_path, "two", calls, limits=SandboxLimits(timeout_s=1800)).run(
        [candidate(0, "aa")]
    )
    evaluation(tmp_path, "three", calls, limits=SandboxLimits(log_cap_bytes=1 << 20)).run(
        [candidate(0, "aa")]
    )
    assert calls == ["patch aa"] * 3


def test_infrastructure_errors_and_timeouts_are_never_served(tmp_path):
    for status in (VerdictStatus.ERROR, VerdictStatus.TIMEOUT):
        calls: list[str] = []
        evaluation(tmp_path, f"a-{status}", calls, status).run([candidate(0, "aa")])
        evaluation(tmp_path, f"b-{status}", calls, status).run([candidate(0, "aa")])
        assert calls == ["patch aa", "patch aa"], status


def test_no_cache_and_refresh(tmp_path):
    calls: list[str] = []
    root = tmp_path / "cache"
    evaluation(tmp_path, "one", calls).run([candidate(0, "aa")])
    off = VerdictCache(root, read=False, write=False)
    evaluation(tmp_path, "two", calls, cache=off).run([candidate(0, "aa")])
    assert len(calls) == 2
    entry = next(root.glob("*/*/verdict.json"))
    stale = json.loads(entry.read_text())
    stale["status"] = "unresolved"
    entry.write_text(json.dumps(stale))
    refresh = VerdictCache(root, read=False)
    evaluation(tmp_path, "three", calls, cache=refresh).run([candidate(0, "aa")])
    assert len(calls) == 3
    assert json.loads(entry.read_text())["status"] == "resolved"  # overwritten
