"""The typer application and its console, shared by the command modules."""

from __future__ import annotations

import typer
import typer.core
from rich.console import Console


class PanelCommand(typer.core.TyperCommand):
    """Plain help (it wraps at any width and never cuts an option's name, which rich's table
    does at 80 columns), with the options in sections by their panel."""

    def format_options(self, ctx, formatter) -> None:
        sections: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                title = "Arguments"
            else:
                title = getattr(param, "rich_help_panel", None) or "Options"
            sections.setdefault(title, []).append(record)
        for title, records in sections.items():
            with formatter.section(title):
                formatter.write_dl(records)


# The order a user meets the commands: one issue, a dataset, its report, watching runs, then
# selection and localisation, checking data, nightly runs and housekeeping.
HELP_ORDER = (
    "run", "eval", "report", "status", "ls", "show", "signals", "localize",
    "verify", "validate", "nightly", "clean", "images",
)  # fmt: skip


class PanelGroup(typer.core.TyperGroup):
    """Subcommands listed in HELP_ORDER; any other after them, in the order declared."""

    def list_commands(self, ctx):
        last = len(HELP_ORDER)
        return sorted(self.commands, key=lambda n: HELP_ORDER.index(n) if n in HELP_ORDER else last)


app = typer.Typer(
    cls=PanelGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
console = Console(highlight=False, soft_wrap=True)  # long lines stay whole in logs


def command(name: str | None = None, target: typer.Typer | None = None):
    """`app.command` with the sectioned help."""
    return (target or app).command(name, cls=PanelCommand)
