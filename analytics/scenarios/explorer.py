"""The coding-choice explorer: a practice owner's page in JupyterLab (``make lab``).

The owner picks her practice folder (the sample practice until she does; the last folder
opened is remembered in a small settings file, :func:`settings_path`), sets the minutes of
each service of one session, what the notes document, the NCCI modifier to look at and one
payer or all of them. Every change re-runs :func:`~analytics.scenarios.compare.compare` and
redraws:

* a bar chart of the expected collections per visit of each alternative and payer (drawn in
  HTML, so it redraws in milliseconds; the saved PNG is the report chart,
  :func:`~analytics.scenarios.chart.plot_totals`);
* beside it, a short table: per payer, the best supported alternative first, with the
  chance of denial and its basis (:func:`denial_chances`);
* one click away, every alternative for every payer; below, the CMS-1500 items 17, 21 and
  24 of the alternative chosen (:func:`~analytics.scenarios.claim_form.claim_form`);
* a button that saves the comparison as CSV (every alternative x payer, unformatted) and
  PNG.

Money, percents, payer names and headings are formatted as on the report pages
(:func:`analytics.plots.table`, :func:`analytics.kpis.fmt_money`). Typed minutes outside
0..``max_minutes`` are refused with a message naming the code, never clipped.

The chance of denial is learned from the practice's own history where it has one (its
export and 835 remittances, :func:`practice_denial_model`), else each payer's
``denial_prior``; each alternative shows its chance and what it rests on.

Examples
--------
In a notebook cell (``notebooks/explorer.ipynb`` holds exactly this):

>>> from analytics.scenarios.explorer import explorer
>>> explorer(sample="../data/sample", save_dir="../reports/explorer")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics._files import atomic_write, csv_text
from analytics.exceptions import AnalyticsError, InputError, UnpricedCodeWarning
from analytics.kpis import fmt_money, fmt_pct
from analytics.payers import PayerPolicy, load_payers
from analytics.refdata import Reference, load_reference
from analytics.scenarios.alternatives import Alternative
from analytics.scenarios.catalog import pairs_present
from analytics.scenarios.claim_form import claim_form
from analytics.scenarios.compare import Comparison, compare, practice_defaults, with_fee_schedule
from analytics.scenarios.session import Session

__all__ = [
    "explorer",
    "Explorer",
    "Practice",
    "open_practice",
    "practice_denial_model",
    "denial_chances",
    "ranked_totals",
    "best_per_payer",
    "chart_html",
    "parse_minutes",
    "settings_path",
    "remembered_folder",
    "remember_folder",
    "TIMED_SERVICES",
    "ALL_PAYERS",
]

#: The timed services the explorer offers, with the words an owner uses for them.
TIMED_SERVICES = (
    ("97124", "massage"),
    ("97140", "manual therapy"),
    ("97112", "neuromuscular re-education"),
    ("97110", "therapeutic exercise"),
)
#: Value of the payer picker's "all payers" choice.
ALL_PAYERS = "*"
#: Environment variable naming the settings file (default: :func:`settings_path`).
SETTINGS_ENV = "ANALYTICS_EXPLORER_SETTINGS"
_APP = "massage-billing-analytics"
_RULE_BASES = ("denied by an edit", "not billed: no billable units")
# The colours of analytics.scenarios.chart.plot_totals, so the page and the saved PNG agree.
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
# Column headings: the report tables' words (analytics.plots.table) and the explorer's own.
_LABELS = {
    "payer_name": "Payer",
    "alternative": "Alternative",
    "supported": "Documented",
    "expected_total": "Expected per visit",
    "expected_payer": "from payer",
    "expected_patient": "from patient",
    "missing": "Documentation missing",
    "p_deny": "Chance of denial",
    "p_deny_basis": "Basis of the chance",
    "denied_lines": "Lines denied by edits",
}
_MONEY_COLUMNS = {"expected_total", "expected_payer", "expected_patient", "allowed", "24F_charges"}
_PCT_COLUMNS = {"p_deny"}


# ---------------------------------------------------------------------------------------
# Settings: the last practice folder opened
# ---------------------------------------------------------------------------------------


def settings_path() -> Path:
    """The explorer's settings file: ``$XDG_CONFIG_HOME/massage-billing-analytics/explorer.json``.

    ``~/.config`` stands in for an unset ``XDG_CONFIG_HOME`` (``%APPDATA%`` on Windows);
    ``ANALYTICS_EXPLORER_SETTINGS`` names another file.

    Examples
    --------
    >>> settings_path().name
    'explorer.json'
    """
    if os.environ.get(SETTINGS_ENV):
        return Path(os.environ[SETTINGS_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or (os.environ.get("APPDATA") if os.name == "nt" else "")
    return Path(base or Path.home() / ".config") / _APP / "explorer.json"


def remembered_folder(default: str | os.PathLike[str]) -> Path:
    """The practice folder opened last, if it still holds ``payers.yaml``; else ``default``."""
    try:
        saved = json.loads(settings_path().read_text(encoding="utf-8")).get("practice_folder")
    except (OSError, ValueError, AttributeError):
        saved = None
    if saved and (Path(saved) / "payers.yaml").is_file():
        return Path(saved)
    return Path(default)


def remember_folder(folder: str | os.PathLike[str]) -> Path | None:
    """Save ``folder`` (absolute) as the one to open next time; ``None`` when it cannot be saved.

    A settings folder that cannot be written (read-only home) costs only the memory.
    """
    path = settings_path()
    try:
        old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        old = {}
    settings = {**(old if isinstance(old, dict) else {}), "practice_folder": str(Path(folder).resolve())}
    try:
        return atomic_write(path, json.dumps(settings, indent=1) + "\n")
    except OSError:
        return None


# ---------------------------------------------------------------------------------------
# The practice
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Practice:
    """What the explorer needs of a practice folder.

    Attributes
    ----------
    folder
        The folder, absolute.
    name
        The practice's name (``practice.yaml``), else the folder's name.
    payers
        Its payer policies, priced at the practice's Medicare locality.
    providers
        ``(provider_id, provider_type)`` from ``practice.yaml``, in file order.
    denial_model
        A fitted model with ``predict_proba(lines)``, or ``None`` (payer priors).
    denial_basis
        Where the chance of denial comes from, in words.
    """

    folder: Path
    name: str
    payers: dict[str, PayerPolicy]
    providers: tuple[tuple[str, str], ...]
    denial_model: Any | None
    denial_basis: str


def practice_denial_model(folder: Path, payers: Mapping[str, PayerPolicy]) -> tuple[Any | None, str]:
    """The chance of denial learned from the practice's own history, when it has one.

    Reads the folder as the reports do (:func:`analytics.kpis.load_history`: the export and
    its 835 remittances) and learns from every answered line
    (:func:`analytics.denials.learned.learned_risk`). Returns ``(risk, words)``; ``(None,
    words)`` when the folder has no answered line or cannot be read, so each payer's
    ``denial_prior`` (``payers.yaml``) is the chance, and ``words`` say why.
    """
    from analytics.denials.learned import learned_risk
    from analytics.kpis import load_history

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            risk = learned_risk(load_history(folder), validate=False)
    except (AnalyticsError, OSError, ValueError) as exc:
        return None, f"each payer's denial_prior in payers.yaml (the history could not be read: {exc})"
    if risk.mode == "prior" or not risk.lines:
        return None, "each payer's denial_prior in payers.yaml (no 835 remittance answers a charge yet)"
    span = ""
    if risk.start is not None and risk.end is not None:
        span = f", {risk.start:%b %Y} to {risk.end:%b %Y}"
    how = "learned from" if risk.mode == "model" else "shrunk payer x code rates of"
    return risk, f"{how} the practice's {risk.lines:,} answered lines ({risk.denials:,} denied{span})"


def open_practice(folder: str | os.PathLike[str], *, learn: bool = True) -> Practice:
    """Read a practice folder: ``payers.yaml`` (required) and ``practice.yaml`` (optional).

    With ``learn``, the chance of denial is learned from the folder's history when it has
    one (:func:`practice_denial_model`); else each payer's ``denial_prior``.

    Raises
    ------
    InputError
        The folder does not exist or holds no ``payers.yaml``; the message says what to pick.
    """
    import yaml

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(
            f"There is no folder {path}. Type the folder of a practice (the one holding "
            "payers.yaml and service_lines.csv) and press Open."
        )
    if not (path / "payers.yaml").is_file():
        raise InputError(
            f"{path} holds no payers.yaml, so there are no payers to compare. Choose the practice "
            "folder that holds payers.yaml (see data/sample for one)."
        )
    path = path.resolve()
    settings: dict[str, Any] = {}
    if (path / "practice.yaml").is_file():
        try:
            settings = yaml.safe_load((path / "practice.yaml").read_text()) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"{path / 'practice.yaml'} is not valid YAML ({exc}); fix or remove it.") from None
    if not isinstance(settings, Mapping):
        raise InputError(f"{path / 'practice.yaml'} must be a mapping (practice: ..., locality: ...).")
    payers = with_fee_schedule(
        load_payers(path / "payers.yaml"), locality=str(settings.get("locality") or "") or None
    )
    providers = tuple(
        (str(p.get("provider_id")), str(p.get("provider_type") or "pt").lower())
        for p in settings.get("providers") or []
        if isinstance(p, Mapping) and p.get("provider_id")
    )
    model, basis = practice_denial_model(path, payers) if learn else (
        None, "each payer's denial_prior in payers.yaml")
    name = str(settings.get("practice") or settings.get("name") or path.name)
    return Practice(path, name, payers, providers, model, basis)


# ---------------------------------------------------------------------------------------
# Tables and chart of one comparison
# ---------------------------------------------------------------------------------------


def denial_chances(comparison: Comparison) -> pd.DataFrame:
    """Chance of denial of each alternative x payer, and its basis, in ``totals`` order.

    The chance is the allowed-dollar-weighted mean of ``p_deny`` over the lines no edit
    denies (their plain mean where nothing is allowed): the share of the money billed the
    payer is expected to deny. Lines an edit denies are counted in ``denied_lines``
    instead; an alternative whose every line an edit denies has chance 1, basis "denied by
    an edit". The basis joins the distinct words of its lines ("payer prior (policy
    denial_prior)", or with a practice's learned risk "learned from 363 Medicare Part B
    97140 lines, 17 denied; ...").

    Returns
    -------
    pandas.DataFrame
        ``alternative``, ``payer_id``, ``p_deny``, ``p_deny_basis``.
    """
    t, totals = comparison.table, comparison.totals
    keys = pd.MultiIndex.from_arrays([totals["alternative"].astype(str), totals["payer_id"].astype(str)])
    at = keys.get_indexer(
        pd.MultiIndex.from_arrays([t["alternative"].astype(str), t["payer_id"].astype(str)])
    )
    line_basis = t["p_deny_basis"].astype(str).to_numpy()
    live = ~np.isin(line_basis, _RULE_BASES)
    p = t["p_deny"].to_numpy(dtype=float)
    allowed = np.nan_to_num(t["allowed"].to_numpy(dtype=float, na_value=np.nan)) * live
    n = len(totals)
    dollars = np.bincount(at, weights=allowed, minlength=n)
    at_risk = np.bincount(at, weights=allowed * p, minlength=n)
    count = np.bincount(at, weights=live.astype(float), minlength=n)
    p_sum = np.bincount(at, weights=p * live, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        chance = np.where(dollars > 0, at_risk / dollars, np.where(count > 0, p_sum / count, 1.0))
    words = (
        pd.DataFrame({"at": at[live], "basis": line_basis[live]})
        .drop_duplicates()
        .groupby("at", sort=True)["basis"]
        .agg("; ".join)
        .reindex(np.arange(n), fill_value=_RULE_BASES[0])
    )
    return pd.DataFrame(
        {
            "alternative": totals["alternative"].to_numpy(),
            "payer_id": totals["payer_id"].to_numpy(),
            "p_deny": chance,
            "p_deny_basis": words.to_numpy(dtype=object),
        }
    )


def _shows_modifier(
    alt: Alternative, code: str, modifier: str, pairs: Mapping[tuple[str, str], int]
) -> bool:
    """True when ``alt`` bills ``code`` with ``modifier`` as a column-2 code, or does not pair it."""
    if code not in alt.codes:
        return True
    paired = any(c2 == code and c1 in alt.codes for c1, c2 in pairs)
    return not paired or alt.modifiers[alt.codes.index(code)] == modifier


def ranked_totals(
    comparison: Comparison,
    *,
    modifier: str | None = None,
    column2: str | None = None,
    pairs: Mapping[tuple[str, str], int] | None = None,
) -> pd.DataFrame:
    """Every alternative x payer with its chance of denial, each payer's best first.

    Payers keep the comparison's order; within a payer the best supported alternative
    (``best`` of :func:`~analytics.scenarios.compare.compare`) comes first, then supported
    ones by expected collections, then those the documentation does not support.
    ``modifier`` ("" for none) keeps only alternatives billing ``column2`` with that NCCI
    modifier (or not pairing it).
    """
    totals = comparison.totals.merge(
        denial_chances(comparison), on=["alternative", "payer_id"], how="left", validate="1:1"
    )
    if modifier is not None and column2:
        keep = [
            a.name
            for a in comparison.alternatives
            if _shows_modifier(a, column2, modifier, pairs or {})
        ]
        totals = totals[totals["alternative"].astype(str).isin(keep)]
    payer_rank = pd.Categorical(totals["payer_id"], categories=list(comparison.payers)).codes
    order = np.lexsort(
        (
            np.arange(len(totals)),
            -totals["expected_total"].to_numpy(dtype=float),
            ~totals["supported"].to_numpy(dtype=bool),
            ~totals["best"].to_numpy(dtype=bool),
            payer_rank,
        )
    )
    out = totals.iloc[order].reset_index(drop=True)
    return out.assign(alternative=out["alternative"].astype(str))


def best_per_payer(ranked: pd.DataFrame) -> pd.DataFrame:
    """The first row of each payer in :func:`ranked_totals`: its best supported alternative."""
    return ranked[~ranked["payer_id"].duplicated()].reset_index(drop=True)


def chart_html(ranked: pd.DataFrame, payer_ids: Sequence[str]) -> str:
    """Expected collections per visit as horizontal bars, one group per alternative.

    Drawn in HTML so the page redraws at once; each bar carries ``data-payer``,
    ``data-alternative`` and ``data-value`` (dollars) and shows the amount in words of the
    report tables (``$116.28``). Alternatives the documentation does not support are pale
    and hatched, "(not supported)" beside their name.
    """
    if ranked.empty:
        return '<div class="mba-chart"><p>No alternative to show.</p></div>'
    names = dict(zip(ranked["payer_id"], ranked["payer_name"], strict=False))
    shown = [p for p in payer_ids if p in names]
    colour = {p: _COLOURS[i % len(_COLOURS)] for i, p in enumerate(payer_ids)}
    top = max(float(ranked["expected_total"].max()), 1.0)
    legend = "".join(
        f'<span class="mba-chip"><i style="background:{colour[p]}"></i>{html.escape(str(names[p]))}</span>'
        for p in shown
    )
    alts = list(dict.fromkeys(ranked.sort_values("alternative", kind="stable", key=_listing(ranked))["alternative"]))
    grid = ranked.set_index(["alternative", "payer_id"])
    parts = [
        '<div class="mba-chart" role="img" aria-label="Expected collections per visit">',
        '<div class="mba-title">Expected collections per visit, by coding alternative and payer</div>',
        f'<div class="mba-legend">{legend}</div>',
    ]
    for alt in alts:
        rows = grid.loc[alt]
        supported = bool(rows["supported"].iloc[0])
        label = html.escape(alt) + ("" if supported else ' <span class="mba-ns">(not supported)</span>')
        bars = []
        for pid in shown:
            if pid not in rows.index:
                continue
            v = float(rows.at[pid, "expected_total"])
            cls = "mba-bar" + ("" if supported else " mba-unsupported")
            bars.append(
                f'<div class="mba-row"><div class="{cls}" data-payer="{html.escape(pid)}" '
                f'data-alternative="{html.escape(alt)}" data-value="{v:.2f}" '
                f'style="width:{88 * v / top:.2f}%;--c:{colour[pid]}"></div>'
                f'<span class="mba-value">{fmt_money(v, cents=True)}</span></div>'
            )
        parts.append(f'<div class="mba-group"><div class="mba-alt">{label}</div>{"".join(bars)}</div>')
    parts.append(
        '<div class="mba-axis">allowed x (1 - chance of denial); pale, hatched bars: not '
        "supported by the documentation</div></div>"
    )
    return "".join(parts)


def _listing(ranked: pd.DataFrame):
    """Sort key keeping the alternatives in the comparison's listing order."""
    first = {a: i for i, a in enumerate(dict.fromkeys(ranked["alternative"]))}

    def key(col: pd.Series) -> pd.Series:
        return col.map(first)

    return key


