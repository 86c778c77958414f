"""A package index as of a date: serves the upstream simple index (PEP 691 JSON) without the
files uploaded after a cut-off, so every pip of an environment build (the spec's installs,
the repo's `pip install -e .`, the isolated build environments pip makes for sdists) resolves
as it would have on that day, whatever pip version runs. Projects pinned with `==` in the
recipe keep those versions' files (only those: a pinned numpy must not let a later,
unpinned install pull numpy 2), since some pins are newer than the cut-off.

A pin newer than the cut-off may need dependencies newer than it too (tox 4.16.0 of
2024-07-02 wants filelock>=3.15.4): an install line that pins exact versions resolves as of
the newest pin's release day instead (`newest`, and the /asof/DAY/simple/ route).

Runs inside the build container on its system Python (3.9 or newer, stdlib only):
    python3 era_index.py serve CUTOFF PORT UPSTREAM [PROJECT==VERSION ...]
    python3 era_index.py newest CUTOFF UPSTREAM [PIP_INSTALL_ARG ...]   (prints a day)
Copied into the build script verbatim, so its text is part of the image's recipe hash."""

from __future__ import annotations

import html
import json
import re
import sys
import urllib.error
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def normalise(name: str) -> str:
    """PEP 503 project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def cutoff_time(day: str) -> datetime:
    """The end of the cut-off day, UTC."""
    return parse_time(day + "T23:59:59.999999+00:00")


def filter_page(
    page: dict, cutoff: datetime, base: str, pinned: frozenset = frozenset()
) -> tuple[dict, int]:
    """The project page without files uploaded after the cut-off (files without an upload
    time, from an index that gives none, are kept; so are the files of `pinned` versions),
    their URLs made absolute; and how many were dropped."""
    kept = []
    project = normalise(page.get("name", ""))
    for entry in page.get("files", []):
        stamp = entry.get("upload-time")
        late = stamp and parse_time(stamp) > cutoff
        if late and _version_of(entry["filename"], project) not in pinned:
            continue
        kept.append({**entry, "url": urljoin(base, entry["url"])})
    dropped = len(page.get("files", [])) - len(kept)
    return {**page, "files": kept}, dropped


def html_page(page: dict) -> str:
    """PEP 503's HTML page, for the pips older than the JSON API (Debian's in a new venv)."""
    links = []
    for entry in page["files"]:
        digest = "".join(f"#{k}={v}" for k, v in list(entry.get("hashes", {}).items())[:1])
        attrs = ""
        if entry.get("requires-python"):
            attrs += f' data-requires-python="{html.escape(entry["requires-python"])}"'
        if entry.get("yanked"):
            reason = entry["yanked"] if isinstance(entry["yanked"], str) else ""
            attrs += f' data-yanked="{html.escape(reason)}"'
        href = html.escape(entry["url"] + digest)
        links.append(f'<a href="{href}"{attrs}>{html.escape(entry["filename"])}</a><br/>')
    return "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"


class EraIndex(BaseHTTPRequestHandler):
    cutoff: datetime
    upstream: str
    exempt: dict[str, set[str]]
    """Exact versions the recipe pins, served whatever their upload day."""

    def do_GET(self) -> None:  # noqa: N802 (the handler API's name)
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        cutoff = self.cutoff
        if len(parts) == 4 and parts[0] == "asof" and re.fullmatch(r"\d{4}-\d\d-\d\d", parts[1]):
            cutoff, parts = max(cutoff, cutoff_time(parts[1])), parts[2:]
        if len(parts) != 2 or parts[0] != "simple":
            self.send_error(404)
            return
        project = normalise(parts[1])
        url = urljoin(self.upstream, project + "/")
        try:
            page = fetch_page(url)
        except urllib.error.HTTPError as exc:
            self.send_error(exc.code)
            return
        except (OSError, ValueError) as exc:
            self.send_error(502, str(exc)[:200])
            return
        page, _ = filter_page(page, cutoff, url, self.exempt.get(project, frozenset()))
        wants_json = JSON_TYPE in self.headers.get("Accept", "")
        body = (json.dumps(page) if wants_json else html_page(page)).encode()
        self.send_response(200)
        self.send_header("Content-Type", JSON_TYPE if wants_json else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass  # pip says what it fetched; the build log needs no second copy


def fetch_page(url: str) -> dict:
    request = urllib.request.Request(url, headers={"Accept": JSON_TYPE})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*([^\s;,]+)")


def pins(args: list[str]) -> list[tuple[str, str]]:
    """The exact pins among pip install arguments, requirements files (-r) read."""
    found, lines, it = [], [], iter(args)
    for arg in it:
        if arg in ("-r", "--requirement"):
            path = next(it, "")
            try:
                with open(path) as f:
                    lines += f.read().splitlines()
            except OSError:
                pass
        elif not arg.startswith("-"):
            lines.append(arg)
    for line in lines:
        if match := PIN.match(line.strip()):
            found.append((normalise(match.group(1)), match.group(2)))
    return found


def release_day(upstream: str, project: str, version: str) -> str | None:
    """The day the version's first file was uploaded."""
    try:
        page = fetch_page(urljoin(upstream, project + "/"))
    except (OSError, ValueError):
        return None
    stamps = [
        f["upload-time"][:10]
        for f in page.get("files", [])
        if f.get("upload-time") and _version_of(f["filename"], project) == version
    ]
    return min(stamps) if stamps else None


def _version_of(filename: str, project: str) -> str:
    """The version in a file name: what follows the project's name (however its separators
    are spelled) up to the next dash."""
    stem = re.sub(r"\.(tar\.gz|tar\.bz2|zip|whl|egg|exe|msi)$", "", filename)
    for cut in range(1, len(stem)):
        if stem[cut] == "-" and normalise(stem[:cut]) == project:
            return stem[cut + 1 :].split("-")[0]
    return ""


def newest(day: str, upstream: str, args: list[str]) -> str:
    """The cut-off day for one install line: its own, or its newest pin's release day."""
    days = [day] + [d for p, v in pins(args) if (d := release_day(upstream, p, v))]
    return max(days)


def main(argv: list[str]) -> None:
    if argv[0] == "newest":
        day, upstream, *args = argv[1:]
        print(newest(day, upstream.rstrip("/") + "/", args))
        return
    day, port, upstream, *exempt = argv[1:]
    EraIndex.cutoff = cutoff_time(day)
    EraIndex.upstream = upstream.rstrip("/") + "/"
    EraIndex.exempt = {}
    for project, version in pins(exempt):
        EraIndex.exempt.setdefault(project, set()).add(version)
    ThreadingHTTPServer(("127.0.0.1", int(port)), EraIndex).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
