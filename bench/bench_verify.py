"""Verification throughput on the mini benchmark: candidates decided per minute, the share of
unique patches, and the harness's overhead over the eval script's own time.

Each issue gets 8 candidates: the gold patch 3 times, it twice more with CRLF line endings
(the same after normalisation), a valid patch that fixes nothing, prose and an empty answer.
Runs `harness eval --predictions` in a fresh cache, so every distinct patch is really tested.

The harness runs twice: by default (a pytest run ends at the first required test that fails,
FAIL_TO_PASS tests first) and with --full-tests (every test, in the official order). Two
baselines over the same distinct patches, in the same run:
  - the naive loop: per patch, `docker run --rm` of the image, `git apply`, the official eval
    script (no guard, no screening, no records): what a user's shell loop costs;
  - the limit: the official eval scripts' own time inside those containers (the whole test
    command, nothing else), summed and divided by the harness's workers.

    make bench            (or: .venv/bin/python bench/bench_verify.py [--workers N])

On SWE-bench instances whose images are built (the realistic mix: per issue one resolving
patch and two that fail, the gold's duplicates and empty answers aside):

    SWEM_REPO_SOURCE=... .venv/bin/python bench/bench_verify.py --image-source build \
        --dataset ../shared/data/swe-bench-lite-test.jsonl --instances ID,ID,...
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import minibench, wiring  # noqa: E402


def noop_patch(instance) -> str:
    """A comment added to the first file the gold patch touches: valid, applies, fixes nothing."""
    path = re.search(r"^diff --git a/(\S+)", instance.gold_patch, re.M).group(1)
    if instance.repo in minibench.repos():
        before = (minibench.DATA / "repos" / instance.repo.split("/")[1] / path).read_text()
    else:  # a SWE-bench repo, from SWEM_REPO_SOURCE
        mirror = wiring.repo_cache_for(instance).ensure_commit(instance.repo, instance.base_commit)
        before = mirror.git.show(f"{instance.base_commit}:{path}") + "\n"
    after = "# reviewed\n" + before
    return "".join(
        difflib.unified_diff(
            before.splitlines(True), after.splitlines(True), f"a/{path}", f"b/{path}"
        )
    )


def predictions(instances) -> list[dict]:
    rows = []
    for inst in instances:
        crlf = inst.gold_patch.replace("\n", "\r\n")
        for patch in (
            [inst.gold_patch] * 3 + [crlf] * 2 + [noop_patch(inst), "I think it works.", ""]
        ):
            rows.append(
                {
                    "instance_id": inst.instance_id,
                    "model_name_or_path": "bench",
                    "model_patch": patch,
                }
            )
    return rows


def naive_loop(instances, cands: list[dict], verdicts: list[dict]) -> tuple[float, float]:
    """Seconds for a shell loop's way of verifying each distinct patch (a fresh container per
    patch, the patch applied with git, swebench's own eval script run, the container gone),
    and the eval scripts' own seconds within it."""
    from sandbox import swebench_adapter

    wiring.register_minibench_specs()  # the mini benchmark's specs, as the harness has them
    by_id = {i.instance_id: i for i in instances}
    images = {(v["instance_id"], v["patch_sha"]): v["image"] for v in verdicts if v.get("image")}
    patches = {(c["instance_id"], c["patch_sha"]): c["patch"] for c in cands if c["patch_sha"]}
    start, scripts_s = time.monotonic(), 0.0
    for key, patch in patches.items():
        script = swebench_adapter.eval_script(by_id[key[0]])
        shell = (
            f"cat > /tmp/patch.diff <<'SWEM_EOF'\n{patch}SWEM_EOF\n"
            f"cat > /eval.sh <<'SWEM_EOF'\n{script}SWEM_EOF\n"
            "cd /testbed && git apply /tmp/patch.diff\n"
            "t0=$(date +%s.%N); bash /eval.sh >/dev/null 2>&1; t1=$(date +%s.%N)\n"
            'echo "SWEM_SCRIPT_S $t0 $t1"\n'
        )
        done = subprocess.run(
            ["docker", "run", "--rm", "-i", "--network", "none", images[key], "bash", "-s"],
            input=shell,
            capture_output=True,
            text=True,
        )
        if found := re.search(r"SWEM_SCRIPT_S (\S+) (\S+)", done.stdout):
            scripts_s += float(found.group(2)) - float(found.group(1))
    return time.monotonic() - start, scripts_s


def engine_round_trips(image: str, rounds: int = 9) -> dict[str, float]:
    """Median seconds of each engine round trip a verification makes in a running container,
    measured here: the upload of patch, script and guard files (one tar), an exec (the apply,
    then the eval script: two per candidate), and the read of the guard's record. No design
    that starts a container per candidate, or reuses one, makes fewer of them; their sum is
    the floor under the harness's per-candidate overhead on this engine."""
    import io
    import tarfile

    import docker

    client = docker.from_env()
    container = client.containers.create(image, ["sleep", "infinity"], network_mode="none")
    container.start()
    upload = io.BytesIO()
    with tarfile.open(fileobj=upload, mode="w") as tar:
        for name in ("tmp/patch.diff", "eval.sh", "tmp/swem-key"):
            info = tarfile.TarInfo(name)
            info.size = 4096
            tar.addfile(info, io.BytesIO(b"x" * 4096))

    def run_exec() -> None:
        exec_id = client.api.exec_create(container.id, ["true"])["Id"]
        client.api.exec_start(exec_id)
        client.api.exec_inspect(exec_id)

    steps = {
        "upload": lambda: container.put_archive("/", upload.getvalue()),
        "exec": run_exec,
        "read": lambda: b"".join(container.get_archive("/eval.sh")[0]),
    }
    try:
        medians = {}
        for name, step in steps.items():
            times = []
            for _ in range(rounds):
                t0 = time.monotonic()
                step()
                times.append(time.monotonic() - t0)
            medians[name] = statistics.median(times)
    finally:
        container.remove(force=True)
    return medians