def parse_minutes(text: str, code: str, max_minutes: int) -> int:
    """Typed minutes as a whole number from 0 to ``max_minutes``, or an error saying what to type.

    Examples
    --------
    >>> parse_minutes(" 75 ", "97124", 120)
    75
    >>> parse_minutes("500", "97124", 120)
    Traceback (most recent call last):
    ...
    analytics.exceptions.MinutesError: 97124: 500 minutes is more than the explorer's 120. Type a whole number of minutes from 0 to 120.
    """
    from analytics.exceptions import MinutesError

    raw = str(text).strip()
    hint = f"Type a whole number of minutes from 0 to {max_minutes}."
    try:
        value = int(raw)
    except ValueError:
        raise MinutesError(f"{code}: {raw!r} is not a number of minutes. {hint}") from None
    if value < 0:
        raise MinutesError(f"{code}: minutes cannot be negative ({value}). {hint}")
    if value > max_minutes:
        raise MinutesError(f"{code}: {value} minutes is more than the explorer's {max_minutes}. {hint}")
    return value


def table_html(frame: pd.DataFrame, columns: Sequence[str], labels: Mapping[str, str]) -> str:
    """A small table in the words and number formats of the report pages, as HTML.

    Dollars with cents (:func:`analytics.kpis.fmt_money`), chances as percents
    (:func:`analytics.kpis.fmt_pct`), yes/no for true/false, no index. Built directly
    rather than through a pandas Styler, which takes ~50 ms a table.
    """
    head = "".join(f"<th>{html.escape(labels.get(c, c.replace('_', ' ')))}</th>" for c in columns)
    cells = []
    for c in columns:
        values = frame[c].to_numpy()
        if c in _MONEY_COLUMNS:
            text = [fmt_money(float(v), cents=True) for v in values]
            cells.append([f'<td class="num">{t}</td>' for t in text])
        elif c in _PCT_COLUMNS:
            cells.append([f'<td class="num">{fmt_pct(float(v))}</td>' for v in values])
        elif values.dtype == bool:
            cells.append([f"<td>{'yes' if v else 'no'}</td>" for v in values])
        elif np.issubdtype(values.dtype, np.integer):
            cells.append([f'<td class="num">{int(v):,}</td>' for v in values])
        else:
            cells.append([f"<td>{html.escape(str(v))}</td>" for v in values])
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in zip(*cells, strict=True)) if cells else ""
    return f'<table class="mba-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# ---------------------------------------------------------------------------------------
