"""The summary of a run, derived from its records alone, so it can be rebuilt at any time.

Conventions (docs/concepts.md, "Missing is not failed"):
- Coverage is computed per issue over its own n decided samples. A decided sample is an invalid
  answer (a failure) or a valid patch with a verdict on it.
- Missing samples never count in n or c: a sample the model server never answered, a patch
  whose verification the sandbox never finished (`error`), and, in generation mode, a sample
  not generated yet. Any of them makes the run `complete: false`.
- In predictions mode a selected issue without a prediction, or with fewer than k, counts each
  absent one as an unresolved sample, as the official harness counts a missing prediction.
- The curve runs to the largest k that every issue has (min n); an issue with no decided
  sample leaves no curve, and the summary says which issues hold it back.
- Selection (majority vote, first valid) only considers patches not known to fail to apply.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from typing import Any

from harness.cost import PriceTable, inference_flops, model_size
from harness.metrics import (
    curve_ks,
    dataset_curve,
    fit_power_law,
    log_spaced_ks,
)
from harness.selection import SELECTORS, Sample, every_pick, selection_curves, semantic_key
from harness.store import RECORD_FILES, RunStore
from harness.types import Candidate, Verdict, reproduction_id

SCHEMA_VERSION = 4
SELECTION_KEY = {"vote": "majority_vote"}
"""A selector's name in the summary's `selection` (the vote kept its older name)."""
CONVENTION = (
    "n and c count decided samples only; samples the model server never answered and patches "
    "whose verification never finished are missing (retried on --resume), never failures; in "
    "predictions mode an absent prediction is an unresolved sample"
)


def summarize(
    store: RunStore, price: PriceTable | None = None, include_flagged: bool | None = None
) -> dict[str, Any]:
    """include_flagged: count candidates the integrity screen flagged (default: as the run's
    manifest says, else no)."""
    manifest = store.manifest() or {}
    identity = manifest.get("identity", {})
    price = price or PriceTable(**manifest.get("price", {}))
    k = identity.get("samples")
    predictions = bool(identity.get("predictions"))
    if include_flagged is None:
        include_flagged = bool(manifest.get("include_flagged"))
    unbuildable = manifest.get("unbuildable") or {}
    signals, seconds = store.signal_index()
    # A score counts only on the issue's latest set of reproducing tests.
    current = {
        iid: reproduction_id(r["reproducing"])
        for (iid, _), r in signals.get("reproduction-base", {}).items()
    }
    scores = {
        key: r
        for key, r in signals.get("reproduction", {}).items()
        if r.get("base") == current.get(key[0])
    }
    issues, chosen_from = {}, []
    for iid in identity.get("instances") or store.issue_ids():
        if iid not in unbuildable:  # an issue at a time: a 300 x 250 run is 75,000 candidates
            verdicts = store.issue_verdicts(iid)
            cands = [c for c in store.issue_candidates(iid) if k is None or c.sample_index < k]
            issues[iid], samples = _issue(
                iid,
                cands,
                verdicts,
                k,
                predictions,
                include_flagged,
                (signals.get("regression", {}), scores, signals.get("judge", {})),
            )
            chosen_from.append(samples)
    n_min = min((len(samples) for samples, _ in chosen_from), default=0)
    aggregate = _aggregate(store, issues, identity, price)
    choosing = _selection_cost(store, signals, seconds, price)
    if "cost" in aggregate:  # selection at equal cost: the samples' dollars and choosing's
        aggregate["cost"]["selection_dollars"] = choosing["dollars"]
        aggregate["cost"]["dollars_with_selection"] = (
            aggregate["cost"]["dollars"] + choosing["dollars"]
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": store.run_id,
        "model": identity.get("model_label") or identity.get("model"),
        "dataset": identity.get("dataset"),
        "mode": "predictions" if predictions else "generation",
        "convention": CONVENTION,
        "include_flagged": include_flagged,
        "unbuildable": unbuildable,
        "issues": issues,
        **aggregate,
        "selection_at": selection_curves(chosen_from, log_spaced_ks(n_min)) if n_min else {},
        "selection_cost": choosing,
    }


def _selection_cost(store: RunStore, signals: dict, seconds: dict, price: PriceTable) -> dict:
    """What choosing cost beyond the samples: container time of every signal run recorded
    (a score measured on tests since replaced still cost its run), and the tokens (and
    dollars, at the run's prices) of the model-written reproduction tests and the judge."""
    bases = signals.get("reproduction-base", {}).values()
    written = [r for rs in store.repro_tests().values() for r in rs]
    judged = list(signals.get("judge", {}).values())
    prompt = sum(r["prompt_tokens"] for r in (*written, *judged))
    completion = sum(r["completion_tokens"] for r in (*written, *judged))
    return {
        "regression_container_s": round(seconds.get("regression", 0.0), 3),
        "regression_signals": len(signals.get("regression", {})),
        "reproduction_container_s": round(
            seconds.get("reproduction", 0.0) + seconds.get("reproduction-base", 0.0), 3
        ),
        "reproduction_signals": len(signals.get("reproduction", {})),
        "reproduction_tests": {
            "samples": len(written),
            "distinct": len({(r["instance_id"], r["test_sha"]) for r in written if r["test_sha"]}),
            "reproducing": sum(len(b["reproducing"]) for b in bases),
        },
        "judged_issues": len(judged),
        "tokens": {"prompt": prompt, "completion": completion},
        "dollars": price.dollars(prompt, completion, 0.0),
    }


def _issue(
    iid: str,
    cands: list[Candidate],
    verdicts: dict[tuple[str, str], Verdict],
    k: int | None,
    predictions: bool,
    include_flagged: bool = False,
    signals: tuple[dict, dict, dict] = ({}, {}, {}),
) -> tuple[dict[str, Any], tuple[list, frozenset[str]]]:
    """The issue's figures, and what selection@k is computed from: its samples as a
    selector sees them, and the patches that resolve."""
    answered = [c for c in cands if not c.missing]
    shas = [c.patch_sha for c in answered]
    seen = {s: verdicts.get((iid, s)) for s in set(shas) if s}  # each distinct patch's verdict

    def counts(v: Verdict) -> bool:  # resolving, unless the integrity screen excludes it
        return v.resolved and (include_flagged or not screened(v))

    outcomes, official, unfinished = [], [], 0
    for sha in shas:
        if sha is None:
            outcomes.append(False)
            official.append(False)
        elif (v := seen[sha]) is not None and v.decided:
            outcomes.append(counts(v))
            official.append(bool(v.official_resolved))
        else:
            unfinished += 1
    unanswered = len(cands) - len(answered)
    absent = max((k or len(cands)) - len(cands), 0)
    statuses = Counter(v.status.value if v else "unverified" for v in seen.values())
    # Selection sees what a deployer sees: whether a patch applies and what the screen says.
    excluded = {
        s
        for s, v in seen.items()
        if v and (v.status.value == "apply_failed" or (screened(v) and not include_flagged))
    }
    applying = [s if s not in excluded else None for s in shas]
    resolving = {s for s, v in seen.items() if v and counts(v)}
    flags = Counter(f.split(":", 1)[0] for v in seen.values() if v for f in set(v.flags))
    keys: dict[str, str] = {}
    for c in answered:  # once per distinct patch: parsing it is most of a summary's time
        if c.patch_sha in seen and c.patch_sha not in keys:
            keys[c.patch_sha] = semantic_key(c.patch)
    regression, reproduction, judged = signals
    strikes = {s: known_count(regression.get((iid, s)), "strikes") for s in keys}
    score = {s: known_count(reproduction.get((iid, s)), "passed") for s in keys}
    votes = (judged.get((iid, "")) or {}).get("votes", {})
    seen_as = {s: Sample(s, keys[s], strikes[s], score[s], votes.get(s)) for s in keys}
    samples = [seen_as[s] if s else NO_PATCH for s in applying]  # one Sample per patch
    picks = every_pick(samples)
    with_flagged = sum(1 for s in shas if s and (v := seen[s]) is not None and v.resolved)
    return {
        # one prediction for the issue: it is what the official harness grades; with several,
        # the selector's pick stands for the issue, as in generation mode
        "prediction": _prediction(cands, verdicts) if predictions and len(cands) == 1 else None,
        "c_with_flagged": with_flagged,
        "picks": picks,  # each selector's patch over all the samples (None: nothing to ship)
        "pick_statuses": {name: _status(verdicts, iid, sha) for name, sha in picks.items()},
        "picks_resolved": {name: sha in resolving for name, sha in picks.items()},
        "n": len(outcomes) + (absent if predictions else 0),
        "c": sum(outcomes),
        "c_official": sum(official),
        "flags": dict(flags),
        "samples": len(cands),
        "valid": sum(s is not None for s in shas),
        "unique": len(seen),
        "missing": unanswered + unfinished + (0 if predictions else absent),
        "unanswered": unanswered,
        "unfinished": unfinished,
        "absent": absent,
        "not_generated": 0 if predictions else absent,
        "absent_predictions": absent if predictions else 0,
        "statuses": dict(statuses),
        "unverified": sum(not _decided(v) for v in seen.values()),
        "prompt_tokens": sum(c.prompt_tokens for c in cands),
        "completion_tokens": sum(c.completion_tokens for c in cands),
    }, (samples, frozenset(resolving))


NO_PATCH = Sample(None)
"""How a selector sees a sample with no usable patch (shared: a run holds thousands)."""

OFFICIAL_STATUS = {
    "resolved": "resolved",
    "unresolved": "unresolved",
    "suspicious": "unresolved",  # the tests ran and wrote a report; resolved per its log
    "apply_failed": "error",  # swebench raises before the tests: no report, an error
    "timeout": "error",
    "error": "error",
}


EMPTY_PATCH = "empty patch"
"""The reason a candidate of "" or null carries (agents.patches.normalise)."""


def _prediction(cands: list[Candidate], verdicts: dict) -> dict[str, Any] | None:
    """The issue's one prediction as the official harness grades it, and our verdict beside
    it. Officially a patch that is "" or null is empty,
    one that does not apply or times out is an error (no report is written), and one whose
    tests ran is resolved or not by swebench's grading of the log, whatever our screen or
    guard says."""
    if not cands:
        return None
    first = min(cands, key=lambda c: c.sample_index)
    verdict = verdicts.get((first.instance_id, first.patch_sha)) if first.patch_sha else None
    empty = first.patch_sha is None and first.reason == EMPTY_PATCH
    if empty:
        official = "empty_patch"
    elif first.patch_sha is None:
        official = "error"  # not a patch git applies: the official apply step fails
    elif verdict is None or not verdict.decided:
        official = "unfinished"
    elif verdict.status.value in ("resolved", "unresolved", "suspicious"):
        official = "resolved" if verdict.official_resolved else "unresolved"
    else:
        official = OFFICIAL_STATUS[verdict.status.value]
    return {
        "sample_index": first.sample_index,
        "patch_sha": first.patch_sha,
        "official": official,
        "status": verdict.status.value if verdict else ("empty" if empty else "rejected"),
        "reason": (verdict.reason if verdict else first.reason) or "",
        "flags": [f for f in (verdict.flags if verdict else []) if not f.startswith("fuzzy")],
    }


def screened(verdict: Verdict) -> bool:
    """Flagged by the integrity screen (a fuzzy apply is noted, not excluded)."""
    return any(not f.startswith("fuzzy-apply") for f in verdict.flags)


def _decided(verdict: Verdict | None) -> bool:
    return verdict is not None and verdict.decided


def _status(verdicts, iid: str, sha: str | None) -> str:
    if sha is None:
        return "empty"
    v = verdicts.get((iid, sha))
    return v.status.value if v else "unverified"


def _curve(issues: dict) -> dict[str, Any]:
    n_min = min(i["n"] for i in issues.values())
    ks = curve_ks(n_min)
    curve = dataset_curve([(i["n"], i["c"]) for i in issues.values()], ks) if n_min else []
    fit = fit_power_law(ks, curve) if curve else None
    at = dict(zip(ks, curve, strict=True))
    return {
        "samples_per_issue": n_min,
        "curve": {"k": ks, "coverage": curve},
        "coverage_at": {str(k): at[k] for k in log_spaced_ks(n_min)} if n_min else {},
        "curve_held_back_by": sorted(iid for iid, i in issues.items() if i["n"] == n_min)
        if n_min < max(i["n"] for i in issues.values())
        else [],
        "fit": None
        if fit is None
        else {
            "a": fit.a,
            "b": fit.b,
            "k_for_50pct": fit.samples_for(0.5),
            "k_for_80pct": fit.samples_for(0.8),
        },
    }


def known_count(signal: dict | None, field: str) -> int | None:
    """How many tests a candidate's signal lists under `field` (its regression strikes, its
    passed reproducing tests); None when unknown: no signal, no test to run, or the check
    could not run."""
    if not signal or signal.get("error") or not signal.get("tests"):
        return None
    return len(signal[field])


def _missing(issues: dict) -> dict[str, int]:
    return {
        "samples": sum(i["missing"] for i in issues.values()),
        "unanswered": sum(i["unanswered"] for i in issues.values()),
        "unfinished_verifications": sum(i["unfinished"] for i in issues.values()),
        "not_generated": sum(i["not_generated"] for i in issues.values()),
        "absent_predictions": sum(i["absent_predictions"] for i in issues.values()),
    }


def _aggregate(store: RunStore, issues: dict, identity: dict, price: PriceTable) -> dict:
    if not issues:
        return {"n_issues": 0, "complete": False, "missing": {"samples": 0}}
    overhead = store.records("overhead.jsonl")
    prompt = sum(i["prompt_tokens"] for i in issues.values()) + sum(
        o["prompt_tokens"] for o in overhead
    )
    completion = sum(i["completion_tokens"] for i in issues.values()) + sum(
        o["completion_tokens"] for o in overhead
    )
    wall = sum(t.get("generation_wall_s", 0) for t in store.records("timing.jsonl"))
    dollars = price.dollars(prompt, completion, wall)
    solved = sum(1 for i in issues.values() if i["c"] > 0)
    size = model_size(identity.get("model") or "")
    samples = sum(i["samples"] for i in issues.values()) or 1
    mean_context = prompt / max(len(issues), 1) + completion / samples / 2
    flops = inference_flops(size, prompt, completion, mean_context) if size else None
    n_issues = len(issues)
    missing = _missing(issues)
    statuses, flags = Counter(), Counter()
    for i in issues.values():
        statuses.update(i["statuses"])
        flags.update(i["flags"])
    n_min = min(i["n"] for i in issues.values())
    official = (
        dataset_curve([(i["n"], i["c_official"]) for i in issues.values()], log_spaced_ks(n_min))
        if n_min
        else []
    )
    return {
        "n_issues": n_issues,
        **_curve(issues),
        "complete": missing["samples"] == 0,
        "missing": missing,
        "unverified": sum(i["unverified"] for i in issues.values()),
        "patch_statuses": dict(statuses),
        "flags": dict(flags),
        "official_coverage_at": dict(zip(map(str, log_spaced_ks(n_min)), official, strict=True)),
        **_with_flagged(issues, n_min),
        "resolved_any": solved / n_issues,
        "selection": {
            SELECTION_KEY.get(name, name.replace("-", "_")): sum(
                i["picks_resolved"][name] for i in issues.values()
            )
            / n_issues
            for name in SELECTORS
        },
        "tokens": {"prompt": prompt, "completion": completion},
        "generation_wall_s": wall,
        "cost": {
            "dollars": dollars,
            "price": price.to_dict(),
            "dollars_per_resolved_issue": dollars / solved if solved else None,
            "flops": flops,
            "flops_per_sample": flops / samples if flops else None,
        },
    }


def official_report(summary: dict[str, Any], chosen_by: str = "vote") -> dict[str, Any]:
    """The official harness's run report (schema 2), each list meaning what swebench 4.1's
    `make_run_report` means by it, for what `report` exports: in predictions mode an issue's
    one prediction as the file holds it, graded by the official rules whatever our screen or
    guard says (`stricter` names where our verdict differs, and why); for an issue with
    several samples, the patch the named selector picks among those that apply ("" when none
    does). Officially
    a patch that does not apply or times out writes no report: an error. Beside the official
    lists, ours: apply failures, timeouts, flagged and suspicious patches, verifications not
    finished, and issues that any sample resolves."""
    ids: dict[str, list[str]] = defaultdict(list)
    stricter: dict[str, str] = {}
    for iid, issue in summary["issues"].items():
        if not issue["samples"]:  # no prediction at all: officially "incomplete"
            ids["incomplete"].append(iid)
            continue
        ids["submitted"].append(iid)
        ours, official, flags, reason = _graded(issue, chosen_by)
        ids[official if official != "unfinished" else "error"].append(iid)
        if official in ("resolved", "unresolved"):
            ids["completed"].append(iid)
        if ours in ("apply_failed", "timeout", "suspicious"):
            ids[ours].append(iid)
        if official == "unfinished" or ours in ("error", "unverified"):
            ids["unfinished"].append(iid)
        if flags:
            ids["flagged"].append(iid)
        if official == "resolved" and (ours != "resolved" or flags):
            stricter[iid] = reason or "flagged: " + "; ".join(flags)
        if issue["c"]:
            ids["any_sample_resolved"].append(iid)
    lists = {f"{name}_ids": sorted(ids[name]) for name in _ID_LISTS}
    return {
        "total_instances": summary["n_issues"],
        "submitted_instances": len(ids["submitted"]),
        "completed_instances": len(ids["completed"]),
        "resolved_instances": len(ids["resolved"]),
        "unresolved_instances": len(ids["unresolved"]),
        "empty_patch_instances": len(ids["empty_patch"]),
        "error_instances": len(ids["error"]),
        **lists,
        "schema_version": 2,
        "selector": "the file's prediction per issue"
        if summary.get("mode") == "predictions"
        else f"{chosen_by} (patches that apply)",
        "model_name_or_path": summary.get("model"),
        "stricter": stricter,
    }


def _graded(issue: dict, chosen_by: str) -> tuple[str, str, list[str], str]:
    """(our status, the official status, our screen's flags, our reason) of the patch the
    report stands for."""
    prediction = issue.get("prediction")
    if prediction is not None:
        return (
            prediction["status"],
            prediction["official"],
            prediction["flags"],
            prediction["reason"],
        )
    status = issue["pick_statuses"][chosen_by]
    official = {"empty": "empty_patch"}.get(status) or OFFICIAL_STATUS.get(status, "unfinished")
    if status == "suspicious":  # a pick is never suspicious (it does not resolve)
        official = "unresolved"
    return status, official, [], ""


def _with_flagged(issues: dict, n_min: int) -> dict[str, Any]:
    """coverage@k counting the candidates the screen flagged, when that differs from
    coverage@k without them: how many resolving patches the screen set aside."""
    if not n_min or all(i["c_with_flagged"] == i["c"] for i in issues.values()):
        return {}
    ks = log_spaced_ks(n_min)
    outcomes = [(i["n"], max(i["c_with_flagged"], i["c"])) for i in issues.values()]
    curve = dataset_curve(outcomes, ks)
    return {
        "coverage_with_flagged_at": dict(zip(map(str, ks), curve, strict=True)),
        "resolving_flagged": sum(max(i["c_with_flagged"] - i["c"], 0) for i in issues.values()),
    }


_ID_LISTS = (
    "completed",
    "incomplete",
    "empty_patch",
    "submitted",
    "resolved",
    "unresolved",
    "error",
    "apply_failed",
    "timeout",
    "suspicious",
    "flagged",
    "unfinished",
    "any_sample_resolved",
)


LS_CACHE = "summary.cache.json"


def summarize_cached(store: RunStore) -> dict[str, Any]:
    """`summarize` with default options, kept in the run directory beside the records it was
    made from and reused while none of them changed (`ls` over many large runs re-reads only
    the runs that moved). A cache that cannot be written is only a slower `ls`."""

    def stamp(name: str) -> list[int]:
        path = store.run_dir / name
        if not path.exists():
            return [0, 0]
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]

    key = {name: stamp(name) for name in (*RECORD_FILES, "manifest.json")}
    key["schema"] = [SCHEMA_VERSION, 0]
    path = store.run_dir / LS_CACHE
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached["summary"]
    except (OSError, ValueError, AttributeError):
        pass
    summary = summarize(store)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"key": key, "summary": summary}))
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        tmp.unlink(missing_ok=True)
    return summary
