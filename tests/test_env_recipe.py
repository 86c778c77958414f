"""Offline environment recipes from swebench's specs (pure: no Docker, no network)."""

import dataclasses
from datetime import UTC, datetime

import pytest

from harness.dataset import load_instances
from harness.types import Instance
from sandbox import era_index, swebench_adapter
from sandbox.env_build import cause
from sandbox.env_recipe import (
    RESOLVE_AS_OF,
    UnsupportedSpec,
    choose_suite,
    env_recipe,
    instance_recipe,
)
from tests.conftest import LITE

INST = Instance("o__r-1", "o/r", "a" * 40, "issue", "1.0", "", "", ("t",), ())


@pytest.mark.parametrize(
    "wanted,suite,note",
    [
        ("3.9", "bullseye", ""),
        ("3.11", "bookworm", ""),
        ("3.6", "bullseye", "python 3.6 requested, 3.9 used (bullseye"),
        ("3.8", "bullseye", "python 3.8 requested, 3.9 used (bullseye"),
        ("3.10", "bullseye", "python 3.10 requested, 3.9 used (bullseye"),  # a tie goes older
        ("3.12", "bookworm", "python 3.12 requested, 3.11 used (bookworm"),
    ],
)
def test_suite_is_the_one_with_the_nearest_python(wanted, suite, note):
    got_suite, _, got_note = choose_suite(wanted)
    assert got_suite == suite and got_note.startswith(note)
    # a substitution says what was searched for the exact one
    assert bool(note) == ("no other CPython is installable offline" in got_note)


def test_conda_packages_and_pip_packages_become_pip_installs():
    env = env_recipe(
        INST,
        {
            "python": "3.9",
            "packages": "numpy scipy 'pytest<8'",
            "pip_packages": ["attrs==23.1.0", "pluggy==0.13.1"],
        },
    )
    assert env.pip_installs == (("numpy", "scipy", "pytest<8"), ("attrs==23.1.0", "pluggy==0.13.1"))
    assert "conda packages installed with pip" in env.notes
    script = env.script()
    assert "python3 -m venv /opt/testbed" in script
    assert "> /opt/miniconda3/bin/activate" in script
    # the packaging tools of the official images' era come first
    assert script.index("pip==24.0 setuptools==69.5.1 wheel==0.43.0") < script.index("python numpy")
    assert "swem-testbed.pth" in script  # the venv seen from a bare interpreter (tox)
    assert "'pytest<8'" in script


def test_unsupported_specs_are_refused_with_a_reason():
    with pytest.raises(UnsupportedSpec, match="conda environment.yml"):
        env_recipe(INST, {"python": "3.9", "packages": "environment.yml"})
    with pytest.raises(UnsupportedSpec, match="requirements file not found"):
        env_recipe(INST, {"python": "3.9", "packages": "requirements.txt"})


def test_requirements_are_read_through_the_repo_with_includes():
    files = {
        "requirements/dev.txt": "-r tests.txt\n-e .\n# comment\nblack==23.1\n",
        "requirements/tests.txt": "pytest==7.4.0\n",
    }
    swebench_adapter.MAP_REPO_TO_REQS_PATHS.setdefault("o/r", ["requirements/dev.txt"])
    text = swebench_adapter.requirements_text("o/r", files.get)
    assert "pytest==7.4.0" in text and "black==23.1" in text
    assert "-e ." not in text and "comment" not in text
    env = env_recipe(INST, {"python": "3.11", "packages": "requirements.txt"}, text)
    assert "swem_pip python -r /tmp/requirements.txt" in env.script()