# The widgets
# ---------------------------------------------------------------------------------------

_CSS = """<style>
.mba-app .widget-label, .mba-app .widget-checkbox label { overflow: visible; }
.mba-note { color: #444; font-size: 12px; }
.mba-error { color: #a40000; font-weight: bold; }
.mba-ok { color: #1a5e20; }
.mba-chart { font: 12px/1.25 sans-serif; min-width: 380px; max-width: 640px; }
.mba-title { font-weight: bold; font-size: 13px; margin-bottom: 4px; }
.mba-legend { margin-bottom: 6px; }
.mba-chip { margin-right: 12px; white-space: nowrap; }
.mba-chip i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.mba-group { margin: 4px 0 6px; }
.mba-alt { font-weight: 600; }
.mba-ns { font-weight: normal; color: #666; }
.mba-row { display: flex; align-items: center; height: 13px; }
.mba-bar { height: 10px; background: var(--c); border: 1px solid #333; min-width: 1px; }
.mba-unsupported { opacity: .45; border-color: var(--c);
  background: repeating-linear-gradient(45deg, var(--c) 0 3px, #fff 3px 6px); }
.mba-value { margin-left: 4px; font-size: 11px; white-space: nowrap; }
.mba-axis { color: #555; font-size: 11px; margin-top: 4px; }
.mba-table { border-collapse: collapse; font-size: 12px; margin: 2px 0 8px; }
.mba-table th { text-align: left; padding: 4px 10px; border-bottom: 1px solid #999; }
.mba-table td { text-align: left; padding: 3px 10px; }
.mba-table td.num { text-align: right; white-space: nowrap; }
</style>"""