def run_harness(tmp: str, preds: Path, env: dict, args, *extra: str):
    """`harness eval --predictions` in a fresh verdict cache: (wall seconds, run directory)."""
    run_id = "bench" + "".join(extra).replace("-", "_")
    env = {**env, "SWEM_VERDICT_CACHE": str(Path(tmp) / f"verdicts-{run_id}")}
    harness = str(Path(sys.executable).parent / "harness")
    cmd = [harness, "eval", "-d", args.dataset, "-k", "8", "--predictions", str(preds)]
    cmd += [
        "--runs-dir",
        tmp,
        "--run-id",
        run_id,
        "--no-pull",
        "--verify-workers",
        str(args.workers),
    ]
    cmd += [
        "--image-source",
        args.image_source,
        *(["--instances", args.instances] if args.instances else []),
    ]
    start = time.monotonic()
    done = subprocess.run([*cmd, *extra], env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"bench run failed:\n{done.stdout}\n{done.stderr}")
    return wall, Path(tmp) / run_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--dataset", default="mini")
    parser.add_argument("--instances", default="", help="Comma-separated ids (default: all).")
    parser.add_argument("--image-source", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swem-bench-") as tmp:
        # Verdicts always in a fresh cache; the mini benchmark's mirrors too (SWE-bench repos
        # and their build logs stay in the user's cache: cloning astropy again is no bench).
        env = {**os.environ, "SWEM_VERDICT_CACHE": str(Path(tmp) / "verdicts")}
        if args.dataset == "mini":
            env["SWEM_CACHE"] = str(Path(tmp) / "cache")
        os.environ.update(env)
        wanted = [i for i in args.instances.split(",") if i] or None
        instances = wiring.load(args.dataset, "test", wanted)
        rows = predictions(instances)
        preds = Path(tmp) / "preds.jsonl"
        preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
        wall, run = run_harness(tmp, preds, env, args)
        full_wall, _ = run_harness(tmp, preds, env, args, "--full-tests")
        verdicts = [json.loads(x) for x in (run / "verdicts.jsonl").read_text().splitlines()]
        cands = [json.loads(x) for x in (run / "candidates.jsonl").read_text().splitlines()]
        naive, scripts_s = naive_loop(instances, cands, verdicts)
        trips = engine_round_trips(next(v["image"] for v in verdicts if v.get("image")))
    valid = [c for c in cands if c["patch_sha"]]
    unique = {(c["instance_id"], c["patch_sha"]) for c in valid}
    total = [v["durations"]["total_s"] for v in verdicts]
    tests = [v["durations"]["tests_s"] for v in verdicts if "tests_s" in v["durations"]]
    resolved = sum(v["status"] == "resolved" for v in verdicts)
    stopped = sum(bool(v.get("not_run")) for v in verdicts)
    limit = scripts_s / args.workers
    per_candidate = trips["upload"] + 2 * trips["exec"] + trips["read"]
    floor = limit + len(unique) * per_candidate / args.workers
    table = Table(
        title=f"verification on {args.dataset} ({len(instances)} issues, "
        f"{args.workers} worker(s), images cached)"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in [
        ("candidates", str(len(cands))),
        ("valid / unique patches verified", f"{len(valid)} / {len(unique)}"),
        ("unique-patch ratio (unique / valid)", f"{len(unique) / len(valid):.2f}"),
        ("resolved verdicts (gold should, no-op should not)", f"{resolved} / {len(verdicts)}"),
        ("wall time, whole command", f"{wall:.1f} s"),
        ("verdicts that stopped at a failing required test", f"{stopped} / {len(verdicts)}"),
        ("wall time with --full-tests", f"{full_wall:.1f} s"),
        ("candidates decided per minute", f"{len(cands) / wall * 60:.0f}"),
        ("distinct patches verified per minute", f"{len(unique) / wall * 60:.1f}"),
        (
            "naive loop over the same patches (docker run --rm + git apply + eval script)",
            f"{naive:.1f} s",
        ),  # fmt: skip
        ("the limit: the official eval scripts' own time, summed / workers", f"{limit:.1f} s"),
        ("harness wall / limit", f"{wall / limit:.2f}x"),
        (
            "engine round trips per candidate: upload + 2 execs + record read (medians)",
            f"{per_candidate * 1000:.0f} ms = {trips['upload'] * 1000:.0f} + "
            f"2 x {trips['exec'] * 1000:.0f} + {trips['read'] * 1000:.0f}",
        ),
        ("the floor: limit + round trips x distinct patches / workers", f"{floor:.1f} s"),
        ("harness wall / floor", f"{wall / floor:.2f}x"),
        (
            "the floor / limit (the best any container-per-exec design gets)",
            f"{floor / limit:.2f}x",
        ),
        ("harness throughput / naive loop's", f"{naive / wall:.2f}x"),
        ("--full-tests wall / limit", f"{full_wall / limit:.2f}x"),
        ("--full-tests throughput / naive loop's", f"{naive / full_wall:.2f}x"),
        ("eval script time per verification (median)", f"{statistics.median(tests):.2f} s"),
        ("verification time incl. container (median)", f"{statistics.median(total):.2f} s"),
        (
            "harness overhead over the eval script",
            f"{statistics.median(total) / statistics.median(tests):.1f}x",
        ),
    ]:
        table.add_row(name, value)
    Console().print(table)


if __name__ == "__main__":
    main()
