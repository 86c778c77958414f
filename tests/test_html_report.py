"""The HTML report in a real browser (issue #28): Playwright from PyPI driving Debian's Chromium
(`make test` installs it) over a real mini run verified in Docker, with the network cut."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.test_honest_numbers import edited_patch, pred_args, predictions_file
from tests.test_hostile_patches import CALC, in_package

OTHER = "swe-monkeys__minicalc-2"


@pytest.fixture(scope="module")
def site(docker_engine, mini_instances, tmp_path_factory) -> tuple[Path, dict, Path]:
    """A run of several predictions per issue (gold, gold with a flagged line, a patch that
    fixes nothing, an empty one) and its report site."""
    tmp = tmp_path_factory.mktemp("html")
    calc = mini_instances[CALC]
    flagged = edited_patch(calc, in_package("\nimport atexit as _a\n"))
    readme = edited_patch(calc, lambda tree: (tree / "README.md").write_text("x\n"))
    nothing = "".join(p for p in readme.split("diff --git") if "README" in p)
    rows = [
        {"instance_id": CALC, "model_patch": calc.gold_patch},
        {"instance_id": CALC, "model_patch": flagged},
        {"instance_id": CALC, "model_patch": "diff --git" + nothing},
        {"instance_id": CALC, "model_patch": calc.gold_patch},
        {"instance_id": OTHER, "model_patch": ""},
    ]
    preds = predictions_file(tmp / "p.jsonl", rows)
    args = pred_args(tmp, "web", str(preds), instances=(CALC, OTHER))
    assert CliRunner().invoke(app, args).exit_code == 0
    done = CliRunner().invoke(
        app, ["report", str(tmp / "web"), "--out", str(tmp / "out"), "--html"]
    )
    assert done.exit_code == 0, done.output
    summary = json.loads((tmp / "web" / "summary.json").read_text())
    return tmp / "out" / "html" / "index.html", summary, tmp / "web"


@pytest.fixture
def page(site):
    yield from _open(site[0])


def _open(index: Path):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: `make browser` installs it"
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = browser.new_context(offline=True)
        context.route("**/*", lambda route: _only_files(route, requests))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(index.as_uri())
        yield page
        assert errors == [], errors
        assert [r for r in requests if not r.startswith("file://")] == []  # nothing fetched
        browser.close()


def _only_files(route, requests: list[str]) -> None:
    requests.append(route.request.url)
    if route.request.url.startswith("file://"):
        route.continue_()
    else:
        route.abort()


def test_the_curve_has_a_point_per_k_and_the_figures_are_the_summarys(site, page):
    _, summary, _ = site
    assert page.locator("circle.point.cov").count() == len(summary["curve"]["k"])
    ys = [float(y) for y in page.locator("circle.point.cov").evaluate_all(
        "nodes => nodes.map(n => n.dataset.y)")]  # fmt: skip
    assert ys == pytest.approx(summary["curve"]["coverage"])
    for k, value in summary["coverage_at"].items():
        cell = page.locator(f"#coverage-table td[data-k='{k}']").inner_text()
        assert cell == f"{100 * value:.1f}%"
    counts = page.locator("#counts").inner_text()
    assert f"issues {summary['n_issues']}" in counts
    assert f"flagged {sum(summary['flags'].values())}" in counts


def test_a_filter_narrows_the_table(page):
    rows = page.locator("#issue-table tbody tr")
    assert rows.count() == 2
    page.select_option("#filter", "flagged")
    assert rows.count() == 1 and rows.first.get_attribute("data-issue") == CALC
    page.select_option("#filter", "all")
    page.fill("#search", "minicalc-2")
    assert rows.count() == 1 and rows.first.get_attribute("data-issue") == OTHER


def test_a_candidate_opens_with_the_recorded_diff_and_verdict(site, page):
    _, _, run = site
    page.locator(f"#issue-table tbody tr[data-issue='{CALC}']").click()
    items = page.locator("#candidate-list li")
    items.first.wait_for()
    assert items.count() == 3  # gold twice is one patch
    assert page.locator("#candidate-list li.resolving").count() == 2  # gold, gold + flag
    assert page.locator("#candidate-list li.flagged").count() == 1
    page.locator("#candidate-list li.flagged").click()
    candidates = [json.loads(x) for x in (run / "candidates.jsonl").read_text().splitlines()]
    verdicts = {
        v["patch_sha"]: v
        for v in map(json.loads, (run / "verdicts.jsonl").read_text().splitlines())
    }
    flagged = next(c for c in candidates if c["patch_sha"] and verdicts[c["patch_sha"]]["flags"])
    diff = page.locator("#candidate-view pre.diff").text_content()
    assert diff.strip() == flagged["patch"].strip()
    verdict = page.locator("#candidate-view .verdict").inner_text()
    assert verdict.startswith(f"verdict: {verdicts[flagged['patch_sha']]['status']}")
    assert "process-reach" in page.locator("#candidate-view .flagged").inner_text()


def test_eval_leaves_its_own_site_current_and_names_it(site):
    """`eval` keeps RUN/report/html current while it runs and once more at the end."""
    from harness.html_report import site_of

    _, summary, run = site
    index = site_of(run)
    assert index.exists()
    data = _runs_data(index)
    assert data[0]["curve"] == summary["curve"] and len(data[0]["issues"]) == 2


def _runs_data(index: Path) -> list:
    page = index.read_text()
    start = page.index("window.RUNS = ") + len("window.RUNS = ")
    return json.JSONDecoder().raw_decode(page[start:])[0]


def _synthetic_run(run_dir: Path, issues: range, k: int = 4) -> None:
    from harness.store import RunStore
    from harness.types import Candidate, Verdict, VerdictStatus

    store = RunStore(run_dir)
    if store.manifest() is None:
        identity = {"dataset": "x", "samples": k, "model": "m", "instances": []}
        store.write_manifest({"command": "eval", "run_id": run_dir.name, "identity": identity})
    with store.writer():
        for i in issues:
            patch = f"diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-a\n+b{i}\n"
            sha = f"{i:064x}"
            store.append_candidates(
                [Candidate(f"x__r-{i}", n, patch, sha, None, "", 10, 5, 1.0) for n in range(k)]
            )
            store.append_verdict(Verdict(f"x__r-{i}", sha, VerdictStatus.UNRESOLVED))


def test_the_live_site_follows_the_records_and_is_never_half_written(tmp_path):
    import time

    from harness.html_report import LiveSite, site_of

    run = tmp_path / "live"
    _synthetic_run(run, range(2))
    with LiveSite(run, interval_s=0.05) as live:
        deadline = time.monotonic() + 20
        while not site_of(run).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_runs_data(site_of(run))[0]["issues"]) == 2
        _synthetic_run(run, range(2, 5))
        while len(_runs_data(site_of(run))[0]["issues"]) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)  # each read is of a whole file: written beside, then renamed
        assert len(_runs_data(site_of(run))[0]["issues"]) == 5
    assert live.written == site_of(run)
    assert not list(site_of(run).parent.rglob("*.part"))


def test_a_run_that_fails_keeps_its_last_site_and_a_failed_write_is_said_once(tmp_path):
    import time

    from harness.html_report import LiveSite, site_of

    said: list[str] = []
    run = tmp_path / "damaged"
    _synthetic_run(run, range(1))
    with (run / "verdicts.jsonl").open("a") as f:
        f.write("not json\n")
    with pytest.raises(RuntimeError), LiveSite(run, 0.01, said.append):
        time.sleep(0.2)  # several tries, each meeting the damaged line
        raise RuntimeError("the run failed")
    assert len(said) == 1 and "not written" in said[0] and "not JSON" in said[0]
    assert not site_of(run).exists()
    with LiveSite(tmp_path / "off", 0) as live:  # --html-every 0: never
        _synthetic_run(tmp_path / "off", range(1))
    assert live.written is None and not site_of(tmp_path / "off").exists()


def test_the_x_axis_shows_what_k_samples_cost(site, tmp_path):
    for page in _open(site[0]):
        assert page.locator("#xaxis option[value=tokens]").is_disabled()  # predictions: none
        assert page.locator("#xaxis option[value=dollars]").is_disabled()  # and no price
    from harness.html_report import write_html
    from harness.report import load_summary

    run = tmp_path / "priced"
    _synthetic_run(run, range(3))  # 15 tokens a sample
    for priced in _open(write_html([load_summary(run)], tmp_path / "site")):
        points = priced.locator("circle.point.cov")
        before = points.evaluate_all("nodes => nodes.map(n => n.getAttribute('cx'))")
        priced.select_option("#xaxis", "tokens")
        assert "tokens per issue" in priced.locator("#curve").text_content()
        assert points.evaluate_all("nodes => nodes.map(n => n.getAttribute('cx'))") == before
        assert (
            points.nth(1).locator("title").text_content().startswith("coverage@k at k = 2 (30.0)")
        )
        labels = priced.locator("#curve text.tick").all_text_contents()
        assert labels and "20.0" in labels


def test_each_selectors_pick_can_filter_the_table(site, page):
    _, summary, _ = site
    rows = page.locator("#issue-table tbody tr")
    for name in summary["selection_at"]:
        page.select_option("#filter", "pick:" + name)
        resolving = {i for i, v in summary["issues"].items() if v["picks_resolved"][name]}
        shown = {rows.nth(n).get_attribute("data-issue") for n in range(rows.count())}
        assert shown == resolving, name


def test_signals_and_an_agentic_trajectory_show_in_the_candidate_view(site, tmp_path):
    """A copy of the run given a regression signal, judge votes and a trajectory for the
    gold patch's first sample."""
    from harness.html_report import write_html
    from harness.report import load_summary

    _, _, run = site
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("report"))
    cands = [json.loads(x) for x in (copy / "candidates.jsonl").read_text().splitlines()]
    first = next(c for c in cands if c["instance_id"] == CALC)
    sha = first["patch_sha"]
    with (copy / "signals.jsonl").open("a") as f:
        f.write(json.dumps({"kind": "regression", "instance_id": CALC, "patch_sha": sha,
                            "tests": ["tests/test_calc.py"], "strikes": [], "ran": 3,
                            "seconds": 1.0}) + "\n")  # fmt: skip
        f.write(json.dumps({"kind": "judge", "instance_id": CALC, "patch_sha": "",
                            "votes": {sha: 4}, "prompt_tokens": 1, "completion_tokens": 1,
                            "answers": []}) + "\n")  # fmt: skip
    steps = [{"action": "bash", "argument": "grep -n divide minicalc/*.py",
              "observation": "minicalc/evaluator.py:12: def divide", "prompt_tokens": 1,
              "completion_tokens": 1, "seconds": 0.1}]  # fmt: skip
    folder = copy / "trajectories" / CALC
    folder.mkdir(parents=True)
    (folder / f"{first['sample_index']}.json").write_text(
        json.dumps({"steps": steps, "exit_reason": "submitted", "messages": []})
    )
    index = write_html([load_summary(copy)], tmp_path / "site")
    for page in _open(index):
        page.locator(f"#issue-table tbody tr[data-issue='{CALC}']").click()
        page.locator("#candidate-list li").first.wait_for()
        page.locator(f"#candidate-list li:has-text('{sha[:12]}')").click()
        signals = page.locator("#candidate-view .signals").inner_text()
        assert "breaks none of 1 nearby test file(s)" in signals and "judge: 4 of 4" in signals
        trajectory = page.locator("#candidate-view .trajectory")
        assert "1 step(s), submitted" in trajectory.locator("summary").inner_text()
        assert "grep -n divide" in trajectory.locator("pre.argument").inner_text()


def test_the_issue_table_shows_container_seconds_and_locations_from_the_records(site, page):
    _, _, run = site
    verdicts = [json.loads(x) for x in (run / "verdicts.jsonl").read_text().splitlines()]
    final = {(v["instance_id"], v["patch_sha"]): v for v in verdicts}
    want = round(
        sum(v["durations"].get("total_s", 0.0) for (i, _), v in final.items() if i == CALC), 1
    )
    data = page.evaluate("window.RUNS[0].issues")
    row = next(i for i in data if i["id"] == CALC)
    assert row["container_s"] == pytest.approx(want, abs=0.05)
    assert row["location"] == ""  # predictions show the model nothing
