"""SWE-bench rows from the HF hub or a local file, validated, and instance selection."""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
import re
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.types import SWEBENCH_COLUMNS, Instance

ALIASES = {
    "lite": "princeton-nlp/SWE-bench_Lite",
    "verified": "princeton-nlp/SWE-bench_Verified",
    "full": "princeton-nlp/SWE-bench",
}
LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet")
SUBSETS = {"cpu-lite": ("lite", Path(__file__).parent / "subsets" / "cpu-lite.txt")}
"""Fixed subsets, each ids drawn once by a script the file names. Their rows come from
$SWEM_LITE_PATH (a local copy of Lite's test split) when set, else the hub."""


def _text(path: Path) -> str:
    """A local file's text. Patches are bytes (real repos have latin-1 files): bytes that are
    not UTF-8 survive as surrogate escapes and are written back unchanged."""
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror or exc}") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not JSON ({exc.msg}): fix or remove that line") from None
    return rows


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict):  # {instance_id: row}, as some prediction files are keyed
        data = [{"instance_id": k, **v} for k, v in data.items()]
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a list of SWE-bench rows")
    return data


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _read_hub(name: str, split: str) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:  # pragma: no cover - a dependency of the project
        raise UserError("the `datasets` package is missing: reinstall with `make setup`") from None
    try:
        return list(datasets.load_dataset(name, split=split))
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "not here"
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot load {name} (split {split}) from the Hugging Face hub ({msg}): "
            "pass a local .jsonl/.json/.parquet file with --dataset"
        ) from None


def load_rows(source: str, split: str = "test") -> list[dict[str, Any]]:
    """Rows from an alias (lite, verified, full), a subset (cpu-lite), a hub dataset name,
    or a local file."""
    if source in SUBSETS:
        return _subset_rows(*SUBSETS[source], source)
    path = Path(source).expanduser()
    if path.suffix in LOCAL_SUFFIXES or path.exists():
        if not path.is_file():
            raise UserError(f"dataset file not found: {source}")
        reader = {".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet}.get(
            path.suffix
        )
        if reader is None:
            raise UserError(f"{source}: unknown dataset format: use .jsonl, .json or .parquet")
        return reader(path)
    return _read_hub(ALIASES.get(source, source), split)


def _subset_rows(parent: str, ids_file: Path, name: str) -> list[dict[str, Any]]:
    ids = [ln.strip() for ln in ids_file.read_text().splitlines() if ln.strip()[:1] not in "#"]
    rows = {r["instance_id"]: r for r in load_rows(os.environ.get("SWEM_LITE_PATH") or parent)}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise UserError(
            f"{name}: {len(missing)} of its ids are not in that Lite copy ({missing[0]}, ...): "
            "set SWEM_LITE_PATH to Lite's test split (.jsonl)"
        )
    return [rows[i] for i in ids]


def to_instances(rows: list[dict[str, Any]], source: str) -> list[Instance]:
    """Validate columns and ids; every problem is a one-line UserError naming the row."""
    instances, seen = [], set()
    for n, row in enumerate(rows, 1):
        iid = row.get("instance_id", f"row {n}")
        missing = [c for c in SWEBENCH_COLUMNS if c not in row or row[c] is None]
        if missing:
            raise UserError(f"{source}: {iid} lacks column(s) {', '.join(missing)}")
        if iid in seen:
            raise UserError(f"{source}: duplicate instance_id {iid}")
        seen.add(iid)
        try:
            instances.append(Instance.from_row(row))
        except ValueError as exc:
            raise UserError(f"{source}: {exc}") from None
    return instances


def _matcher(pattern: str):
    if pattern.startswith("re:"):
        try:
            regex = re.compile(pattern[3:])
        except re.error as exc:
            raise UserError(f"bad regex {pattern[3:]!r}: {exc}") from None
        return lambda iid: regex.fullmatch(iid) is not None
    if any(ch in pattern for ch in "*?["):
        return lambda iid: fnmatch.fnmatchcase(iid, pattern)
    return lambda iid: iid == pattern


def select(instances: list[Instance], patterns: list[str] | None) -> list[Instance]:
    """Keep instances matching any pattern: an exact id, a glob (django__*), or re:REGEX.
    A pattern that matches nothing is an error, so a typo never silently empties a run."""
    if not patterns:
        return instances
    ids = [i.instance_id for i in instances]
    chosen: set[str] = set()
    for pattern in patterns:
        hits = {iid for iid in ids if _matcher(pattern)(iid)}
        if not hits:
            close = difflib.get_close_matches(pattern, ids, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"unknown instance id {pattern}{hint}")
        chosen |= hits
    return [i for i in instances if i.instance_id in chosen]


def load_instances(source: str, split: str = "test", patterns: list[str] | None = None):
    return select(to_instances(load_rows(source, split), source), patterns)