class Explorer:
    """The explorer's widgets and state; shown by a notebook cell (see :func:`explorer`)."""

    def __init__(
        self,
        *,
        folder: Path,
        sample: Path,
        save_dir: Path,
        max_minutes: int,
        session: Session | None,
        reference: Reference,
        learn: bool = True,
    ):
        import ipywidgets as w

        self.w = w
        self.sample, self.save_dir, self.max_minutes = sample, save_dir, max_minutes
        self.ref, self.learn = reference, learn
        self.practice: Practice | None = None
        self._cache: dict[tuple, Comparison] = {}
        self._defaults: dict[str, dict[str, Any]] = {}
        self._busy = False
        self.ranked = pd.DataFrame()
        self.comparison: Comparison | None = None
        self._build_controls(folder, session)
        self._build_outputs()
        self.widget = w.VBox(
            [
                w.HTML(_CSS),
                self._folder_row,
                self._session_row,
                self._minutes_box,
                self._documentation_row,
                self._choice_row,
                self.message,
                self._results,
                self._claim_box,
                self._save_row,
            ],
            layout=w.Layout(width="100%"),
        )
        self.widget.add_class("mba-app")
        self.open_folder(folder)

    # -- layout ---------------------------------------------------------------------------
    def _build_controls(self, folder: Path, session: Session | None) -> None:
        w = self.w
        wide = {"description_width": "initial"}
        self.folder = w.Text(
            value=str(folder),
            description="Practice folder",
            placeholder="the folder holding payers.yaml",
            continuous_update=False,
            style=wide,
            layout=w.Layout(width="min(640px, 70%)"),
        )
        self.open_button = w.Button(description="Open", tooltip="Open this practice folder")
        self.sample_button = w.Button(description="Sample practice", tooltip=str(self.sample))
        self.folder_message = w.HTML()
        self._folder_row = w.VBox(
            [w.HBox([self.folder, self.open_button, self.sample_button]), self.folder_message]
        )
        given = {s.code: s for s in session.services} if session else {}
        self.date = w.DatePicker(
            value=session.service_date if session else dt.date.today(),
            description="Date of service",
            style=wide,
        )
        self.provider = w.Dropdown(description="Provider", style=wide, layout=w.Layout(width="auto"))
        self._session_row = w.HBox([self.date, self.provider], layout=w.Layout(flex_flow="row wrap"))
        self.sliders: dict[str, Any] = {}
        self.typed: dict[str, Any] = {}
        rows = []
        for code, words in TIMED_SERVICES:
            start = (given[code].minutes or 0) if code in given else (30 if code in ("97124", "97140") and not given else 0)
            start = int(min(max(start, 0), self.max_minutes))
            label = w.Label(f"{code} {words}", layout=w.Layout(width="230px"))
            slider = w.IntSlider(
                value=start, min=0, max=self.max_minutes, step=1, readout=False,
                continuous_update=False, layout=w.Layout(width="320px"),
            )
            box = w.Text(value=str(start), continuous_update=False, layout=w.Layout(width="64px"))
            slider.add_class(f"mba-slider-{code}")
            box.add_class(f"mba-minutes-{code}")
            slider.observe(self._slider_moved(code), names="value")
            box.observe(self._typed_minutes(code), names="value")
            self.sliders[code], self.typed[code] = slider, box
            rows.append(w.HBox([label, slider, box, w.Label("min")]))
        self._minutes_box = w.VBox(
            [w.HTML(f'<span class="mba-note">Direct one-on-one minutes of each service (0 if not '
                    f"performed; up to {self.max_minutes}: drag, or type and press Enter)</span>"), *rows]
        )

        def check(description: str, value: bool):
            box = w.Checkbox(value=value, description=description, indent=False,
                             layout=w.Layout(width="auto", margin="0 18px 0 0"))
            return box

        self.regions = check("separate body regions documented",
                             session.distinct_regions if session else True)
        self.blocks = check("separate time blocks documented",
                            session.separate_time_blocks if session else False)
        self.pack = check("hot/cold pack (97010)", "97010" in given)
        self.prescription = check("prescription or referral on file",
                                  session.prescription_on_file if session else True)
        self._documentation_row = w.HBox(
            [self.regions, self.blocks, self.pack, self.prescription],
            layout=w.Layout(flex_flow="row wrap"),
        )
        self.modifier = w.ToggleButtons(
            options=[("all", "all"), ("none", ""), ("59", "59"), ("XS", "XS"), ("XU", "XU")],
            value="all",
            tooltips=["every alternative", "no modifier", "distinct procedural service",
                      "separate structure", "unusual non-overlapping service"],
            style={"button_width": "56px"},
            layout=w.Layout(width="max-content", flex="0 0 auto"),
        )
        self.modifier_label = w.Label("Modifier on 97124", layout=w.Layout(width="max-content", margin="2px 6px 2px 0"))
        self.payer = w.Dropdown(description="Payer", style=wide, layout=w.Layout(width="auto"))
        self._choice_row = w.HBox(
            [w.HBox([self.modifier_label, self.modifier], layout=w.Layout(margin="0 32px 0 0")), self.payer],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )
        for control in (self.date, self.provider, self.regions, self.blocks, self.pack,
                        self.prescription, self.modifier, self.payer):
            control.observe(self._changed, names="value")
        self.open_button.on_click(lambda _: self.open_folder(self.folder.value))
        self.sample_button.on_click(lambda _: self.open_folder(self.sample))
        self.folder.observe(self._folder_typed, names="value")

    def _build_outputs(self) -> None:
        w = self.w
        self.message = w.HTML()
        self.chart = w.HTML(layout=w.Layout(flex="1 1 420px", min_width="380px"))
        self.best = w.HTML(layout=w.Layout(flex="1 1 420px"))
        self.full = w.HTML()
        self.full_table = w.Accordion(children=[self.full], selected_index=None)
        self.full_table.set_title(0, "Every alternative for every payer (click to open)")
        for box, name in ((self.chart, "mba-chart-box"), (self.best, "mba-best"), (self.full, "mba-full")):
            box.add_class(name)
        self._results = w.VBox(
            [w.HBox([self.chart, self.best], layout=w.Layout(flex_flow="row wrap", align_items="flex-start")),
             self.full_table]
        )
        self.claim_choice = w.Dropdown(description="CMS-1500 preview of", style={"description_width": "initial"},
                                       layout=w.Layout(width="auto"))
        self.claim_payer = w.Dropdown(description="billed to", style={"description_width": "initial"},
                                      layout=w.Layout(width="auto"))
        self.claim = w.HTML()
        self.claim.add_class("mba-claim")
        self._claim_pick: str | None = None
        self._claim_payer_pick: str | None = None
        self.claim_choice.observe(self._claim_picked, names="value")
        self.claim_payer.observe(self._claim_picked, names="value")
        self.full_table.observe(lambda _: self._draw_full(), names="selected_index")
        self._claim_box = w.VBox([w.HBox([self.claim_choice, self.claim_payer],
                                         layout=w.Layout(flex_flow="row wrap")), self.claim])
        self.save_button = w.Button(description="Save comparison (CSV and PNG)", icon="download",
                                    layout=w.Layout(width="max-content", flex="0 0 auto"))
        self.save_message = w.HTML()
        self.save_button.on_click(lambda _: self.save())
        self._save_row = w.HBox([self.save_button, self.save_message])

    # -- display --------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- events ---------------------------------------------------------------------------
    def _slider_moved(self, code: str):
        def moved(change: Mapping[str, Any]) -> None:
            self.typed[code].value = str(change["new"])
            self._changed()

        return moved

    def _typed_minutes(self, code: str):
        def typed(change: Mapping[str, Any]) -> None:
            slider = self.sliders[code]
            if str(change["new"]).strip() == str(slider.value):
                return
            try:
                value = parse_minutes(change["new"], code, self.max_minutes)
            except InputError as exc:
                self._say(f"{exc} The explorer keeps {slider.value} minutes.", error=True)
                self.typed[code].value = str(slider.value)
                return
            slider.value = value  # redraws through the slider

        return typed

    def _folder_typed(self, change: Mapping[str, Any]) -> None:
        if not self._busy:
            self.open_folder(change["new"])

    def _say(self, text: str, *, error: bool = False) -> None:
        cls = "mba-error" if error else "mba-note"
        self.message.value = f'<div class="{cls}" role="status">{html.escape(text)}</div>' if text else ""

    def open_folder(self, folder: str | os.PathLike[str]) -> None:
        """Open a practice folder; on a bad folder keep the current one and say why."""
        self.folder_message.value = (
            f'<div class="mba-note">Opening {html.escape(str(folder))}'
            + (" and learning the chance of denial from its remittances..." if self.learn else "...")
            + "</div>"
        )
        try:
            practice = open_practice(folder, learn=self.learn)
        except (AnalyticsError, OSError) as exc:
            still = f" The explorer still shows {self.practice.name}." if self.practice else ""
            self.folder_message.value = f'<div class="mba-error">{html.escape(str(exc) + still)}</div>'
            return
        self.practice, self._cache, self._defaults = practice, {}, {}
        remembered = remember_folder(practice.folder)
        self._busy = True
        try:
            if self.folder.value != str(practice.folder):
                self.folder.value = str(practice.folder)
            self.payer.options = [("All payers", ALL_PAYERS)] + [
                (p.name or pid, pid) for pid, p in practice.payers.items()
            ]
            self.payer.value = ALL_PAYERS
            self.provider.options = [(f"{pid} ({kind})", pid) for pid, kind in practice.providers] or [
                (f"any ({kind})", kind) for kind in ("pt", "lmt", "dc", "md")
            ]
            kinds = [kind for _, kind in practice.providers]
            self.provider.value = self.provider.options[kinds.index("pt") if "pt" in kinds else 0][1]
        finally:
            self._busy = False
        note = "" if remembered else " (the folder could not be remembered: the settings folder is not writable)"
        self.folder_message.value = (
            f'<div class="mba-ok">{html.escape(practice.name)}: {len(practice.payers)} payers from '
            f"{html.escape(str(practice.folder / 'payers.yaml'))}. Chance of denial: "
            f"{html.escape(practice.denial_basis)}.{html.escape(note)}</div>"
        )
        self._changed()

    # -- computing ------------------------------------------------------------------------
    def minutes(self) -> dict[str, int]:
        return {code: int(s.value) for code, s in self.sliders.items()}

    def payer_ids(self) -> list[str]:
        assert self.practice is not None
        return list(self.practice.payers) if self.payer.value == ALL_PAYERS else [self.payer.value]

    def session(self) -> Session:
        """The session the controls describe."""
        assert self.practice is not None
        folder, value = self.practice.folder, self.provider.value
        settings = self._defaults.get(value)
        if settings is None:  # practice.yaml is read once per provider
            settings = (
                practice_defaults(folder, providers=[value])
                if self.practice.providers
                else practice_defaults(folder, provider_type=value or "pt")
            )
            self._defaults[value] = settings
        return Session.from_minutes(
            self.minutes(),
            service_date=self.date.value or dt.date.today(),
            distinct_regions=self.regions.value,
            separate_time_blocks=self.blocks.value,
            hot_pack=self.pack.value,
            prescription_on_file=self.prescription.value,
            deductible_remaining=0.0,
            **settings,
        )

    def _comparison(self, session: Session, payer_ids: list[str]) -> Comparison:
        key = (
            tuple(sorted(self.minutes().items())), self.date.value, self.provider.value,
            self.regions.value, self.blocks.value, self.pack.value, self.prescription.value,
            tuple(payer_ids),
        )
        hit = self._cache.get(key)
        if hit is None:
            assert self.practice is not None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnpricedCodeWarning)
                hit = compare(session, self.practice.payers, payer_ids=payer_ids, reference=self.ref,
                              risk=self.practice.denial_model)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def _changed(self, *_: Any) -> None:
        if self._busy or self.practice is None:
            return
        if not any(self.minutes().values()):
            self._say("Give at least one service some minutes (or tick the hot/cold pack).", error=True)
            if not self.pack.value:
                return
        try:
            session = self.session()
            payer_ids = self.payer_ids()
            result = self._comparison(session, payer_ids)
            pairs = pairs_present(session, self.ref, {p: self.practice.payers[p] for p in payer_ids})
        except (AnalyticsError, OSError) as exc:
            self._say(str(exc), error=True)
            return
        column2 = sorted({c2 for _, c2 in pairs})
        self.modifier.disabled = not column2
        self.modifier_label.value = f"Modifier on {column2[0]}" if column2 else "Modifier (no code pair)"
        mod = None if self.modifier.value == "all" or not column2 else self.modifier.value
        self.comparison, self._session = result, session
        self.ranked = ranked_totals(result, modifier=mod, column2=column2[0] if column2 else None,
                                    pairs=pairs)
        if any(self.minutes().values()):
            self._say("")
        self._draw(payer_ids)

    def _draw(self, payer_ids: list[str]) -> None:
        """Chart and short table first (they are what a change is for), then the rest."""
        ranked = self.ranked
        self.chart.value = chart_html(ranked, payer_ids)
        best = best_per_payer(ranked)
        best = best.assign(alternative=np.where(
            best["supported"], best["alternative"],
            best["alternative"] + " (not supported: " + best["missing"].astype(str) + ")"))
        bases = best["p_deny_basis"].unique()
        columns = ["payer_name", "alternative", "expected_total", "expected_payer", "expected_patient",
                   "p_deny"] + (["p_deny_basis"] if len(bases) > 1 else [])
        basis = f'<div class="mba-note">Chance of denial: {html.escape(bases[0])}.</div>' if len(bases) == 1 else ""
        self.best.value = (
            '<div class="mba-title">Best supported way to bill, per payer</div>'
            + table_html(best, columns, {**_LABELS, "alternative": "Best supported alternative"})
            + basis
        )
        self._busy = True
        try:
            alts = list(dict.fromkeys(ranked["alternative"]))
            first = alts[0] if alts else None
            if list(self.claim_choice.options) != alts:  # unchanged options are not sent again
                self.claim_choice.options = alts
            self.claim_choice.value = self._claim_pick if self._claim_pick in alts else first
            names = dict(zip(ranked["payer_id"], ranked["payer_name"], strict=False))
            ids = [p for p in payer_ids if p in names]
            labelled = [(str(names[p]), p) for p in ids]
            if [(str(k), v) for k, v in self.claim_payer.options] != labelled:
                self.claim_payer.options = labelled
            self.claim_payer.value = self._claim_payer_pick if self._claim_payer_pick in ids else (
                ids[0] if ids else None)
        finally:
            self._busy = False
        self._draw_claim()
        self._draw_full()

    def _draw_full(self) -> None:
        """The full table, drawn only while it is open."""
        if self.full_table.selected_index is None:
            self.full.value = ""
            return
        self.full.value = table_html(
            self.ranked,
            ["payer_name", "alternative", "supported", "expected_total", "expected_payer",
             "expected_patient", "p_deny", "p_deny_basis", "denied_lines", "missing"],
            _LABELS,
        )

    def _claim_picked(self, change: Mapping[str, Any]) -> None:
        if not self._busy:
            if change["owner"] is self.claim_choice:
                self._claim_pick = change["new"]
            else:
                self._claim_payer_pick = change["new"]
            self._draw_claim()

    def _draw_claim(self) -> None:
        if self._busy or self.comparison is None or not self.claim_choice.value:
            return
        alt = next((a for a in self.comparison.alternatives if a.name == self.claim_choice.value), None)
        payer = self.practice.payers.get(self.claim_payer.value) if self.practice else None
        if alt is None or payer is None:
            self.claim.value = ""
            return
        try:
            form = claim_form(self._session, alt, payer, reference=self.ref)
        except AnalyticsError as exc:
            self.claim.value = f'<div class="mba-error">{html.escape(str(exc))}</div>'
            return
        dx = ", ".join(form.diagnoses["code"]) or "none entered"
        who = form.referring.name if form.referring else "none"
        omitted = f" Left off (no billable unit): {', '.join(form.omitted)}." if form.omitted else ""
        lines = form.lines.drop(columns=["page"])
        self.claim.value = (
            f'<div class="mba-note">Item 21 (ICD-10-CM): {html.escape(dx)}. Item 17: '
            f"{html.escape(who)}.{html.escape(omitted)}</div>"
            + table_html(lines, list(lines.columns), {})
        )

    # -- saving ---------------------------------------------------------------------------
    def save(self) -> tuple[Path, Path] | None:
        """Write the comparison on screen as CSV and PNG into the save folder."""
        if self.comparison is None or self.ranked.empty:
            self.save_message.value = '<span class="mba-error">Nothing to save yet.</span>'
            return None
        from analytics.scenarios.chart import plot_totals

        stamp = dt.datetime.now().strftime("%Y-%m-%d_%H%M%S")
        codes = "-".join(f"{c}x{m}" for c, m in self.minutes().items() if m)
        base = self.save_dir / f"comparison_{stamp}_{codes or 'session'}"
        ranked = self.ranked
        try:
            csv = atomic_write(base.with_suffix(".csv"), csv_text(ranked, float_format="%.4f"))
            order = list(dict.fromkeys(ranked["alternative"]))
            totals = ranked.assign(alternative=pd.Categorical(ranked["alternative"], categories=order))
            fig = plot_totals(totals, [p for p in self.payer_ids() if p in set(ranked["payer_id"])],
                              title=None, show_values=None)
            import io

            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110)
            png = atomic_write(base.with_suffix(".png"), buf.getvalue())
        except OSError as exc:
            self.save_message.value = (
                f'<span class="mba-error">Could not save into {html.escape(str(self.save_dir))}: '
                f"{html.escape(exc.strerror or str(exc))}. Choose a writable folder.</span>"
            )
            return None
        self.save_message.value = f'<span class="mba-ok">Saved {html.escape(str(csv))} and {html.escape(png.name)}</span>'
        return csv, png