def test_recipe_keys_follow_their_contents():
    spec = {
        "python": "3.9",
        "packages": "pytest",
        "install": "python -m pip install -e .",
        "pre_install": ["apt-get install -y locales"],
    }
    env = env_recipe(INST, spec)
    inst = instance_recipe(INST, spec, env, None)
    assert inst.commands == ("apt-get install -y locales", "python -m pip install -e .")
    assert "git commit --allow-empty" in inst.script()
    other = instance_recipe(
        Instance("o__r-2", "o/r", "b" * 40, "", "1.0", "", "", (), ()), spec, env, None
    )
    assert other.key != inst.key and other.env.key == inst.env.key
    assert env_recipe(INST, {**spec, "python": "3.11"}).key != env.key


@pytest.mark.skipif(not LITE.exists(), reason="needs ../shared/data beside the checkout")
def test_every_lite_row_gets_a_recipe_or_a_reason():
    outcomes = {}
    for instance in load_instances(str(LITE)):
        specs = swebench_adapter.env_specs(instance)
        try:
            env = env_recipe(
                instance, specs, "x" if specs.get("packages") == "requirements.txt" else ""
            )
            outcomes[instance.instance_id] = env.suite
        except UnsupportedSpec as exc:
            outcomes[instance.instance_id] = str(exc)
    assert len(outcomes) == 300
    assert sum(v in ("bullseye", "bookworm") for v in outcomes.values()) == 273
    assert sum("environment.yml" in v for v in outcomes.values()) == 27


XARRAY_LIKE = """name: xarray-tests
channels:
  - conda-forge
dependencies:
  - python=3.10
  - numpy
  - pandas>=1.3
  - hdf5
  - matplotlib-base=3.5
  - pip
  - pip:
    - numbagg
"""


def test_a_conda_environment_is_translated_to_pip_with_notes():
    from sandbox.conda_env import translate

    t = translate(XARRAY_LIKE)
    assert t.requirements.split() == ["numpy", "pandas>=1.3", "matplotlib==3.5.*", "numbagg"]
    assert "hdf5 dropped: h5py and netCDF4 wheels bundle it" in t.notes
    assert "matplotlib-base installed as matplotlib" in t.notes
    spec = {"python": "3.10", "packages": "environment.yml", "pip_packages": ["pytest==7.4.0"]}
    env = env_recipe(INST, spec, environment=XARRAY_LIKE)
    assert "matplotlib==3.5.*" in env.requirements and env.pip_installs == (("pytest==7.4.0",),)
    assert "conda environment.yml installed with pip" in env.notes


def test_a_conda_only_package_refuses_the_environment_by_name():
    with pytest.raises(UnsupportedSpec, match=r"PyPI does not have: cdms2"):
        env_recipe(
            INST,
            {"packages": "environment.yml"},
            environment=XARRAY_LIKE.replace("  - numpy\n", "  - numpy\n  - cdms2\n"),
        )
    with pytest.raises(UnsupportedSpec, match="environment.yml was not found"):
        env_recipe(INST, {"packages": "environment.yml"})


def test_builds_resolve_as_of_the_official_era_with_pins_exempt():
    spec = {
        "python": "3.9",
        "packages": "pytest docutils",
        "pip_packages": ["tox==4.16.0", "Jinja2[i18n] == 3.0.3"],
        "install": "python -m pip install -e . 'setuptools==62.6.0'",
    }
    env = env_recipe(INST, spec)
    inst = instance_recipe(INST, spec, env, None)
    assert env.resolve_as_of == RESOLVE_AS_OF
    for script in (env.script(), inst.script()):
        # the era index starts before the first pip, and every pip goes through it
        start = script.index("swem-era-index.py serve 2024-03-31")
        pips = [script.find(x) for x in ("\nswem_pip python", "-m pip install -e")]
        assert start < min(i for i in pips if i >= 0)
        assert "export PIP_INDEX_URL=http://127.0.0.1:3141/simple/" in script
    # a line of exact pins resolves as of its newest pin (tox 4.16.0 needs a newer filelock)
    assert "swem_pip python tox==4.16.0 'Jinja2[i18n] == 3.0.3'" in env.script()
    assert env.pinned() >= {"tox==4.16.0", "jinja2==3.0.3", "pip==24.0", "wheel==0.43.0"}
    assert not any(p.startswith("docutils") for p in env.pinned())
    assert (
        "setuptools"
        in inst.script().split("/usr/bin/python3 /tmp/swem-era-index.py")[1].split("\n")[0]
    )
    # another day is another image; no day is the live index, with no era index at all
    assert env_recipe(INST, spec, resolve_as_of="2023-01-01").key != env.key
    live = env_recipe(INST, spec, resolve_as_of="").script()
    assert "era-index" not in live and "swem_pip python tox==4.16.0" in live


