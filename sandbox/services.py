"""Local stand-ins for the network services a repo's tests call, so they run under
`--network none`. The official harness ran with the network on; here a service runs on the
container's loopback, from its own venv (never the testbed's: the tests must see the
environment they would have seen), started by the eval script before the tests."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

TESTBED = "/opt/testbed"
"""The venv the tests run in (env_recipe.VENV)."""
SERVICES_VENV = "/opt/swem/services"
SERVICES_SCRIPT = "/opt/swem/services.sh"
START_LINE = f"if [ -f {SERVICES_SCRIPT} ]; then . {SERVICES_SCRIPT}; fi"
"""Run first by every eval script; a no-op on images with no services."""


@dataclass(frozen=True)
class LocalService:
    packages: tuple[str, ...]
    setup: str
    """Shell lines run once at build time, after the packages are installed."""
    start: str
    """Shell lines run (sourced) by the eval script, as root, before the tests."""
    note: str
    testbed_modules: tuple[str, ...] = ()
    """Modules of this folder (sandbox/NAME.py) the testbed's Python imports at start-up
    through a .pth file: stand-ins that must live in the tests' own process."""


# requests' Session.send() ignores REQUESTS_CA_BUNDLE and checks against certs.where(): certifi's
# bundle when the env has certifi, else the repo's own requests/cacert.pem. The local CA is
# appended to whichever of those exist (once: a reused container runs this again), so the
# HTTPS tests trust it as they trusted httpbin.org's certificate.
_TRUST = (
    "for bundle in /testbed/requests/cacert.pem {venv}/lib/python*/site-packages/certifi/"
    'cacert.pem; do if [ -f "$bundle" ] && ! grep -q swem-local-ca "$bundle"; then '
    'printf \'\\n# swem-local-ca\\n\' >> "$bundle"; cat /opt/swem/ca.pem >> "$bundle"; fi; done'
)
# requests' tests before 2.10 read HTTPBIN_URL (0.14 sets it to http://httpbin.org/ itself)
# and some call https://httpbin.org and www.google.co.uk outright: those names resolve to the
# loopback, where httpbin answers on port 80 and, with a certificate from a CA made at build
# time (trustme) that REQUESTS_CA_BUNDLE trusts, on 443.
_HOSTS = ("httpbin.org", "www.google.co.uk")
_WAIT = (
    "for _ in $(seq 100); do {py} -c 'import urllib.request as u; "
    'u.urlopen("http://127.0.0.1/get")\' 2>/dev/null && break; sleep 0.1; done'
)
_MAKE_CA = (
    "import sys, trustme; ca = trustme.CA(); ca.cert_pem.write_to_path('/opt/swem/ca.pem'); "
    "ca.issue_cert(*sys.argv[1:]).private_key_and_cert_chain_pem.write_to_path("
    "'/opt/swem/server.pem')"
)
_PY = f"{SERVICES_VENV}/bin/python"
# gunicorn with threads, as httpbin.org serves it: keep-alive is real (requests 0.14's tests
# check it), which Werkzeug's development server does not give
_GUNICORN = (
    f"{_PY} -m gunicorn -k gthread --threads 16 --keep-alive 30 --timeout 300 "
    "--error-logfile /tmp/swem-httpbin-{port}.log"
)
HTTPBIN = LocalService(
    packages=("httpbin==0.10.2", "trustme==1.1.0", "gunicorn==21.2.0"),
    setup=f'{_PY} -c "{_MAKE_CA}" {" ".join(_HOSTS)}',
    start="\n".join(
        [
            f"echo '127.0.0.1 {' '.join(_HOSTS)}' >> /etc/hosts",
            _GUNICORN.format(port=80) + " -b 127.0.0.1:80 httpbin:app &",
            _GUNICORN.format(port=443)
            + " --certfile /opt/swem/server.pem --keyfile /opt/swem/server.pem"
            " -b 127.0.0.1:443 httpbin:app &",
            "export HTTPBIN_URL=http://httpbin.org/",
            "export REQUESTS_CA_BUNDLE=/opt/swem/ca.pem CURL_CA_BUNDLE=/opt/swem/ca.pem",
            _TRUST.format(venv=TESTBED),
            _WAIT.format(py=_PY),
        ]
    ),
    note=(
        "httpbin.org and www.google.co.uk served by a local httpbin 0.10.2 (gunicorn) on the "
        "loopback, HTTP and HTTPS (a local CA, trusted through REQUESTS_CA_BUNDLE and appended "
        "to the CA bundle requests checks by default: certifi's or its own cacert.pem); "
        "connects to the tarpit 10.255.255.1 time out in the testbed's Python (swem_tarpit), "
        "as the silent address does with the network on"
    ),
    testbed_modules=("swem_tarpit",),
)

BY_REPO = {"psf/requests": HTTPBIN}


def for_repo(repo: str) -> LocalService | None:
    return BY_REPO.get(repo)


def install_lines(service: LocalService, pip: str) -> list[str]:
    """Build-script lines that put the service and its start script into the image; `pip`
    is the build script's install command (`pip PYTHON ARGS...`)."""
    return [
        "mkdir -p /opt/swem",
        f"cat > {SERVICES_SCRIPT} <<'EOF_SERVICES'",
        service.start,
        "EOF_SERVICES",
        f"/usr/bin/python3 -m venv {SERVICES_VENV}",
        f"{pip} {SERVICES_VENV}/bin/python pip==24.0",
        f"{pip} {SERVICES_VENV}/bin/python " + " ".join(service.packages),
        service.setup,
        *_testbed_module_lines(service.testbed_modules),
    ]


@functools.cache
def _module_source(name: str) -> str:
    """Read once: the build script (and so the recipe key) is made for every image name."""
    return (Path(__file__).with_name(f"{name}.py")).read_text()


def _testbed_module_lines(names: tuple[str, ...]) -> list[str]:
    if not names:
        return []
    lines = [f"testbed_site=$({TESTBED}/bin/python -c '{_PURELIB}')"]
    for name in names:
        source = _module_source(name)
        lines += [
            f"cat > \"$testbed_site/{name}.py\" <<'EOF_{name.upper()}'",
            source.rstrip("\n"),
            f"EOF_{name.upper()}",
            f"echo 'import {name}' > \"$testbed_site/{name}.pth\"",
        ]
    return lines


_PURELIB = 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
