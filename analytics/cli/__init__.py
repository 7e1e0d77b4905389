"""Command line: ``python -m analytics <command>`` (also installed as ``massage-analytics``).

One file per command in this package; each defines ``register_cli(subparsers)``, which adds
its parser and sets ``func`` to a callable taking the parsed arguments and returning an exit
code. Domain modules know nothing of argparse or printing. This module only collects the
commands and turns mistakes into clear messages: a plausible mistake (an impossible date, an
output folder that cannot be written, a CSV where Parquet is expected, a choice typed in
upper case) never ends in a traceback. The message names the flag and the file, and the
command exits with code 2.

Checks made here for every command, before it runs:

* a flag that takes a date (``--date``, ``--start`` ...) holds a real ``YYYY-MM-DD`` date;
* ``--out`` is a folder that exists or can be made, and can be written;
* choices are matched without regard to case (``--method CMS`` is ``--method cms``).

What a command meets later (a file it cannot read or write, a file of the wrong format) is
reported with the flag whose value names that file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import importlib
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from analytics.exceptions import AnalyticsError, AnalyticsWarning

# Modules whose commands appear on the command line, in help order.
_COMMAND_MODULES = tuple(
    f"analytics.cli.{name}"
    for name in ("units", "price", "demo", "init", "remit", "intake", "compare", "sample", "denials",
                 "report", "evaluate", "rekey")
)
#: Flags (by argparse dest) that take a date of the form YYYY-MM-DD.
DATE_FLAGS = frozenset({"date", "start", "end", "as_of", "since", "until", "service_date"})
#: Flags (by argparse dest) that name a folder the command writes into.
OUTPUT_FLAGS = frozenset({"out"})


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
    for command in sub.choices.values():
        _choices_any_case(command)
    return parser


def _lower(text: str) -> str:
    return text.strip().lower()


def _choices_any_case(parser: argparse.ArgumentParser) -> None:
    """Let every lower-case choice be typed in any case (``--method CMS``)."""
    for action in parser._actions:
        choices = action.choices
        if (action.type is None and isinstance(choices, (list, tuple)) and choices
                and all(isinstance(c, str) and c == c.lower() for c in choices)):
            action.type = _lower


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None


def _flags(command: argparse.ArgumentParser | None) -> dict[str, str]:
    """argparse dest -> the flag a user types (``out`` -> ``--out``; positionals by metavar)."""
    out: dict[str, str] = {}
    if command is None:
        return out
    for action in command._actions:
        if action.option_strings:
            out[action.dest] = max(action.option_strings, key=len)
        elif action.dest not in ("help",):
            out[action.dest] = str(action.metavar or action.dest).upper()
    return out


# ---------------------------------------------------------------------------------------
# Checks before a command runs
# ---------------------------------------------------------------------------------------


class _Mistake(AnalyticsError):
    """A command-line value that cannot work, found before the command runs."""


def date_problem(text: str) -> str | None:
    """Why ``text`` is not a ``YYYY-MM-DD`` date, in words; ``None`` when it is one.

    Examples
    --------
    >>> date_problem("2025-02-30")
    'February 2025 has no day 30'
    >>> date_problem("2026-13-01")
    'there is no month 13'
    >>> date_problem("2026-03-31") is None
    True
    """
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text.strip())
    if not m:
        return "it is not written YYYY-MM-DD"
    year, month, day = (int(g) for g in m.groups())
    if not 1 <= month <= 12:
        return f"there is no month {month}"
    try:
        dt.date(year, month, day)
    except ValueError:
        return f"{dt.date(year, month, 1):%B %Y} has no day {day}"
    return None


def _check_dates(args: argparse.Namespace, flags: dict[str, str]) -> None:
    for dest in DATE_FLAGS & set(vars(args)):
        value = getattr(args, dest)
        if value is None or not isinstance(value, str):
            continue
        why = date_problem(value)
        if why:
            flag = flags.get(dest, f"--{dest}")
            raise _Mistake(f"{flag} {value!r} is not a date: {why}. Write it as YYYY-MM-DD, e.g. {flag} 2026-03-31.",
                           where=flag)


def _nearest_existing(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


def _check_out(args: argparse.Namespace, flags: dict[str, str]) -> None:
    for dest in OUTPUT_FLAGS & set(vars(args)):
        value = getattr(args, dest)
        if value is None:
            continue
        flag = flags.get(dest, f"--{dest}")
        path = Path(value)
        if path.exists() and not path.is_dir():
            raise _Mistake(f"{flag} {path} is a file, not a folder. Give a folder for the output, e.g. "
                           f"{flag} {path.parent / 'out'}.", where=flag)
        base = _nearest_existing(path)
        if not base.is_dir():
            raise _Mistake(f"{flag} {path} cannot be made: {base} is a file, not a folder. Give a folder, e.g. "
                           f"{flag} reports.", where=flag)
        if not os.access(base, os.W_OK | os.X_OK):
            what = "cannot be written" if base == path else f"cannot be made: {base} cannot be written"
            raise _Mistake(f"{flag} {path} {what} (permission denied). Give a folder you can write to, e.g. "
                           f"{flag} ~/reports, or change the folder's permissions.", where=flag)


# ---------------------------------------------------------------------------------------
# Errors met while a command runs
# ---------------------------------------------------------------------------------------


def _flag_of_path(args: argparse.Namespace, flags: dict[str, str], filename: object) -> str:
    """The flag whose value is ``filename`` or a folder holding it (``""`` when none is)."""
    if not filename:
        return ""
    target = Path(str(filename)).absolute()
    best, depth = "", -1
    for dest, value in vars(args).items():
        for v in value if isinstance(value, list) else [value]:
            if not isinstance(v, (str, os.PathLike)) or not str(v):
                continue
            given = Path(v).absolute()
            if target == given or given in target.parents:
                if len(given.parts) > depth:
                    best, depth = flags.get(dest, f"--{dest}"), len(given.parts)
    return best


_OS_WORDS = {
    errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EROFS: "the disk is read-only",
    errno.ENOSPC: "the disk is full", errno.ENOENT: "no such file or folder", errno.ENOTDIR: "a file is in the way "
    "of a folder", errno.EISDIR: "it is a folder, not a file",
}


def _message(exc: BaseException, args: argparse.Namespace, flags: dict[str, str]) -> str | None:
    """A message for a mistake met while the command ran; ``None`` for a fault of the toolkit."""
    if isinstance(exc, OSError) and exc.errno in _OS_WORDS:
        name = exc.filename or ""
        flag = _flag_of_path(args, flags, name)
        where = f" ({flag})" if flag else ""
        fix = ("check the path and that you may read and write there" if exc.errno != errno.ENOSPC
               else "free some space or write elsewhere")
        return f"{name}{where}: {_OS_WORDS[exc.errno]}; {fix}."
    text = str(exc)
    kind = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("pyarrow") and ("Parquet" in text or "parquet" in text):
        path = re.search(r"'([^']+)'", text)
        name = path.group(1) if path else ""
        flag = _flag_of_path(args, flags, name)
        return (f"{name or 'the input'}{f' ({flag})' if flag else ''} is not a Parquet file. Give the Parquet "
                "file (or folder of them) the command expects; turn a CSV or Excel export into Parquet with "
                "`python -m analytics intake FILE --out DIR` (it writes DIR/lines.parquet).")
    if kind in ("EmptyDataError", "ParserError") and module.startswith("pandas"):
        return f"a table could not be read: {text}. Check that the file given is a CSV export."
    if kind == "UnicodeDecodeError":
        return "a file is not text (it may be an Excel or binary file given where a CSV or 835 is expected)."
    if module.startswith("yaml"):
        return f"a YAML file could not be read: {text.splitlines()[0] if text else kind}. Fix its indentation or quoting."
    return None


def named_flag(message: str, args: argparse.Namespace, flags: dict[str, str]) -> str:
    """``message``, led by the flag whose value it quotes when it names no flag itself.

    The toolkit's errors name values (``Unknown payer 'acme'``); on the command line the
    user needs the flag too: ``--payer acme: Unknown payer 'acme' ...``.
    """
    if re.search(r"(?<![\w-])--[a-z]", message) or message.startswith(("-p ", "PRACTICE_DIR")):
        return message
    for dest, value in vars(args).items():
        if dest in ("func", "command") or not isinstance(value, (str, list)):
            continue
        for v in value if isinstance(value, list) else [value]:
            pair = v if isinstance(v, list) and len(v) == 2 else None  # -p NAME VALUE
            text = pair[1] if pair else v
            if isinstance(text, str) and text.strip() and (f"'{text}'" in message or f'"{text}"' in message):
                flag = f"-p {pair[0]}" if pair else flags.get(dest, "--" + dest)
                return f"{flag} {text}: {message}"
    return message


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
    if issubclass(category, AnalyticsWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr, end="")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Exit codes: 0 done, 1 done with a failure the output names (a report that failed), 2 a
    mistake in the command or its inputs (the message on stderr says which flag and file).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the flag at fault (or --help)
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    flags = _flags(_command_parser(parser, args.command))
    warnings.showwarning = _show_warning
    try:
        _check_dates(args, flags)
        _check_out(args, flags)
        return int(args.func(args) or 0)
    except AnalyticsError as exc:
        print(f"error: {named_flag(str(exc), args, flags)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped.", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _message(exc, args, flags)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