def explorer(
    session: Session | None = None,
    payers: Mapping[str, PayerPolicy] | None = None,
    *,
    folder: str | os.PathLike[str] | None = None,
    sample: str | os.PathLike[str] = "data/sample",
    save_dir: str | os.PathLike[str] = "reports/explorer",
    reference: Reference | None = None,
    max_minutes: int = 120,
    learn: bool = True,
) -> Explorer:
    """The coding-choice explorer for a notebook cell.

    Parameters
    ----------
    session
        Starting minutes and documentation (default: 30 min of 97124 and 97140 on separate
        body regions, a prescription on file, today).
    payers
        Unused unless no practice folder can be opened (kept for older notebooks); the
        payers come from the practice folder's ``payers.yaml``.
    folder
        Practice folder to open first (default: the one opened last, else ``sample``).
    sample
        The sample practice, behind the "Sample practice" button.
    save_dir
        Where "Save comparison" writes its CSV and PNG.
    reference
        Reference data (default: the shipped extracts).
    max_minutes
        Largest number of minutes per service (slider and typed).
    learn
        Learn the chance of denial from each practice's history (a few seconds when a folder
        opens); ``False`` uses each payer's ``denial_prior``.

    Returns
    -------
    Explorer
        Displays as the explorer's widgets; ``.comparison`` and ``.ranked`` hold what is shown.
    """
    del payers  # the practice folder's payers.yaml is the source
    start = Path(folder) if folder is not None else remembered_folder(sample)
    return Explorer(
        folder=start,
        sample=Path(sample).resolve() if Path(sample).exists() else Path(sample),
        save_dir=Path(save_dir),
        max_minutes=int(max_minutes),
        session=session,
        reference=reference or load_reference(),
        learn=learn,
    )
