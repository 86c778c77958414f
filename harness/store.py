"""A run directory: its manifest, append-only records and per-patch artifacts.

Records are read back strictly: a line that is not a whole, well-formed record is damage and is
reported with its file and line, never skipped. The one exception is a last line without its
newline, which is what SIGKILL mid-write leaves; it is cut before the next append. One process
writes a run at a time (`writer()` holds an flock on `.lock`, which dies with the process).
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.types import Candidate, Completion, Verdict, VerdictStatus

RECORD_FILES = (
    "candidates.jsonl",
    "verdicts.jsonl",
    "overhead.jsonl",
    "timing.jsonl",
    "signals.jsonl",
    "repro_tests.jsonl",
)
QUARANTINE = "quarantine"
SYNC_EVERY_S = 1.0


class StoreDamage(UserError):
    """A record that cannot be read back: the file, the line and why."""

    def __init__(self, path: Path, line: int, why: str) -> None:
        self.path, self.line, self.why = path, line, why
        super().__init__(
            f"{path}:{line}: {why}: `--resume` quarantines the line and redoes its work"
        )


class RunLocked(UserError):
    """Another live process is writing this run."""


class StoreWriteError(UserError):
    """The run directory cannot take a record (disk full, read-only, quota)."""


class RunStore:
    """runs/<run_id>/: manifest.json, *.jsonl records, artifacts/<instance>/<patch_sha[:16]>/."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._lock = threading.Lock()
        self._files: dict[str, Any] = {}
        self._read: tuple[Any, list[Candidate]] | None = None
        self._index: dict[str, tuple[Any, dict[str, dict[Any, int]]]] = {}
        self._synced_at = time.monotonic()
        self._lock_fd: int | None = None

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    # one writer ---------------------------------------------------------------------------
    @contextmanager
    def writer(self) -> Iterator[RunStore]:
        """Hold the run's lock for the block; a second writer gets one line naming the pid."""
        self.lock()
        try:
            yield self
        finally:
            self.unlock()

    def lock(self) -> None:
        if self._lock_fd is not None:
            return
        self._mkdir()
        path = self.run_dir / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _flock_within(fd, 1.0):  # a reader (`ls`, `clean`) holds it for microseconds
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(
                f"run {self.run_dir} is being written by {holder}: wait for it to end or stop "
                "it, then try again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        self.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def holder(self) -> str | None:
        """Who holds the lock now (for `ls` and `clean`), or None when nobody does."""
        path = self.run_dir / ".lock"
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode(errors="replace").strip() or "?"
        finally:
            os.close(fd)
        return None

    # writing ------------------------------------------------------------------------------
    def _mkdir(self) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(self.run_dir, exc) from None

    def artifact_dir(self, instance_id: str, patch_sha: str) -> Path:
        path = self.run_dir / "artifacts" / instance_id / patch_sha[:16]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def relative(self, path: str | Path | None) -> str | None:
        """A path inside the run as relative to it, so the run can be moved or shared alone."""
        if not path:
            return None
        p = Path(path)
        if not p.is_absolute():
            return str(p)
        try:
            return str(p.resolve().relative_to(self.run_dir.resolve()))
        except ValueError:
            return str(p)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.write_json("manifest.json", manifest)

    def _append(self, name: str, record: dict[str, Any]) -> None:
        self._append_all(name, [record])

    def _append_all(self, name: str, records: list[dict[str, Any]]) -> None:
        """Group commit: the lines reach the kernel before this returns (a SIGKILL loses
        nothing written), and the files are fsynced at most once a second and when the writer
        lets go, not once per record (a power cut loses at most the last second, which a
        resume redoes: its lines are missing or torn, never half-trusted)."""
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        with self._lock:
            try:
                f = self._files.get(name) or self._open(name)
                f.write(text)
                f.flush()
                if time.monotonic() - self._synced_at >= SYNC_EVERY_S:
                    self._sync()
            except OSError as exc:
                raise _write_error(self.run_dir / name, exc) from None

    def _open(self, name: str):
        self._mkdir()
        _cut_torn_tail(self.run_dir / name)
        self._files[name] = open(self.run_dir / name, "a", encoding="utf-8")  # noqa: SIM115
        return self._files[name]

    def _sync(self) -> None:
        for f in self._files.values():
            os.fsync(f.fileno())
        self._synced_at = time.monotonic()

    def close(self) -> None:
        """fsync and close the record files (the writer does this when it lets go)."""
        with self._lock:
            error = None
            try:
                self._sync()
            except OSError as exc:
                error = exc
            for f in self._files.values():
                try:
                    f.close()
                except OSError as exc:  # bytes a full disk refused: that append already said so
                    error = error or exc
            self._files.clear()
            if error is not None:
                raise _write_error(self.run_dir, error) from None

    def append_verdict(self, verdict: Verdict) -> None:
        data = verdict.to_dict()
        data["log_path"] = self.relative(verdict.log_path)
        self._append("verdicts.jsonl", data)

    def append_candidate(self, candidate: Candidate) -> None:
        self._append("candidates.jsonl", candidate.to_dict())

    def append_candidates(self, candidates: list[Candidate]) -> None:
        """One write for an issue's samples."""
        self._append_all("candidates.jsonl", [c.to_dict() for c in candidates])

    def write_trajectory(self, instance_id: str, sample_index: int, data: dict) -> Path:
        path = self.run_dir / "trajectories" / instance_id / f"{sample_index}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))
        return path

    def trajectory(self, instance_id: str, sample_index: int) -> dict | None:
        path = self.run_dir / "trajectories" / instance_id / f"{sample_index}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def append_timing(self, record: dict[str, Any]) -> None:
        self._append("timing.jsonl", record)

    def append_overhead(self, instance_id: str, purpose: str, completion: Completion) -> None:
        """A model call made for the issue as a whole (localisation), so its tokens count."""
        self._append(
            "overhead.jsonl", {"instance_id": instance_id, "purpose": purpose, **asdict(completion)}
        )

    def append_signal(self, record: dict[str, Any]) -> None:
        """A selection signal of one distinct candidate (`harness signals`)."""
        self._append("signals.jsonl", record)

    def signals(self, kind: str = "regression") -> dict[tuple[str, str], dict[str, Any]]:
        """The latest signal of a kind per (instance, patch sha); per (instance, '') for an
        issue-wide one (`reproduction-base`, `judge`)."""
        return self.signal_index()[0].get(kind, {})

    def signal_index(self) -> tuple[dict[str, dict[tuple[str, str], dict]], dict[str, float]]:
        """In one read of signals.jsonl: the latest signal per kind and (instance, patch sha),
        and the container seconds of every signal run recorded, per kind."""
        latest: dict[str, dict[tuple[str, str], dict]] = {}
        seconds: dict[str, float] = {}
        if (self.run_dir / "signals.jsonl").exists():
            for r in self.stream("signals.jsonl"):
                kind = r.get("kind", "regression")
                latest.setdefault(kind, {})[(r["instance_id"], r.get("patch_sha", ""))] = r
                seconds[kind] = seconds.get(kind, 0.0) + r.get("seconds", 0.0)
        return latest, seconds

    def append_repro_tests(self, records: list[dict[str, Any]]) -> None:
        """Model-written reproduction test samples of an issue (`harness signals`)."""
        self._append_all("repro_tests.jsonl", records)

    def repro_tests(self) -> dict[str, list[dict[str, Any]]]:
        """The reproduction test samples per instance."""
        out: dict[str, list[dict[str, Any]]] = {}
        if (self.run_dir / "repro_tests.jsonl").exists():
            for r in self.stream("repro_tests.jsonl"):
                out.setdefault(r["instance_id"], []).append(r)
        return out

    def write_json(self, name: str, data: Any) -> Path:
        self._mkdir()
        path = self.run_dir / name
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _write_error(path, exc) from None
        return path

    # reading ------------------------------------------------------------------------------
    def records(self, name: str) -> list[dict[str, Any]]:
        """Every record of a JSONL file, checked; StoreDamage names the first bad line."""
        return list(self.stream(name))

    def stream(self, name: str, drop: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
        """The records one by one, checked, without the fields in `drop`."""
        check = _CHECKS.get(name, _is_object)
        for number, record, why, _ in _lines(self.run_dir / name, check):
            if why:
                raise StoreDamage(self.run_dir / name, number, why)
            for key in drop:
                record.pop(key, None)
            yield record

    def quarantine(self) -> list[tuple[str, int, str]]:
        """Move every bad line into quarantine/<file> (with its line number and why) and
        rewrite the file without it, so that a resume redoes that work. Returns what moved."""
        self.close()  # a file is replaced below: later appends must open the new one
        moved = []
        for name in RECORD_FILES:
            path = self.run_dir / name
            if not path.exists():
                continue
            data = path.read_bytes()
            bad = [(n, why) for n, _, why, _ in _parse(data, _CHECKS.get(name, _is_object)) if why]
            if not bad:
                continue
            raw = data.split(b"\n")
            numbers = {n for n, _ in bad}
            folder = self.run_dir / QUARANTINE
            folder.mkdir(exist_ok=True)
            with open(folder / name, "ab") as f:
                for n, why in bad:
                    header = json.dumps({"line": n, "why": why}).encode()
                    f.write(header + b"\n" + raw[n - 1] + b"\n")
            kept = [line for i, line in enumerate(raw, 1) if i not in numbers]
            tmp = path.with_suffix(".repair.tmp")
            tmp.write_bytes(b"\n".join(kept))
            os.replace(tmp, path)
            moved += [(name, n, why) for n, why in bad]
        return moved

    def has_records(self) -> bool:
        return any(
            (self.run_dir / n).exists() and (self.run_dir / n).stat().st_size
            for n in ("candidates.jsonl", "verdicts.jsonl")
        )

    def verdicts(self) -> list[Verdict]:
        return [Verdict.from_dict(r) for r in self.records("verdicts.jsonl")]

    def final_verdicts(self) -> dict[tuple[str, str], Verdict]:
        """The verdict that stands for each (instance, patch): the latest decided one. An
        `error` verdict (the sandbox never finished) stands only while there is no other."""
        return _standing(self.stream("verdicts.jsonl"))

    def issue_verdicts(self, instance_id: str) -> dict[tuple[str, str], Verdict]:
        """`final_verdicts` for one issue, read from where an index of the file says its
        records are (a report holds one issue's verdicts at a time)."""
        at = self._offsets("verdicts.jsonl", _every_record).get(instance_id, {})
        return _standing(self._read_at("verdicts.jsonl", at))

    def candidates(self, raw_output: bool = False) -> list[Candidate]:
        """One candidate per (instance, sample): the latest record, so a sample the model
        server never answered is replaced when it is asked again. The model's raw answers
        (most of the file, and no metric needs them) are left out unless asked for."""
        path = self.run_dir / "candidates.jsonl"
        version = (raw_output, _version(path))
        if self._read is not None and self._read[0] == version:
            return list(self._read[1])  # unchanged since the last read (report reads twice)
        latest: dict[str, dict[int, Candidate]] = {}  # by issue, then sample
        shared: dict[Any, Any] = {}
        for r in self.stream("candidates.jsonl", () if raw_output else ("raw_output",)):
            c = _candidate(r, shared)
            latest.setdefault(c.instance_id, {})[c.sample_index] = c
        read = [c for samples in latest.values() for c in samples.values()]
        self._read = (version, read)
        return list(read)

    def issue_candidates(self, instance_id: str, raw_output: bool = False) -> list[Candidate]:
        """One issue's candidates as `candidates` gives them, by sample index, read from where
        an index of the file says they are: a report of 300 issues x 250 samples holds one
        issue's at a time, not 75,000 (bench/bench_store.py)."""
        at = self._offsets("candidates.jsonl", _by_sample).get(instance_id, {})
        shared: dict[Any, Any] = {}
        drop = () if raw_output else ("raw_output",)
        return [_candidate(r, shared) for r in self._read_at("candidates.jsonl", at, drop)]

    def issue_ids(self) -> list[str]:
        """The issues with candidates, sorted."""
        return sorted(self._offsets("candidates.jsonl", _by_sample))

    def _offsets(self, name: str, key: Callable) -> dict[str, dict[Any, int]]:
        """Issue -> key -> the byte offset of the latest record under that key (`key` gives
        (issue, key) of a record). Every line is checked once per version of the file; the
        index is kept until the file changes."""
        path = self.run_dir / name
        version = _version(path)
        if name in self._index and self._index[name][0] == version:
            return self._index[name][1]
        index: dict[str, dict[Any, int]] = {}
        for number, record, why, offset in _lines(path, _CHECKS.get(name, _is_object)):
            if why:
                raise StoreDamage(path, number, why)
            issue, within = key(record, offset)
            index.setdefault(sys.intern(issue), {})[within] = offset
        self._index[name] = (version, index)
        return index

    def _read_at(self, name: str, at: dict[Any, int], drop: tuple[str, ...] = ()) -> list[dict]:
        """The records at those offsets, in the order of their keys."""
        out: list[dict] = []
        if not at:
            return out
        with open(self.run_dir / name, "rb") as f:
            for within in sorted(at):
                f.seek(at[within])
                record = json.loads(f.readline())
                for field in drop:
                    record.pop(field, None)
                out.append(record)
        return out

    def forget(self) -> None:
        """Let go of the candidates and the offset indexes kept from the last reads (the next
        read reads the files again)."""
        self._read = None
        self._index = {}

    def manifest(self) -> dict[str, Any] | None:
        path = self.run_dir / "manifest.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: not a readable manifest ({exc})") from None
        if not isinstance(data, dict):
            raise UserError(f"{path}: not a readable manifest (not a JSON object)")
        return data


_CANDIDATE_REPEATED = ("instance_id", "patch_sha", "reason", "finish_reason")
_VERDICT_REPEATED = ("instance_id", "patch_sha", "reason", "image", "image_source", "fidelity",
                     "network", "channel")  # fmt: skip
"""Fields whose values recur across records (every sample names its issue, most repeat a
patch): read back, each value is one interned string however many records hold it."""


def _shared_strings(record: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    for key in keys:
        if isinstance(record.get(key), str):
            record[key] = sys.intern(record[key])
    return record


def _flock_within(fd: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def _write_error(path: Path, exc: OSError) -> StoreWriteError:
    hint = {
        errno.ENOSPC: "free space on that disk",
        errno.EDQUOT: "raise the quota or free space",
        errno.EROFS: "the file system is read-only: use another --runs-dir",
        errno.EACCES: "it is not writable: fix its permissions or use another --runs-dir",
    }.get(exc.errno, "check the disk")
    return StoreWriteError(
        f"cannot write {path}: {exc.strerror or exc}: {hint}, then continue with --resume"
    )


def _lines(path: Path, check: Callable[[Any], str | None]) -> Iterator[tuple[int, Any, str, int]]:
    """Streamed: a record file is never held whole in memory."""
    if path.exists():
        with open(path, "rb") as f:
            yield from _parse_lines(f, check)


def _parse(data: bytes, check: Callable[[Any], str | None]) -> Iterator[tuple[int, Any, str, int]]:
    return _parse_lines(io.BytesIO(data), check)


def _parse_lines(lines, check: Callable[[Any], str | None]) -> Iterator[tuple[int, Any, str, int]]:
    """(line number, record, why it is bad or '', the line's byte offset), skipping blank lines
    and a torn tail."""
    offset = 0
    for number, line in enumerate(lines, 1):
        at, offset = offset, offset + len(line)
        if not line.endswith(b"\n"):
            return  # the torn tail a kill left (cut before the next append)
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield number, None, f"not UTF-8 (byte {exc.start})", at
            continue
        except json.JSONDecodeError as exc:
            yield number, None, f"not JSON ({exc.msg})", at
            continue
        yield number, record, check(record) or "", at


def _version(path: Path) -> tuple[int, int] | None:
    """What tells a record file's contents changed: records are only ever appended, and a
    repair rewrites the file."""
    stat = path.stat() if path.exists() else None
    return stat and (stat.st_size, stat.st_mtime_ns)


def _by_sample(record: dict, offset: int) -> tuple[str, int]:
    return record["instance_id"], record["sample_index"]  # a later record replaces an earlier


def _every_record(record: dict, offset: int) -> tuple[str, int]:
    return record["instance_id"], offset  # every record, in the order written


def _standing(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Verdict]:
    """The verdict that stands per (instance, patch), of verdict records in the order written."""
    out: dict[tuple[str, str], Verdict] = {}
    for r in records:
        v = Verdict.from_dict(_shared_strings(r, _VERDICT_REPEATED))
        key = (v.instance_id, v.patch_sha)
        if v.status is not VerdictStatus.ERROR or key not in out or not out[key].decided:
            out[key] = v
    return out


def _candidate(record: dict[str, Any], shared: dict[Any, Any]) -> Candidate:
    """A candidate read back: a patch, a location list or a token count that several samples
    share is one object (at k = 250 most samples repeat a patch)."""
    _shared_strings(record, _CANDIDATE_REPEATED)
    for key in ("prompt_tokens", "completion_tokens"):  # a request's samples split its tokens
        record[key] = shared.setdefault(record[key], record[key])  # evenly: few values recur
    if record.get("patch_sha"):
        record["patch"] = shared.setdefault(record["patch_sha"], record["patch"])
    files = tuple(record["edited_files"])
    record["edited_files"] = shared.setdefault(files, files)
    if "locations" in record:
        places = tuple(record["locations"])
        record["locations"] = shared.setdefault(places, places)
    return Candidate(**{"raw_output": None, **record})


def _is_object(record: Any) -> str | None:
    return None if isinstance(record, dict) else "not a JSON object"


def _shape(cls, required_types: dict[str, tuple]) -> Callable[[Any], str | None]:
    names = {f.name for f in fields(cls)}

    def check(record: Any) -> str | None:
        if not isinstance(record, dict):
            return "not a JSON object"
        if unknown := sorted(set(record) - names):
            return f"unknown field(s) {', '.join(unknown)}"
        for key, types in required_types.items():
            if key not in record:
                return f"no {key}"
            if not isinstance(record[key], types) or isinstance(record[key], bool):
                return f"{key} has the wrong type"
        return None

    return check


_NUM = (int, float)
_candidate_shape = _shape(
    Candidate,
    {
        "instance_id": (str,),
        "sample_index": (int,),
        "patch": (str,),
        "patch_sha": (str, type(None)),
        "reason": (str, type(None)),
        "raw_output": (str, type(None)),
        "prompt_tokens": (int,),
        "completion_tokens": (int,),
        "latency_s": _NUM,
        "edited_files": (list,),
    },
)
_verdict_shape = _shape(
    Verdict,
    {
        "instance_id": (str,),
        "patch_sha": (str,),
        "status": (str,),
        "fail_to_pass": (dict,),
        "pass_to_pass": (dict,),
        "durations": (dict,),
    },
)


def _verdict_check(record: Any) -> str | None:
    if why := _verdict_shape(record):
        return why
    if record["status"] not in {s.value for s in VerdictStatus}:
        return f"unknown status {record['status']!r}"
    return None


def _usage_check(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    for key in ("prompt_tokens", "completion_tokens"):
        if not isinstance(record.get(key), int):
            return f"{key} missing or not an integer"
    return None


_CHECKS = {
    "candidates.jsonl": _candidate_shape,
    "verdicts.jsonl": _verdict_check,
    "overhead.jsonl": _usage_check,
}


def _cut_torn_tail(path: Path) -> None:
    """A process killed mid-write leaves a last line without its newline; the next record
    must not be glued onto it, so the torn tail is cut before appending."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        f.truncate(data.rfind(b"\n") + 1)
