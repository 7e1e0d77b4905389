"""Command line: ``python -m analytics <command>`` (also installed as ``massage-analytics``).

One file per command in this package; each defines ``register_cli(subparsers)``, which adds
its parser and sets ``func`` to a callable taking the parsed arguments and returning an exit
code. Domain modules know nothing of argparse or printing. This module only collects the
commands and turns the toolkit's errors into clear messages.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from analytics.exceptions import AnalyticsError, AnalyticsWarning

# Modules whose commands appear on the command line, in help order.
_COMMAND_MODULES = tuple(
    f"analytics.cli.{name}"
    for name in ("units", "price", "demo", "init", "remit", "intake", "compare", "sample", "denials",
                 "report", "evaluate")
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analytics",
        description="Reimbursement analytics for massage and manual-therapy billing.",
    )
    from analytics import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        if hasattr(module, "register_cli"):
            module.register_cli(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
    if issubclass(category, AnalyticsWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr, end="")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args) or 0)
    except AnalyticsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
