"""The run store read an issue at a time (what `report`, `status` and the live site do) agrees
with the store read whole, on the records a real run leaves: issues interleaved, a sample asked
again after the server failed it, an `error` verdict retried, a torn last line."""

from __future__ import annotations

import pytest

from harness.store import RunStore, StoreDamage
from harness.types import Candidate, Verdict, VerdictStatus


def cand(iid: str, index: int, sha: str | None, reason: str | None = None) -> Candidate:
    patch = f"diff --git a/{iid} b/{iid}\n+{sha}\n" if sha else ""
    return Candidate(iid, index, patch, sha, reason, f"answer {iid} {index}", 100, 10, 0.5,
                     "stop", (f"{iid}.py",) if sha else (), ("m.py::f@1-3",))  # fmt: skip


@pytest.fixture
def store(tmp_path) -> RunStore:
    store = RunStore(tmp_path / "run")
    store.write_manifest({"command": "eval", "identity": {"samples": 3}})
    with store.writer():
        store.append_candidates([cand("a", 0, "s1"), cand("b", 0, None, "model error: 500")])
        store.append_candidates([cand("a", 1, "s1"), cand("b", 0, "s2"), cand("a", 2, "s3")])
        store.append_candidates([cand("b", 1, None, "no edit in the answer")])
        store.append_verdict(Verdict("a", "s1", VerdictStatus.ERROR, reason="daemon gone"))
        store.append_verdict(Verdict("b", "s2", VerdictStatus.RESOLVED))
        store.append_verdict(Verdict("a", "s1", VerdictStatus.UNRESOLVED, reason="F2P failed"))
        store.append_verdict(Verdict("a", "s1", VerdictStatus.ERROR, reason="retried, lost"))
        store.append_verdict(Verdict("a", "s3", VerdictStatus.ERROR, reason="daemon gone"))
    with open(store.run_dir / "candidates.jsonl", "a") as f:
        f.write('{"instance_id": "a", "sample_')  # the torn tail a kill leaves
    return store


def test_an_issue_at_a_time_reads_what_the_whole_file_says(store):
    whole = store.candidates(raw_output=True)
    assert store.issue_ids() == ["a", "b"]
    for iid in ("a", "b"):
        mine = sorted((c for c in whole if c.instance_id == iid), key=lambda c: c.sample_index)
        assert store.issue_candidates(iid, raw_output=True) == mine
        assert all(c.raw_output is None for c in store.issue_candidates(iid))
        verdicts = {k: v for k, v in store.final_verdicts().items() if k[0] == iid}
        assert store.issue_verdicts(iid) == verdicts
    b = store.issue_candidates("b")
    assert [(c.sample_index, c.patch_sha) for c in b] == [(0, "s2"), (1, None)]  # asked again
    a = store.issue_verdicts("a")
    assert a[("a", "s1")].reason == "F2P failed"  # a later error never unseats a decided one
    assert a[("a", "s3")].status is VerdictStatus.ERROR  # stands while there is no other
    assert store.issue_candidates("nobody") == [] and store.issue_verdicts("nobody") == {}


def test_records_appended_after_a_read_are_seen_by_the_next(store):
    assert len(store.issue_candidates("a")) == 3
    (store.run_dir / "candidates.jsonl").write_text(
        (store.run_dir / "candidates.jsonl").read_text().rsplit("\n", 1)[0] + "\n"
    )  # the torn tail cut, as the next writer does
    with store.writer():
        store.append_candidates([cand("c", 0, "s9")])
        store.append_verdict(Verdict("a", "s3", VerdictStatus.RESOLVED))
    assert store.issue_ids() == ["a", "b", "c"]
    assert store.issue_verdicts("a")[("a", "s3")].resolved


def test_a_damaged_line_is_named_when_an_issue_is_read(store):
    path = store.run_dir / "candidates.jsonl"
    lines = path.read_text().split("\n")
    lines[2] = '{"instance_id": "a", "sample_index": "one"}'
    path.write_text("\n".join(lines))
    with pytest.raises(StoreDamage, match=r"candidates.jsonl:3: sample_index"):
        store.issue_candidates("b")
