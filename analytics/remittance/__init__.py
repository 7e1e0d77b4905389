"""X12 835 (005010X221A1) health care claim payment/advice: read remittances into tidy tables.

An 835 (ERA) tells the practice what a payer did with each claim and service line: what it
paid, what it adjusted and why (CAS group + CARC), which remarks (RARC) apply, and what it took
back at provider level (PLB). :func:`read_835` turns one file into a :class:`Remittance` of
pandas tables, checks the three balancing rules the 835 guarantees, and never stores patient
names or raw member ids. :func:`link_remittance` joins the remittance back to the practice's
own service lines so open A/R and unexplained payments show up.

Files are streamed, never loaded whole: they are read in binary chunks, cut into segments at the
terminator each ISA declares, and scanned into parts that end before a claim (CLP) or a
transaction (ST). :func:`iter_835` yields those parts, in memory bounded by the chunk size
whatever the size of the file (one check may cover millions of claims); :func:`read_835` stacks
them, and the ``remit`` command writes them to Parquet and CSV as they come.

Structure followed (005010X221A1 TR3): ISA/GS(HP)/ST*835, BPR (payment), TRN (trace),
DTM*405, loop 1000A N1*PR payer, loop 1000B N1*PE payee, LX header, loop 2100 CLP claim,
loop 2110 SVC service line, PLB provider adjustments, SE/GE/IEA.

Modules, one job each:

``sources``
    a file, its bytes or its text, handed out piece by piece
``tokenizer``
    delimiters from each ISA, and segments read piece by piece (:func:`tokenize`)
``reader``
    the one-pass scan of the segments, part by part; the salt of ``patient_key``
``scan``, ``notes``
    what the scan collects for a part, and the warnings about a file
``columns``, ``builder``, ``balancing``
    the typed tables of the parts, and their line, claim and transaction checks
``tables``
    the :class:`Remittance` tables and their columns
``files``
    :func:`read_835`, :func:`iter_835` and :func:`read_835_many`
``linking``
    :func:`link_remittance`
``spool``
    the tables of many files written to Parquet and CSV part by part (the ``remit`` command,
    :mod:`analytics.cli.remit`)
"""

from __future__ import annotations

from typing import Any

from analytics.remittance.files import iter_835, read_835, read_835_many
from analytics.remittance.linking import Linked, link_remittance
from analytics.remittance.reader import DEFAULT_SALT
from analytics.remittance.tables import Remittance
from analytics.remittance.tokenizer import tokenize

__all__ = [
    "DEFAULT_SALT",
    "Linked",
    "Remittance",
    "iter_835",
    "link_remittance",
    "read_835",
    "read_835_many",
    "tokenize",
]


def __getattr__(name: str) -> Any:
    # ``register_cli`` of the ``remit`` command lives in analytics.cli.remit, which imports
    # this package; it is looked up on first use so that old imports of it keep working.
    if name == "register_cli":
        from analytics.cli.remit import register_cli

        return register_cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
