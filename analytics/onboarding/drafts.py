"""Draft payer policies from what a practice's export and 835s show, and their payers.yaml text.

:func:`draft_policies` gives one :class:`PayerDraft` per payer (see :mod:`analytics.onboarding`
for what is learned); :func:`payers_yaml` writes them with a comment on every figure.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analytics.onboarding.evidence import CENT, medicare_unit_fees, remittance_lines
from analytics.payers import payer_key
from analytics.refdata import NCCI_MODIFIERS, Reference, load_reference

__all__ = ["PayerDraft", "draft_policies", "payers_yaml", "payer_slug", "yaml_scalar", "count_of", "CONFIRM"]

#: The mark on every guess in a drafted file: the owner checks it and deletes the mark.
CONFIRM = "CONFIRM"
#: Lines a code needs in one year before its median is used to infer a percent of Medicare.
MIN_LINES_FOR_PERCENT = 3
#: Largest spread (percentage points) of per-code percents still read as one percent of Medicare.
PERCENT_SPREAD = 3.0

# CLP06 claim filing indicator (X12 005010X221A1) -> payer kind.
# 16 is an HMO Medicare risk plan (Medicare Advantage): priced by its own contract, not the MPFS.
_FILING_KINDS = {"MA": "medicare", "MB": "medicare", "MC": "medicaid", "AM": "auto", "WC": "workers_comp",
                 "09": "cash", "16": "commercial"}
_KIND_WORDS = (
    ("cash", ("self pay", "selfpay", "self-pay", "cash", "private pay", "patient pay", "no insurance", "uninsured",
              "out of pocket", "out-of-pocket", "patient responsibility")),
    ("medicaid", ("medicaid", "medi-cal", "medical assistance")),
    ("workers_comp", ("workers comp", "worker's comp", "workers' comp", "workmans comp", "work comp",
                      "workers compensation", " wc ", "l&i", "labor and industries")),
    ("auto", ("auto", " pip", "pip ", "motor vehicle", "casualty", "progressive", "geico", "allstate",
              "state farm", "liberty mutual")),
    ("medicare", ("medicare",)),
)


#: Whole payer names that mean the patient pays (an export's payer column for self-pay visits).
_PATIENT_PAYS = frozenset({"patient", "self", "guarantor", "none", "private", "pt", "client"})


def payer_slug(name: object) -> str:
    """A payer id for payers.yaml from a payer name: ``Blue Shield Gold PPO`` -> ``blue_shield_gold_ppo``."""
    slug = re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")
    if not slug:
        return "payer"
    return slug if slug[0].isalpha() else f"payer_{slug}"


# ---------------------------------------------------------------------------------------
# Drafts
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class PayerDraft:
    """One drafted payer policy: its settings in file order, each with its comment.

    Attributes
    ----------
    payer_id
        The key under ``payers:``.
    entries
        ``(path, value, comment)`` in the order they are written; ``path`` is a tuple of keys
        (``("fee", "rates", "97140")``). A comment holding :data:`CONFIRM` marks a guess.
    export_lines, remittance_lines
        How many export lines and 835 lines the payer has.
    confirm
        What the owner should check, in words (the checklist ``init`` prints).
    """

    payer_id: str
    entries: list[tuple[tuple[str, ...], Any, str]] = dataclasses.field(default_factory=list)
    export_lines: int = 0
    remittance_lines: int = 0
    confirm: list[str] = dataclasses.field(default_factory=list)

    def set(self, path: str | Sequence[str], value: Any, comment: str = "") -> None:
        key = (path,) if isinstance(path, str) else tuple(path)
        at = next((i for i, e in enumerate(self.entries) if e[0] == key), None)
        if at is None:
            self.entries.append((key, value, comment))
        else:  # a value set again keeps its place in the file
            self.entries[at] = (key, value, comment)

    def guess(self, path: str | Sequence[str], value: Any, why: str, check: str | None = None) -> None:
        """Set a value the owner must confirm; ``check`` goes on the printed checklist."""
        self.set(path, value, f"{CONFIRM}: {why}")
        if check:
            self.confirm.append(check)

    @property
    def spec(self) -> dict[str, Any]:
        """The policy as the mapping :func:`analytics.payers.load_payers` reads."""
        out: dict[str, Any] = {}
        for path, value, _ in self.entries:
            node = out
            for k in path[:-1]:
                node = node.setdefault(k, {})
            node[path[-1]] = value
        return out

    @property
    def name(self) -> str:
        return str(self.spec.get("name", self.payer_id))

    @property
    def kind(self) -> str:
        return str(self.spec.get("kind", ""))

    @property
    def guesses(self) -> int:
        return sum(CONFIRM in c for _, _, c in self.entries)


def _guess_kind(names: Sequence[str], filings: Mapping[str, int]) -> tuple[str, str]:
    """(kind, why) from the payer's names and the CLP06 codes of its claims."""
    if filings:
        top = max(filings, key=lambda k: (filings[k], k))
        if top in _FILING_KINDS:
            return _FILING_KINDS[top], f"835 claims say claim filing indicator {top} on {filings[top]} claim(s)"
    text = " " + " ".join(n.lower() for n in names) + " "
    if any(n.strip().lower().strip(".") in _PATIENT_PAYS for n in names):
        return "cash", "the payer's name says the patient pays"
    for kind, words in _KIND_WORDS:
        if any(w in text for w in words):
            if kind == "medicare" and ("advantage" in text or filings.get("16")):
                return "commercial", "a Medicare Advantage plan is priced by its own contract"
            return kind, "guessed from the payer's name"
    return "commercial", "no word in the payer's name says Medicare, Medicaid, auto, workers' comp or self-pay"


