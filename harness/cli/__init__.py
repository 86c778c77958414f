"""The `harness` command line (typer), one module per command group: verification (verify,
validate, signals), generation (run, eval), localize, runs (report, nightly, show, status, ls)
and images (images ..., clean). Options are declared once, in options.py; help lists the
commands in app.HELP_ORDER. Commands stay thin: parse, wire, call, print."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from harness import __version__
from harness.cli.app import app

# The command modules register their commands on import, in the order help lists them.
from harness.cli import verification, generate, localize, runs, images  # noqa: E402, I001  isort: skip
from harness.errors import UserError


def _print_version(value: bool) -> None:
    if value:
        print(f"swe-monkeys {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Repeated sampling for SWE-bench: candidate patches verified by the repo's own tests."""


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main() -> None:
    """Console entry point: a UserError or a bad option is one line on stderr and exit 2."""
    # Typer may vendor its own click: take the usage-error class from typer itself.
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # no command given: the help
            print(exc.format_message(), file=sys.stderr)
            sys.exit(2)
        message = " ".join(exc.format_message().split())
        if message:  # empty: the help has been shown
            where = exc.ctx.command_path if exc.ctx else "harness"
            print(f"error: {message} (see `{where} --help`)", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main", "generate", "images", "localize", "runs", "verification"]
