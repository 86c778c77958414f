import git
import pytest

from harness.errors import UserError
from harness.repos import RepoCache, RepoSource


def make_origin(path):
    repo = git.Repo.init(path, initial_branch="main")
    (path / "a.txt").write_text("one\n")
    repo.index.add(["a.txt"])
    first = repo.index.commit("first").hexsha
    return repo, first


def test_sources_resolve_github_templates_and_directories(tmp_path, monkeypatch):
    monkeypatch.delenv("SWEM_REPO_SOURCE", raising=False)
    assert RepoSource().url_for("psf/requests") == "https://github.com/psf/requests.git"
    tmpl = RepoSource("https://git.example.internal/{owner}/{name}.git")
    assert tmpl.url_for("psf/requests") == "https://git.example.internal/psf/requests.git"
    (tmp_path / "psf__requests.git").mkdir()
    assert RepoSource(str(tmp_path)).url_for("psf/requests") == str(tmp_path / "psf__requests.git")
    monkeypatch.setenv("SWEM_REPO_SOURCE", str(tmp_path))
    assert RepoSource().url_for("psf/requests") == str(tmp_path / "psf__requests.git")


def test_mirror_is_cloned_once_and_checkouts_are_detached_without_remote(tmp_path):
    origin, first = make_origin(tmp_path / "src" / "org__proj")
    cache = RepoCache(tmp_path / "cache", RepoSource(str(tmp_path / "src")))
    mirror = cache.mirror("org/proj")
    marker = cache.mirror_path("org/proj") / "marker"
    marker.write_text("x")
    assert cache.mirror("org/proj").git_dir == mirror.git_dir and marker.exists()
    work = cache.checkout("org/proj", first, tmp_path / "work")
    checked = git.Repo(work)
    assert checked.head.is_detached and checked.head.commit.hexsha == first
    assert not checked.remotes
    assert (work / "a.txt").read_text() == "one\n"


def test_a_new_commit_is_fetched_and_a_missing_one_is_a_one_line_error(tmp_path):
    origin, first = make_origin(tmp_path / "src" / "org__proj")
    cache = RepoCache(tmp_path / "cache", RepoSource(str(tmp_path / "src")))
    cache.mirror("org/proj")
    (tmp_path / "src" / "org__proj" / "a.txt").write_text("two\n")
    origin.index.add(["a.txt"])
    second = origin.index.commit("second").hexsha
    work = cache.checkout("org/proj", second, tmp_path / "work")
    assert (work / "a.txt").read_text() == "two\n"
    with pytest.raises(UserError, match=f"commit {'f' * 40} of org/proj is not in"):
        cache.ensure_commit("org/proj", "f" * 40)


def test_unreachable_source_is_a_one_line_error(tmp_path):
    cache = RepoCache(tmp_path / "cache", RepoSource(str(tmp_path / "nowhere")))
    with pytest.raises(UserError, match="cannot clone org/proj from .*SWEM_REPO_SOURCE") as info:
        cache.mirror("org/proj")
    assert "\n" not in str(info.value)
    assert not list((tmp_path / "cache").glob("*.git"))
