"""The content-addressed verdict cache: a patch already judged in the same image and network is
not tested again, in this run or any other; infrastructure errors are retried."""

from harness.eval import Evaluation, VerdictCache
from harness.store import RunStore
from harness.types import Candidate, Instance, SamplingConfig, Verdict, VerdictStatus

INSTANCE = Instance("o__r-1", "o/r", "c" * 40, "issue", "1.0", "", "", ("t",), ())


def candidate(index: int, sha: str | None) -> Candidate:
    return Candidate("o__r-1", index, f"patch {sha}" if sha else "", sha, None, "", 0, 0, 0.0)


def evaluation(tmp_path, run_id, calls, status=VerdictStatus.RESOLVED):
    def verify(instance, patch):
        calls.append(patch)
        return Verdict(instance.instance_id, patch.split()[-1], status)

    return Evaluation(
        RunStore(tmp_path / run_id),
        [INSTANCE],
        3,
        SamplingConfig(),
        None,
        lambda i, d: d,
        verify,
        lambda i: "image:1",
        "none",
        VerdictCache(tmp_path / "cache"),
        verify_workers=2,
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


def test_infrastructure_errors_are_not_cached(tmp_path):
    calls: list[str] = []
    evaluation(tmp_path, "one", calls, VerdictStatus.ERROR).run([candidate(0, "aa")])
    evaluation(tmp_path, "two", calls, VerdictStatus.ERROR).run([candidate(0, "aa")])
    assert calls == ["patch aa", "patch aa"]
