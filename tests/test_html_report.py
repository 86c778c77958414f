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
        page.goto(site[0].as_uri())
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