def test_requests_gets_a_local_httpbin_noted():
    env = env_recipe(dataclasses.replace(INST, repo="psf/requests"), SPEC39)
    assert env.service is not None and "httpbin" in env.script()
    assert any("local httpbin" in note for note in env.notes)
    assert env_recipe(INST, SPEC39).service is None


SPEC39 = {"python": "3.9", "packages": "pytest"}
DAY = datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC)


def test_the_era_index_drops_later_files_and_keeps_undated_ones():
    page = {
        "meta": {"api-version": "1.1"},
        "name": "docutils",
        "files": [
            {
                "filename": "docutils-0.20.1.tar.gz",
                "url": "a.tar.gz",
                "hashes": {},
                "upload-time": "2024-03-23T18:57:54.123Z",
            },
            {
                "filename": "docutils-0.22.tar.gz",
                "url": "/b.tar.gz",
                "hashes": {"sha256": "f"},
                "upload-time": "2025-07-29T15:20:31Z",
                "requires-python": ">=3.9",
            },
            {"filename": "docutils-0.1.tar.gz", "url": "https://x/c.tar.gz", "hashes": {}},
        ],
    }
    kept, dropped = era_index.filter_page(page, DAY, "https://idx/simple/docutils/")
    assert dropped == 1
    # a pinned version is served whatever its day, and only that version
    pinned, _ = era_index.filter_page(page, DAY, "https://i/", frozenset({"0.22"}))
    assert len(pinned["files"]) == 3
    assert [f["filename"] for f in kept["files"]] == [
        "docutils-0.20.1.tar.gz",
        "docutils-0.1.tar.gz",
    ]
    assert kept["files"][0]["url"] == "https://idx/simple/docutils/a.tar.gz"
    assert era_index.cutoff_time("2024-03-31") == DAY.replace(microsecond=999999)
    html = era_index.html_page({**page, "files": page["files"][1:2]})
    assert 'href="/b.tar.gz#sha256=f" data-requires-python="&gt;=3.9"' in html


def test_a_pinned_line_resolves_as_of_its_newest_pin():
    """Against the real index: tox 4.16.0 was released on 2024-07-03 (UTC)."""
    pins = ["-q", "tox==4.16.0", "tox-current-env==0.0.11", "pytest<8"]
    assert era_index.pins(pins) == [("tox", "4.16.0"), ("tox-current-env", "0.0.11")]
    assert era_index.newest("2024-03-31", "https://pypi.org/simple/", pins) == "2024-07-03"
    assert era_index.newest("2024-03-31", "https://pypi.org/simple/", ["docutils"]) == "2024-03-31"


@pytest.mark.parametrize(
    "log,named",
    [
        (
            "error: command 'x86_64-linux-gnu-gcc' failed: No such file or directory",
            "no C compiler",
        ),
        (
            "Scanners.c:8554:45: error: 'PyTypeObject' has no member named 'tp_print'\n"
            "error: command '/usr/bin/x86_64-linux-gnu-gcc' failed with exit code 1",
            "C code that does not compile with this Python ('PyTypeObject' has no member",
        ),
        ("ERROR: No matching distribution found for filelock>=3.15.4", "filelock>=3.15.4 is not"),
    ],
)
def test_build_failures_name_their_cause(log, named):
    assert cause(log).startswith(named)
