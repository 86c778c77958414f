"""Offline environment recipes from swebench's specs (pure: no Docker, no network)."""

import pytest

from harness.dataset import load_instances
from harness.types import Instance
from sandbox import swebench_adapter
from sandbox.env_recipe import UnsupportedSpec, choose_suite, env_recipe, instance_recipe
from tests.conftest import LITE

INST = Instance("o__r-1", "o/r", "a" * 40, "issue", "1.0", "", "", ("t",), ())


@pytest.mark.parametrize(
    "wanted,suite,note",
    [
        ("3.9", "bullseye", ""),
        ("3.11", "bookworm", ""),
        ("3.6", "bullseye", "python 3.6 requested, 3.9 used (bullseye)"),
        ("3.8", "bullseye", "python 3.8 requested, 3.9 used (bullseye)"),
        ("3.10", "bullseye", "python 3.10 requested, 3.9 used (bullseye)"),  # a tie goes older
        ("3.12", "bookworm", "python 3.12 requested, 3.11 used (bookworm)"),
    ],
)
def test_suite_is_the_one_with_the_nearest_python(wanted, suite, note):
    assert choose_suite(wanted) == (suite, choose_suite(wanted)[1], note)
    assert choose_suite(wanted)[0] == suite


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
    assert script.index("pip==24.0 setuptools==69.5.1 wheel==0.43.0") < script.index(
        "install numpy"
    )
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
    assert "pip install -r /tmp/requirements.txt" in env.script()


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
