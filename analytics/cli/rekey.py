"""The ``rekey`` command, and the key options of the commands that write pseudonyms.

``python -m analytics rekey PRACTICE_DIR --tables DIR [DIR ...]`` replaces the practice's
pseudonym key by a new random one and rewrites the pseudonyms of the tables that ``intake``,
``remit`` and ``evaluate`` wrote with the old key (:func:`analytics.privacy.rekey.rekey_practice`).

:func:`add_key_options` gives a command ``--key-file`` and ``--unkeyed-pseudonyms``, and
:func:`key_from_args` resolves the key the way every such command does: the key file named,
else the one beside the inputs, else ``ANALYTICS_PRACTICE_KEY``; with none, the command
refuses (exit 2) unless ``--unkeyed-pseudonyms`` is given.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from analytics.privacy import KEY_ENV, KEY_FILE, UNKEYED_FLAG, PracticeKey, command_key
from analytics.privacy.rekey import rekey_practice

__all__ = ["register_cli", "add_key_options", "key_from_args"]


def add_key_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--key-file`` and ``--unkeyed-pseudonyms`` to a command that writes pseudonyms."""
    parser.add_argument("--key-file", type=Path, metavar="FILE",
                        help=f"the practice's pseudonym key (default: {KEY_FILE} beside the inputs, else {KEY_ENV})")
    parser.add_argument(UNKEYED_FLAG, dest="unkeyed_pseudonyms", action="store_true",
                        help="with no key, write pseudonyms anyway; they can be reversed by hashing guessed ids")


def key_from_args(args: argparse.Namespace, inputs: Iterable[str | Path], what: str) -> PracticeKey:
    """The key for a command's pseudonyms from its options and inputs (see the module text)."""
    return command_key(inputs, key_file=getattr(args, "key_file", None),
                       unkeyed=bool(getattr(args, "unkeyed_pseudonyms", False)), what=what)


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``rekey``: a new pseudonym key for a practice, and its stored tables re-keyed."""
    p = sub.add_parser(
        "rekey", help="replace a practice's pseudonym key and re-key its stored tables",
        description=f"Replace the practice's pseudonym key ({KEY_FILE}) by a new random one and rewrite the "
                    "pseudonyms (patient_id, patient_key) of the tables given with --tables, which must have been "
                    "written with the old key. The ids are read again from the practice's export and 835s. Nothing "
                    "is written unless every pseudonym can be re-keyed. Pages already published keep working: "
                    "their manifests name the key they were made with by its fingerprint.",
        epilog="Example: python -m analytics rekey /srv/practice --tables /srv/intake /srv/remit /srv/evaluated")
    p.add_argument("practice", type=Path, metavar="PRACTICE_DIR", help=f"the practice folder holding {KEY_FILE}")
    p.add_argument("--tables", type=Path, nargs="+", required=True, metavar="DIR",
                   help="folders (or files) of tables written with the old key")
    p.add_argument("--export", type=Path, metavar="FILE", help="the export the tables were made from (default: the "
                                                              "practice folder's)")
    p.add_argument("--remittances", type=Path, metavar="DIR", help="the 835s the tables were made from (default: "
                                                                   "PRACTICE_DIR/remittances)")
    p.set_defaults(func=_run_rekey)


def _run_rekey(args: argparse.Namespace) -> int:
    done = rekey_practice(args.practice, args.tables, export=args.export, remittances=args.remittances)
    print(f"re-keyed {done.values:,} pseudonym(s) in {len(done.files)} table(s) from {done.ids:,} ids in the inputs")
    print(f"key {done.old_fingerprint} -> {done.new_fingerprint} (fingerprints), in {done.key_file}")
    for f in done.files:
        print(f"  {f}")
    print(f"If scheduled runs or Dask workers read {KEY_ENV}, set it from the new key file: "
          f"export {KEY_ENV}=$(cat {done.key_file})")
    return 0
