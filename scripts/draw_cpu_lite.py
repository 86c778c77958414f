"""Draws the cpu-lite measurement subset (harness/subsets/cpu-lite.txt) once, before any
measurement: 24 rows of SWE-bench Lite's test split, stratified by repo with a fixed seed,
from the rows #13 validated sound offline here (gold resolved, empty failed, three repeats;
docs/environments.md, "Fidelity") whose tests run in well under a minute.
Left out: sympy (whole test files run uncached, minutes per row), xarray (refused: conda
only), django, matplotlib and scikit-learn (snapshots too large to fetch here), and the
rows #13 found unsound. Usage: python scripts/draw_cpu_lite.py LITE_TEST.jsonl"""

import json
import random
import sys
from collections import defaultdict

SEED = 25
SIZE = 24
REPOS = (
    "pytest-dev/pytest",
    "sphinx-doc/sphinx",
    "pylint-dev/pylint",
    "mwaskom/seaborn",
    "pallets/flask",
    "psf/requests",
    "astropy/astropy",
)
UNSOUND = {
    "astropy__astropy-14365",
    "astropy__astropy-14995",
    "astropy__astropy-6938",
    "astropy__astropy-7746",
    "psf__requests-2674",
    "psf__requests-863",
}


def draw(rows: list[dict]) -> list[str]:
    pools = defaultdict(list)
    for row in rows:
        if row["repo"] in REPOS and row["instance_id"] not in UNSOUND:
            pools[row["repo"]].append(row["instance_id"])
    total = sum(len(p) for p in pools.values())
    rng = random.Random(SEED)
    # largest-remainder allocation of SIZE over the repos, by pool size
    quotas = {repo: SIZE * len(pool) / total for repo, pool in pools.items()}
    counts = {repo: int(q) for repo, q in quotas.items()}
    for repo in sorted(quotas, key=lambda r: (counts[r] - quotas[r], r))[
        : SIZE - sum(counts.values())
    ]:
        counts[repo] += 1
    chosen = []
    for repo in REPOS:
        chosen += sorted(rng.sample(sorted(pools[repo]), counts[repo]))
    return chosen


if __name__ == "__main__":
    rows = [json.loads(line) for line in open(sys.argv[1])]
    print(f"# cpu-lite: drawn by scripts/draw_cpu_lite.py (seed {SEED}); never tuned on")
    print("\n".join(draw(rows)))
