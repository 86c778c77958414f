"""A cache of bare git mirrors, one per repo, and checkouts of a commit from them (gitpython)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import git

from harness.errors import UserError

GITHUB = "https://github.com/{repo}.git"


class RepoSource:
    """Where repos come from: "github" (default), a local directory of mirrors, or a URL
    template with {repo}, {owner} and {name} (for air-gapped sites with their own git server).
    The default comes from $SWEM_REPO_SOURCE, else GitHub."""

    def __init__(self, spec: str | None = None) -> None:
        self.spec = spec or os.environ.get("SWEM_REPO_SOURCE") or "github"

    def url_for(self, repo: str) -> str:
        owner, _, name = repo.partition("/")
        if self.spec == "github":
            return GITHUB.format(repo=repo)
        if "{" in self.spec:
            return self.spec.format(repo=repo, owner=owner, name=name)
        root = Path(self.spec).expanduser()
        candidates = (f"{owner}__{name}.git", f"{owner}__{name}", f"{repo}.git", repo, name)
        for candidate in (root / c for c in candidates):
            if candidate.exists():
                return str(candidate)
        return str(root / f"{owner}__{name}.git")


class RepoCache:
    """`cache_dir/<owner>__<name>.git` bare mirrors: cloned once, fetched again only when a
    commit that is asked for is missing."""

    def __init__(self, cache_dir: Path, source: RepoSource | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.source = source or RepoSource()

    def mirror_path(self, repo: str) -> Path:
        return self.cache_dir / (repo.replace("/", "__") + ".git")

    def mirror(self, repo: str) -> git.Repo:
        path = self.mirror_path(repo)
        if path.exists():
            return git.Repo(path)
        url = self.source.url_for(repo)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".clone-", dir=self.cache_dir))
        try:
            git.Repo.clone_from(url, tmp / "m.git", mirror=True)
            os.replace(tmp / "m.git", path)  # atomic: a half-made mirror is never seen
        except git.GitCommandError as exc:
            raise UserError(
                f"cannot clone {repo} from {url} ({_last_line(exc)}): "
                "set SWEM_REPO_SOURCE to a local mirror directory or URL template"
            ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return git.Repo(path)

    def ensure_commit(self, repo: str, commit: str) -> git.Repo:
        mirror = self.mirror(repo)
        if not _has_commit(mirror, commit):
            try:
                mirror.git.fetch("--prune", "origin", "+refs/*:refs/*")
            except git.GitCommandError:
                pass
            if not _has_commit(mirror, commit):
                url = self.source.url_for(repo)
                raise UserError(f"commit {commit} of {repo} is not in {url}: update that mirror")
        return mirror

    def checkout(self, repo: str, commit: str, dest: Path) -> Path:
        """A standalone clone at `dest`, detached at `commit`, with no remote (as SWE-bench's
        images have it: the repo's future is not reachable from the checkout)."""
        mirror = self.ensure_commit(repo, commit)
        clone = git.Repo.clone_from(mirror.git_dir, dest, no_checkout=True)
        clone.git.checkout("--detach", commit)
        clone.delete_remote("origin")
        return Path(dest)


def _has_commit(repo: git.Repo, commit: str) -> bool:
    try:
        repo.git.cat_file("-e", f"{commit}^{{commit}}")
        return True
    except git.GitCommandError:
        return False


def _last_line(exc: git.GitCommandError) -> str:
    lines = [ln.strip().strip("'").strip() for ln in str(exc.stderr or exc).splitlines()]
    lines = [ln.removeprefix("stderr:").strip() for ln in lines if ln]
    return next((ln for ln in reversed(lines) if ln), "git failed")
