"""The summary of a run, derived from its records alone, so it can be rebuilt at any time."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.cost import PriceTable, inference_flops, model_size
from harness.metrics import (
    dataset_curve,
    first_valid,
    fit_power_law,
    log_spaced_ks,
    majority_vote,
)
from harness.store import RunStore

SCHEMA_VERSION = 1


def summarize(store: RunStore, price: PriceTable | None = None) -> dict[str, Any]:
    manifest = store.manifest() or {}
    identity = manifest.get("identity", {})
    price = price or PriceTable(**manifest.get("price", {}))
    verdicts = {(v.instance_id, v.patch_sha): v for v in store.verdicts()}
    by_issue = defaultdict(list)
    for c in sorted(store.candidates(), key=lambda c: (c.instance_id, c.sample_index)):
        by_issue[c.instance_id].append(c)
    issues = {}
    for iid in identity.get("instances") or sorted(by_issue):
        cands = by_issue.get(iid, [])
        shas = [c.patch_sha for c in cands]
        resolving = {s for s in shas if s and (v := verdicts.get((iid, s))) and v.resolved}
        pick, first = majority_vote(shas), first_valid(shas)
        issues[iid] = {
            "n": len(cands),
            "c": sum(s in resolving for s in shas),
            "valid": sum(s is not None for s in shas),
            "unique": len({s for s in shas if s}),
            "unverified": len({s for s in shas if s and (iid, s) not in verdicts}),
            "majority_patch": pick,
            "majority_resolved": pick in resolving,
            "first_valid_resolved": first in resolving,
            "prompt_tokens": sum(c.prompt_tokens for c in cands),
            "completion_tokens": sum(c.completion_tokens for c in cands),
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": store.run_id,
        "model": identity.get("model"),
        "dataset": identity.get("dataset"),
        "issues": issues,
        **_aggregate(store, issues, identity, price),
    }


def _aggregate(store: RunStore, issues: dict, identity: dict, price: PriceTable) -> dict:
    if not issues:
        return {"n_issues": 0}
    n_min = min(i["n"] for i in issues.values())
    outcomes = [(i["n"], i["c"]) for i in issues.values()]
    ks = list(range(1, n_min + 1))
    curve = dataset_curve(outcomes, ks) if n_min else []
    fit = fit_power_law(ks, curve) if curve else None
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
    samples = sum(i["n"] for i in issues.values()) or 1
    mean_context = prompt / max(len(issues), 1) + completion / samples / 2
    flops = inference_flops(size, prompt, completion, mean_context) if size else None
    n_issues = len(issues)
    return {
        "n_issues": n_issues,
        "samples_per_issue": n_min,
        "complete": all(i["n"] == identity.get("samples", n_min) for i in issues.values()),
        "unverified": sum(i["unverified"] for i in issues.values()),
        "curve": {"k": ks, "coverage": curve},
        "coverage_at": {str(k): curve[k - 1] for k in log_spaced_ks(n_min)} if n_min else {},
        "resolved_any": solved / n_issues,
        "fit": None
        if fit is None
        else {
            "a": fit.a,
            "b": fit.b,
            "k_for_50pct": fit.samples_for(0.5),
            "k_for_80pct": fit.samples_for(0.8),
        },
        "selection": {
            "majority_vote": sum(i["majority_resolved"] for i in issues.values()) / n_issues,
            "first_valid": sum(i["first_valid_resolved"] for i in issues.values()) / n_issues,
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