@dataclasses.dataclass
class _Payers:
    """Who is who: the export's payer names and the 835 payers, joined into drafts."""

    draft_of_export: dict[str, str]  # export payer name -> draft id
    draft_of_835: dict[str, str]  # 835 payer key -> draft id
    names: dict[str, list[str]]  # draft id -> aliases in order
    export_counts: dict[str, int]  # draft id -> export lines
    line_draft: np.ndarray  # per 835 line: its draft id


def _match_payers(export_lines: pd.DataFrame, remit: pd.DataFrame) -> _Payers:
    payer_col = export_lines["payer_id"] if "payer_id" in export_lines else pd.Series([], dtype=object)
    export_payers = payer_col.astype("str").fillna("").str.strip()
    counts = export_payers[export_payers != ""].value_counts(sort=False)
    names: dict[str, list[str]] = {}
    draft_of_export: dict[str, str] = {}
    by_key: dict[str, str] = {}
    used: set[str] = set()

    def new_id(name: str) -> str:
        base = payer_slug(name)
        pid, n = base, 2
        while pid in used:
            pid, n = f"{base}_{n}", n + 1
        used.add(pid)
        return pid

    for name in sorted(counts.index, key=lambda s: (-int(counts[s]), s)):
        key = payer_key(name)
        if key in by_key:  # "Medicare Part B" and "MEDICARE PART B" are one payer
            draft_of_export[name] = by_key[key]
            names[by_key[key]].append(name)
            continue
        pid = new_id(name)
        by_key[key] = pid
        draft_of_export[name] = pid
        names[pid] = [name]
    export_counts = {pid: 0 for pid in names}
    for name, n in counts.items():
        export_counts[draft_of_export[name]] += int(n)

    # An 835 line belongs to the payer of its claim in the export (claim number = CLP01).
    line_draft = np.full(len(remit), "", dtype=object)
    if len(remit) and "claim_id" in export_lines:
        claim_payer = (pd.DataFrame({"claim_id": export_lines["claim_id"].astype("str").fillna("").str.strip(),
                                     "payer": export_payers})
                       .query("claim_id != '' and payer != ''").drop_duplicates("claim_id"))
        mapped = remit["claim_id"].map(claim_payer.set_index("claim_id")["payer"].map(draft_of_export))
        line_draft = np.array(mapped.fillna(""), dtype=object)  # a copy: written below
    codes, names_835 = pd.factorize(remit["payer_name"]) if len(remit) else (np.array([], int), [])
    remit_key = np.array([payer_key(n) for n in names_835], dtype=object)[codes] if len(remit) else np.array(
        [], dtype=object)
    draft_of_835: dict[str, str] = {}
    for key in pd.unique(remit_key):
        mine = remit_key == key
        claimed = pd.Series(line_draft[mine])
        claimed = claimed[claimed != ""]
        if len(claimed):  # the draft most of this payer's lines belong to
            counted = claimed.value_counts()
            draft_of_835[key] = str(sorted(counted.index, key=lambda d: (-int(counted[d]), d))[0])
        elif key in by_key:
            draft_of_835[key] = by_key[key]
        else:
            first = remit.loc[mine, "payer_name"].iloc[0] or remit.loc[mine, "payer_code"].iloc[0] or "835 payer"
            pid = new_id(first)
            by_key[key] = pid
            draft_of_835[key] = pid
            names[pid] = []
            export_counts[pid] = 0
        line_draft[mine & (line_draft == "")] = draft_of_835[key]
    for key, pid in draft_of_835.items():
        rows = remit[remit_key == key]
        for alias in (rows["payer_name"].iloc[0], *pd.unique(rows["payer_code"])):
            if alias and payer_key(alias) not in {payer_key(a) for a in names[pid]}:
                names[pid].append(str(alias))
    return _Payers(draft_of_export, draft_of_835, names, export_counts, line_draft)


def count_of(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _rates_by_year(lines: pd.DataFrame) -> pd.DataFrame:
    """Median allowed per unit of the paid lines, by code and year, with the line count."""
    paid = lines[lines["paid_line"].to_numpy(dtype=bool) & lines["service_year"].notna().to_numpy()]
    if paid.empty:
        return pd.DataFrame({"cpt": [], "year": [], "median": [], "lines": []})
    out = (paid.assign(year=paid["service_year"].astype("int64"))
           .groupby(["cpt", "year"], sort=True)["per_unit"].agg(["median", "size"]).reset_index()
           .rename(columns={"size": "lines"}))
    out["median"] = np.round(out["median"].to_numpy(dtype=float) + 1e-9, 2)
    return out


def _chosen_year(rates: pd.DataFrame) -> pd.DataFrame:
    """Per code, the latest year with enough lines for a median, else the year with the most."""
    if rates.empty:
        return rates
    enough = rates["lines"] >= MIN_LINES_FOR_PERCENT
    ranked = rates.assign(_enough=enough.to_numpy()).sort_values(["cpt", "_enough", "year", "lines"], kind="stable")
    chosen = ranked.groupby("cpt", sort=True).tail(1)
    return chosen.drop(columns="_enough").reset_index(drop=True)


def _fee_entries(draft: PayerDraft, rates: pd.DataFrame, fees: pd.DataFrame, locality: str) -> None:
    """``fee``: a percent of Medicare when the codes agree on one, else flat rates; else a guess."""
    if rates.empty:
        draft.guess("fee", {"basis": "percent_of_medicare", "percent": 100, "locality": locality},
                    "no paid line in the 835s: 100% of Medicare is a placeholder",
                    "its contract terms under fee (no 835 shows what it pays)")
        return
    compared = rates.merge(fees, on=["cpt", "year"], how="inner")
    compared = compared[(compared["fee"] > 0) & (compared["status"] == "A")
                        & (compared["lines"] >= MIN_LINES_FOR_PERCENT)].reset_index(drop=True)
    pct = 100.0 * compared["median"] / compared["fee"]
    chosen = _chosen_year(rates)
    if len(compared) and float(pct.max() - pct.min()) <= PERCENT_SPREAD:
        weight = compared["lines"].to_numpy(dtype=float)
        percent = round(float(np.average(pct.to_numpy(dtype=float), weights=weight)), 1)
        seen = ", ".join(f"{r.cpt} {p:.1f}% in {int(r.year)} over {count_of(int(r.lines), 'line')}"
                         for r, p in zip(compared.itertuples(), pct, strict=True))
        draft.set(("fee", "basis"), "percent_of_medicare", f"learned at locality {locality}: {seen}")
        draft.guess(("fee", "percent"), percent, "median allowed per unit over the Medicare fee of its year, "
                    f"weighted over {count_of(int(weight.sum()), 'line')}",
                    f"{percent}% of Medicare (learned)")
        draft.set(("fee", "locality"), locality, "the practice's locality (practice.yaml)")
        priced = set(fees.loc[(fees["status"] == "A") & (fees["fee"] > 0), "cpt"])
        for r in chosen[~chosen["cpt"].isin(priced)].itertuples():  # 97139 and the like keep a flat rate
            draft.set(("fee", "rates", str(r.cpt)), float(r.median),
                      f"no Medicare fee: median allowed per unit in {int(r.year)} over {count_of(int(r.lines), 'line')}")
        return
    draft.set(("fee", "basis"), "flat", "the 835s show no single percent of Medicare: rates per code")
    for r in chosen.itertuples():
        other = rates[(rates["cpt"] == r.cpt) & (rates["year"] != r.year)]
        earlier = "; ".join(f"{int(o.year)}: ${o.median:,.2f} over {count_of(int(o.lines), 'line')}"
                            for o in other.itertuples())
        draft.set(("fee", "rates", str(r.cpt)), float(r.median),
                  f"median allowed per unit in {int(r.year)} over {count_of(int(r.lines), 'line')}"
                  + (f" ({earlier})" if earlier else ""))
    draft.confirm.append("flat rates per code (learned)")
    draft.set(("fee", "locality"), locality, "the practice's locality (practice.yaml)")


def _pair_entries(draft: PayerDraft, lines: pd.DataFrame, medicare: bool) -> None:
    """``ncci``: was 97124 billed with 97140 paid without a modifier, with 59, with XS?"""
    cpt = lines["cpt"].to_numpy(dtype=object)
    pair_claims = np.intersect1d(lines["claim"].to_numpy(dtype=object)[cpt == "97140"].astype(str),
                                 lines["claim"].to_numpy(dtype=object)[cpt == "97124"].astype(str))
    c2 = lines[lines["claim"].isin(pair_claims).to_numpy() & (cpt == "97124")]
    mods = c2["modifiers"].astype("str")
    has = {m: mods.str.contains(rf"(?:^|,){m}(?:,|$)", regex=True).to_numpy(dtype=bool)
           for m in ("59", "XS", "XE", "XP", "XU")}
    other_x = has["XE"] | has["XP"] | has["XU"]
    groups = {"no modifier": ~(has["59"] | has["XS"] | other_x), "59": has["59"] & ~has["XS"],
              "XS": has["XS"], "XE/XP/XU": other_x & ~has["XS"] & ~has["59"]}
    paid = c2["paid_line"].to_numpy(dtype=bool)
    seen = {k: (int(v.sum()), int((v & paid).sum())) for k, v in groups.items() if v.any()}
    told = "; ".join(f"{k}: paid on {p} of {count_of(n, 'line')}" for k, (n, p) in seen.items())
    if medicare:
        if seen:
            draft.set(("ncci", "follow"), True, f"97124 with 97140 in the 835s - {told}")
        return
    if not seen:
        draft.guess(("ncci", "follow"), True, "97124 with 97140 is not in the 835s: the NCCI pairs apply, "
                    "unbundled by 59 or an X modifier")
        return
    n, p = seen.get("no modifier", (0, 0))
    if p > 0 and p * 2 >= n:
        draft.guess(("ncci", "follow"), False, f"97124 with 97140 was paid without a modifier - {told}",
                    "no NCCI pair edits (97124 with 97140 paid without a modifier)")
        return
    honoured = [m for k, ms in (("59", ["59"]), ("XS", ["XS"]), ("XE/XP/XU", ["XE", "XP", "XU"]))
                if seen.get(k, (0, 0))[1] > 0 for m in ms]
    denied = [k for k, (n, p) in seen.items() if k != "no modifier" and p == 0]
    draft.set(("ncci", "follow"), True, f"97124 with 97140 in the 835s - {told}")
    if "59" in honoured or not denied:
        draft.set(("ncci", "modifiers"), list(NCCI_MODIFIERS), "59 and the X modifiers unbundle the pair")
        return
    draft.guess(("ncci", "pairs"), [{"column1": "97140", "column2": "97124", "modifiers": honoured}],
                f"{', '.join(denied)} on 97124 was never paid with 97140"
                + (f"; {', '.join(honoured)} was" if honoured else "; nothing unbundled it"),
                f"97124 with 97140 paid only with {' or '.join(honoured) or 'no modifier at all'}")


def _hot_pack_entries(draft: PayerDraft, lines: pd.DataFrame, export_codes: pd.Series, medicare: bool) -> None:
    """``not_covered``: 97010 denied on every 835 line is drafted as not covered."""
    pack = lines[lines["cpt"] == "97010"]
    billed = int((export_codes == "97010").sum())
    if medicare:
        if len(pack):
            draft.set("medicare_status", True, f"97010 is status B (bundled); paid on "
                      f"{int(pack['paid_line'].sum())} of {count_of(len(pack), '835 line')}")
        return
    if len(pack) and not pack["paid_line"].any():
        draft.set("not_covered", ["97010"], f"97010 was denied on all {count_of(len(pack), '835 line')}")
    elif len(pack):
        draft.set("not_covered", [], f"97010 was paid on {int(pack['paid_line'].sum())} of "
                  f"{count_of(len(pack), '835 line')}")
    elif billed:
        draft.guess("not_covered", [], f"97010 is billed on {count_of(billed, 'export line')} but no 835 answers it",
                    "is 97010 (hot/cold pack) covered")


def _cost_share_entries(draft: PayerDraft, lines: pd.DataFrame, medicare: bool) -> None:
    """``cost_share`` from PR-1 (deductible), PR-2 (coinsurance) and PR-3 (copay)."""
    if medicare:
        draft.set(("cost_share", "deductible"), "part_b", "the Part B deductible of the year (FACTS 1.4)")
        draft.set(("cost_share", "coinsurance"), 0.20, "20% after the deductible (FACTS 1.4)")
        return
    paid = lines[lines["paid_line"].to_numpy(dtype=bool)]
    if paid.empty:
        draft.guess("cost_share", {"deductible": 0, "copay": 0, "coinsurance": 0},
                    "no paid line in the 835s shows the member's share")
        return
    pr1, pr2, pr3 = (paid[c].to_numpy(dtype=float) > CENT for c in ("pr1", "pr2", "pr3"))
    if pr1.any():
        years = paid.loc[pr1].groupby(["patient_key", "service_year"])["pr1"].sum()
        draft.guess(("cost_share", "deductible"), round(float(years.max()), 2),
                    f"PR-1 on {count_of(int(pr1.sum()), 'line')}; the most one member paid toward it in a year "
                    "is a lower bound of the yearly deductible",
                    f"yearly deductible (at least ${float(years.max()):,.2f})")
    else:
        draft.set(("cost_share", "deductible"), 0, f"no PR-1 on {count_of(len(paid), 'paid line')}")
    if pr3.any():
        per_claim = paid.loc[pr3].groupby("claim")["pr3"].sum()
        draft.set(("cost_share", "copay"), round(float(per_claim.median()), 2),
                  f"median PR-3 per claim over {count_of(len(per_claim), 'claim')}")
    else:
        draft.set(("cost_share", "copay"), 0, f"no PR-3 on {count_of(len(paid), 'paid line')}")
    ok = pr2 & (paid["allowed"].to_numpy(dtype=float) > CENT)
    if ok.any():
        share = paid["pr2"].to_numpy(dtype=float)[ok] / paid["allowed"].to_numpy(dtype=float)[ok]
        draft.set(("cost_share", "coinsurance"), round(float(np.median(share)), 2),
                  f"median PR-2 over the allowed amount, {count_of(int(ok.sum()), 'line')}")
    else:
        draft.set(("cost_share", "coinsurance"), 0, f"no PR-2 on {count_of(len(paid), 'paid line')}")


def _medicare_entries(draft: PayerDraft, rates: pd.DataFrame, fees: pd.DataFrame, locality: str, year: int) -> None:
    draft.set("unit_method", "cms", "the 8-minute rule over the visit (CMS Pub. 100-04 ch. 5 s. 20.2)")
    where = "national amounts" if locality == "00000-00" else f"locality {locality}"
    now = fees[(fees["year"] == year) & (fees["status"] == "A")
               & fees["cpt"].isin(["97110", "97112", "97124", "97140"])]
    shown = ", ".join(f"{r.cpt} ${r.fee:,.2f}" for r in now.itertuples())
    draft.set(("fee", "basis"), "medicare", f"the fee schedule at {where}" + (f": {year} per unit {shown}"
                                                                              if shown else ""))
    draft.set(("fee", "locality"), locality, "the practice's locality (practice.yaml)")
    seen = _chosen_year(rates).merge(fees, on=["cpt", "year"], how="left")
    for r in seen.itertuples():
        if np.isfinite(r.fee) and r.fee > 0:
            draft.entries.append((("#",), None, f"835s {int(r.year)}: {r.cpt} median ${r.median:,.2f} per unit "
                                  f"over {count_of(int(r.lines), 'line')}; fee schedule ${r.fee:,.2f} (MPPR lowers "
                                  "every unit after the first)"))
    for key in ("mppr", "require_gp", "kx_threshold", "mue"):
        draft.set(key, True, "Medicare rule" if key != "mppr" else "50% PE on every unit after the first")


def draft_policies(
    export_lines: pd.DataFrame,
    remittance: Any,
    locality: str,
    year: int | None = None,
    *,
    reference: Reference | None = None,
) -> dict[str, PayerDraft]:
    """One draft payer policy per payer in the export and the 835s.

    Parameters
    ----------
    export_lines
        The export's lines as intake reads them (``payer_id`` holds the payer as the export
        names it; ``claim_id`` and ``cpt`` when present).
    remittance
        The practice's 835s (:func:`analytics.remittance.read_835_many` output), or ``None``.
    locality
        The practice's Medicare locality (MAC-locality id, ``00000-00`` national).
    year
        The fee-schedule year of the Medicare figures shown (default: the latest year of the
        835 lines the reference data has, else its latest year).

    Returns
    -------
    dict
        Payer id -> :class:`PayerDraft`, in order of export lines (most first), then payers
        found only in the 835s. ``payers_yaml`` writes them.

    Examples
    --------
    >>> lines = pd.DataFrame({"payer_id": ["Self Pay"], "cpt": ["97124"], "claim_id": ["C1"]})
    >>> drafts = draft_policies(lines, None, "00000-00")
    >>> drafts["self_pay"].kind
    'cash'
    """
    ref = reference or load_reference()
    remit = remittance_lines(remittance)
    who = _match_payers(export_lines, remit)
    years = set(remit["service_year"].dropna().astype(int)) | set(ref.rvu["year"].astype(int))
    fees = medicare_unit_fees(locality, years, ref)
    if year is None:
        have = sorted(set(remit["service_year"].dropna().astype(int)) & set(fees["year"]))
        year = have[-1] if have else (int(fees["year"].max()) if len(fees) else int(ref.rvu["year"].max()))
    payer_col = (export_lines["payer_id"].astype("str").fillna("").str.strip() if "payer_id" in export_lines
                 else pd.Series([], dtype=object))
    codes = (export_lines["cpt"].astype("str").fillna("").str.strip().str.upper() if "cpt" in export_lines
             else pd.Series("", index=export_lines.index))
    export_draft = payer_col.map(who.draft_of_export).fillna("")
    kinds = {}
    for pid, aliases in who.names.items():
        mine = remit[who.line_draft == pid] if len(remit) else remit
        filings = {str(k): int(v) for k, v in mine.drop_duplicates("claim")["filing"].value_counts().items() if k}
        kinds[pid] = _guess_kind(aliases, filings)
    ids = _final_ids(kinds)
    drafts: dict[str, PayerDraft] = {}
    for pid, aliases in who.names.items():
        mine = remit[who.line_draft == pid] if len(remit) else remit
        d = PayerDraft(ids[pid], export_lines=who.export_counts.get(pid, 0), remittance_lines=len(mine))
        label = aliases[0] if aliases else pid
        d.set("name", label, "as the export names it" if who.export_counts.get(pid) else "as the 835s name it")
        d.set("aliases", list(aliases), "export payer name, 835 payer name (N1*PR) and payer id: matched "
              "without regard to case, spaces and punctuation")
        kind, why = kinds[pid]
        if why.startswith("835"):
            d.set("kind", kind, why)
        else:
            d.guess("kind", kind, why, f"kind {kind} (from its name)")
        d.entries.append((("#",), None, f"{count_of(d.export_lines, 'export line')}, "
                                        f"{count_of(len(mine), '835 service line')}"))
        rates = _rates_by_year(mine)
        medicare = kind == "medicare"
        if kind == "cash":
            d.set("unit_method", "ama", "self-pay visits are charged per code")
            d.set(("fee", "basis"), "charges", "self-pay: the practice's own charges")
        elif medicare:
            _medicare_entries(d, rates, fees, locality, year)
        else:
            d.guess("unit_method", "ama", "CPT midpoint per code; some plans count units by the 8-minute rule (cms)",
                    "unit_method ama (per code) or cms (8-minute rule)")
            _fee_entries(d, rates, fees, locality)
        if kind != "cash":
            _pair_entries(d, mine, medicare)
            _hot_pack_entries(d, mine, codes[export_draft == pid], medicare)
            _cost_share_entries(d, mine, medicare)
        drafts[d.payer_id] = d
    _unique_aliases(drafts)
    return drafts


def _final_ids(kinds: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """Draft ids: the one Medicare payer is ``medicare`` (so ``--payer medicare`` finds it)."""
    ids = {pid: pid for pid in kinds}
    medicare = [pid for pid, (kind, _) in kinds.items() if kind == "medicare"]
    if len(medicare) == 1 and "medicare" not in kinds:
        ids[medicare[0]] = "medicare"
    return ids


def _unique_aliases(drafts: Mapping[str, PayerDraft]) -> None:
    """Each name finds one payer: an alias an earlier draft already claims is left out."""
    claimed = {payer_key(pid) for pid in drafts}
    for d in drafts.values():
        spec = d.spec
        keep = []
        for alias in spec.get("aliases", []):
            key = payer_key(alias)
            if key not in claimed or key == payer_key(d.payer_id):
                keep.append(alias)
                claimed.add(key)
        comment = next(c for p, _, c in d.entries if p == ("aliases",))
        d.set("aliases", keep, comment)


# ---------------------------------------------------------------------------------------
# payers.yaml with its comments
# ---------------------------------------------------------------------------------------

_COMMENT_COLUMN = 44


def yaml_scalar(value: Any) -> str:
    """``value`` as YAML flow text (codes and localities quoted, so they stay text)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text[:-4].strip() if text.endswith("\n...") else text.removesuffix("...").strip()


def _line(indent: int, text: str, comment: str = "") -> str:
    pad = " " * indent + text
    if not comment:
        return pad
    return f"{pad.ljust(_COMMENT_COLUMN)}  # {comment}" if len(pad) < _COMMENT_COLUMN else f"{pad}  # {comment}"


def _draft_text(draft: PayerDraft) -> list[str]:
    out = [_line(2, f"{draft.payer_id}:")]
    opened: set[tuple[str, ...]] = set()
    for path, value, comment in draft.entries:
        if path == ("#",):
            out.append(_line(4, f"# {comment}"))
            continue
        for depth in range(1, len(path)):
            parent = path[:depth]
            if parent not in opened:
                opened.add(parent)
                out.append(_line(2 + 2 * depth, f"{yaml_scalar(parent[-1])}:"))
        out.append(_line(2 + 2 * len(path), f"{yaml_scalar(path[-1])}: {yaml_scalar(value)}", comment))
    return out


def payers_yaml(drafts: Mapping[str, PayerDraft], *, header: Sequence[str] = ()) -> str:
    """The text of ``payers.yaml`` for the drafts: one policy each, every figure with its comment.

    Keys of a mapping are written together, in the order first set, so the file reads the
    same way as the schema in :mod:`analytics.payers`.
    """
    lines = [f"# {h}" if h else "#" for h in header]
    lines += ["payers:"]
    for draft in drafts.values():
        grouped: dict[str, list] = {}
        for e in draft.entries:  # keep a mapping's keys together
            grouped.setdefault(e[0][0] if e[0] != ("#",) else f"#{len(grouped)}", []).append(e)
        ordered = PayerDraft(draft.payer_id, [e for group in grouped.values() for e in group])
        lines += _draft_text(ordered)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
