"""Denial risk learned from a practice's own history, with the basis of every chance in words.

:func:`learned_risk` reads a :class:`~analytics.history.History` (the charge lines joined to
their 835 remittances) and returns a :class:`LearnedRisk`:

* with enough denials, the :class:`~analytics.denials.DenialRiskModel` fitted on every line a
  payer has answered (lines the payer rules deny for certain are left out: the rules engine
  sets them to 1, so the model learns the rest);
* with too few (a thin history), each payer x code rate shrunk toward its payer's rate
  (empirical Bayes, :func:`~analytics.denials.denial_rates`), marked as such;
* with no answered line at all, each payer's ``denial_prior`` from ``payers.yaml``.

It is validated by time: fitted on the earlier months and scored on the last ones (Brier
score, log loss and AUC against two baselines, the practice's overall rate and the shrunk
payer x code rates, and a calibration table with counts per bin). It plugs into
:func:`analytics.pipeline.evaluate` (``denial_model=``) and :func:`analytics.scenarios.compare`
(``risk=``): ``predict_proba`` gives each line's chance of denial and ``basis_words`` says
what it was learned from ("learned from 276 Gold PPO 97124 lines, 26 denied" or "payer
prior, no history").
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analytics.denials.bands import factorize
from analytics.denials.design import Term, term_words
from analytics.denials.features import LineFeatures
from analytics.denials.model import DenialRiskModel
from analytics.denials.rates import shrunk_rates
from analytics.exceptions import InputError

__all__ = [
    "FittedFeatures",
    "LearnedRisk",
    "TimeValidation",
    "calibration_table",
    "fit_learned_risk",
    "history_frame",
    "learned_risk",
    "plain_term",
    "score_predictions",
]

#: Columns of the practice's lines the risk is learned from (those a history has).
FEATURE_COLUMNS = (
    "line_id", "claim_id", "patient_id", "service_date", "provider_id", "provider_type", "payer_id", "cpt",
    "minutes", "modifiers", "dx_codes", "prescription_on_file", "prior_auth", "visits_before",
    "submission_date", "units", "charge", "edit_reason",
)
_RULE_DISPOSITIONS = ("denied", "not_billed")
_DEFAULT_PRIOR = 0.05
_PRIOR_STRENGTH = 20.0


# ---------------------------------------------------------------------------------------
# The lines of a history, as the model reads them
# ---------------------------------------------------------------------------------------


def history_frame(history: Any) -> pd.DataFrame:
    """The history's lines in scope (every date up to ``as_of``) with the model's features.

    Returns the columns of :data:`FEATURE_COLUMNS` that the history has, plus ``disposition``
    (what the rules engine says of the line under its payer's policy), ``self_pay``,
    ``submitted``, ``adjudicated``, ``denied`` (denied or partially denied by the payer),
    ``in_period``, ``contract_expected``, ``allowed``, ``denied_amount`` and ``denial_category``.
    A line not submitted by ``as_of`` carries no submission date.
    """
    lines = history.lines
    base = history.base
    cols = [c for c in FEATURE_COLUMNS if c in base.columns and c not in lines.columns]
    frame = lines.join(base.loc[lines.index, cols]) if cols else lines.copy()
    keep = [c for c in FEATURE_COLUMNS if c in frame.columns]
    out = frame[keep].copy()
    out["disposition"] = lines["engine_disposition"].astype(str).to_numpy()
    for c in ("self_pay", "submitted", "adjudicated", "in_period"):
        out[c] = lines[c].to_numpy(dtype=bool)
    out["denied"] = (lines["denied"] | lines["partially_denied"]).to_numpy(dtype=bool)
    for c in ("contract_expected", "allowed", "denied_amount"):
        out[c] = lines[c].to_numpy(dtype=float)
    out["denial_category"] = lines["denial_category"].astype(str).to_numpy()
    # what was known on the as-of date: a claim sent later had no submission date yet
    sub = pd.to_datetime(out["submission_date"], errors="coerce")
    out["submission_date"] = sub.where(out["submitted"].to_numpy())
    return out


class TextCodes:
    """The integer codes and distinct texts of a frame's columns
    (:func:`~analytics.denials.bands.factorize`), each column read once however often asked."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._done: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        if column not in self._done:
            self._done[column] = factorize(self.frame[column])
        return self._done[column]


def _is_in(values: pd.Series | tuple[np.ndarray, np.ndarray], wanted) -> np.ndarray:
    """Whether each value, as text, is one of ``wanted``: tested once per distinct value.
    ``values``: a column, or its codes and distinct texts."""
    codes, uniq = values if isinstance(values, tuple) else factorize(values)
    return np.isin(uniq, list(wanted))[codes] if len(uniq) else np.zeros(len(codes), dtype=bool)


def _cash_payers(payers: Mapping) -> list[str]:
    return [str(p) for p, pol in payers.items() if getattr(pol, "kind", "") == "cash"]


def _learnable(frame: pd.DataFrame, payers: Mapping, codes: TextCodes | None = None) -> np.ndarray:
    """Lines a payer answered, billed to an insurer, that the payer rules do not deny."""
    codes = codes or TextCodes(frame)
    return (
        frame["adjudicated"].to_numpy(dtype=bool)
        & ~frame["self_pay"].to_numpy(dtype=bool)
        & ~_is_in(codes("payer_id"), _cash_payers(payers))
        & ~_is_in(codes("disposition"), _RULE_DISPOSITIONS)
    )


def _pair_counts(frame: pd.DataFrame, mask: np.ndarray, denied: np.ndarray,
                 codes: TextCodes | None = None) -> pd.DataFrame:
    """Lines of ``mask`` and their denials per payer and code (``payer_id, cpt, lines,
    denied``, sorted), counted on integer codes."""
    codes = codes or TextCodes(frame)
    pc, pv = codes("payer_id")
    cc, cv = codes("cpt")
    width = max(len(cv), 1)
    key = pc[mask] * width + cc[mask]
    size = len(pv) * width
    n = np.bincount(key, minlength=size)
    k = np.bincount(key, weights=np.asarray(denied, dtype=float)[mask], minlength=size)
    live = np.flatnonzero(n > 0)
    table = pd.DataFrame({"payer_id": pv[live // width] if len(live) else np.zeros(0, dtype=object),
                          "cpt": cv[live % width] if len(live) else np.zeros(0, dtype=object),
                          "lines": n[live].astype(np.int64), "denied": np.rint(k[live]).astype(np.int64)})
    # two codes may read the same as text (1 and "1"): one group, as grouping the text would
    return table.groupby(["payer_id", "cpt"], sort=True)[["lines", "denied"]].sum().reset_index()


# ---------------------------------------------------------------------------------------
# Scores and calibration
# ---------------------------------------------------------------------------------------


def score_predictions(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Brier score, log loss and AUC of probabilities ``p`` against outcomes ``y``.

    Examples
    --------
    >>> s = score_predictions(np.array([0.1, 0.9]), np.array([False, True]))
    >>> round(s["brier"], 4), round(s["auc"], 1)
    (0.01, 1.0)
    """
    from sklearn.metrics import roc_auc_score

    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    y = np.asarray(y, dtype=bool)
    n, k = len(y), int(y.sum())
    if not n:
        return {"lines": 0, "denied": 0, "brier": float("nan"), "log_loss": float("nan"), "auc": float("nan")}
    return {
        "lines": n,
        "denied": k,
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(-np.mean(np.where(y, np.log(p), np.log(1 - p)))),
        "auc": float(roc_auc_score(y, p)) if 0 < k < n else float("nan"),
    }


def calibration_table(p: np.ndarray, y: np.ndarray, *, bins: int = 10, min_lines: int = 100) -> pd.DataFrame:
    """Predicted against observed denial rates in bins of equal line counts.

    At most ``bins`` bins, fewer so that each holds about ``min_lines`` lines or more (one bin
    when there are fewer lines than that). Each row: ``bin`` (the predicted range), ``lines``,
    ``denied``, ``mean_predicted``, ``observed_rate`` and its 95% Jeffreys interval
    (``observed_lo_95``, ``observed_hi_95``).

    Examples
    --------
    >>> t = calibration_table(np.r_[np.full(100, 0.1), np.full(100, 0.5)], np.r_[np.arange(100) < 10, np.arange(100) < 50])
    >>> t[["lines", "denied"]].values.tolist(), t["observed_rate"].tolist()
    ([[100, 10], [100, 50]], [0.1, 0.5])
    """
    from scipy import stats

    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=bool)
    cols = ["bin", "lines", "denied", "mean_predicted", "observed_rate", "observed_lo_95", "observed_hi_95"]
    if not len(p):
        return pd.DataFrame(columns=cols)
    k = int(max(1, min(bins, len(p) // max(min_lines, 1))))
    order = np.argsort(p, kind="stable")
    # equal counts by rank; ties on a bin edge stay together (the bin is cut at a new value)
    cut = np.floor(np.arange(len(p)) * k / len(p)).astype(np.int64)
    ps = p[order]
    new_value = np.r_[True, ps[1:] != ps[:-1]]
    start = np.maximum.accumulate(np.where(new_value, np.arange(len(p)), 0))
    cut = cut[start]
    bin_of = np.empty(len(p), dtype=np.int64)
    bin_of[order] = np.unique(cut, return_inverse=True)[1]
    rows = []
    for b in range(int(bin_of.max()) + 1):
        sel = bin_of == b
        m, d = int(sel.sum()), int(y[sel].sum())
        lo, hi = float(p[sel].min()), float(p[sel].max())
        rows.append({
            "bin": f"{lo:.1%}-{hi:.1%}",
            "lines": m,
            "denied": d,
            "mean_predicted": float(p[sel].mean()),
            "observed_rate": d / m,
            "observed_lo_95": float(stats.beta.ppf(0.025, d + 0.5, m - d + 0.5)) if d > 0 else 0.0,
            "observed_hi_95": float(stats.beta.ppf(0.975, d + 0.5, m - d + 0.5)) if d < m else 1.0,
        })
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------------------
# Shrunk payer x code rates: the thin-history risk and the second baseline
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _RateTable:
    """Payer x code denial rates shrunk toward the payer's rate, itself shrunk toward its prior."""

    pairs: pd.DataFrame  # payer_id, cpt, lines, denied, rate
    payers_: pd.DataFrame  # payer_id, lines, denied, rate
    priors: dict[str, float]

    def predict(self, payer_ids, cpts) -> np.ndarray:
        """The rate of each line's payer and code (else its payer's, else the payer's prior),
        looked up once per distinct pair."""
        pc, pv = factorize(pd.Series(payer_ids) if not isinstance(payer_ids, pd.Series) else payer_ids)
        cc, cv = factorize(pd.Series(cpts) if not isinstance(cpts, pd.Series) else cpts)
        if not len(pc):
            return np.zeros(0)
        pair, inv = np.unique(pc * len(cv) + cc, return_inverse=True)
        key = pd.MultiIndex.from_arrays([pd.Index(pv[pair // len(cv)], dtype=object),
                                         pd.Index(cv[pair % len(cv)], dtype=object)])
        pair_rate = self.pairs.set_index(["payer_id", "cpt"])["rate"].reindex(key).to_numpy(dtype=float)
        payer_rate = self.payers_.set_index("payer_id")["rate"].reindex(key.get_level_values(0)).to_numpy(float)
        prior = pd.Series(self.priors, dtype=float).reindex(key.get_level_values(0)).to_numpy(dtype=float)
        prior = np.where(np.isfinite(prior), prior, _DEFAULT_PRIOR)
        rate = np.where(np.isfinite(pair_rate), pair_rate, np.where(np.isfinite(payer_rate), payer_rate, prior))
        return rate[inv.ravel()]


def _rate_table(frame: pd.DataFrame, mask: np.ndarray, payers: Mapping,
                counts: pd.DataFrame | None = None, codes: TextCodes | None = None) -> _RateTable:
    """Shrunk rates from the lines of ``mask`` (a beta prior fitted across payers, then one per
    payer across its codes, centred on the payer's shrunk rate); ``counts``: their
    :func:`_pair_counts`, when already counted; ``codes``: the frame's :class:`TextCodes`."""
    priors = {str(p): float(pol.denial_prior) for p, pol in payers.items()
              if getattr(pol, "denial_prior", None) is not None}
    if counts is None:
        counts = _pair_counts(frame, mask, frame["denied"].to_numpy(dtype=bool), codes)
    if counts.empty:
        empty = pd.DataFrame(columns=["payer_id", "cpt", "lines", "denied", "rate"])
        return _RateTable(empty, empty.drop(columns="cpt"), priors)
    by_payer = counts.groupby("payer_id", sort=True)[["lines", "denied"]].sum()
    prior = pd.Series(priors, dtype=float).reindex(by_payer.index).fillna(_DEFAULT_PRIOR).to_numpy()
    n, k = by_payer["lines"].to_numpy(float), by_payer["denied"].to_numpy(float)
    by_payer["rate"] = (_PRIOR_STRENGTH * prior + k) / (_PRIOR_STRENGTH + n)
    by_payer = by_payer.reset_index()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = shrunk_rates(counts, ("payer_id", "cpt"), prior_by=["payer_id"])
    # centre each payer's prior on its shrunk rate, keeping the fitted strength
    strength = (pairs["prior_a"] + pairs["prior_b"]).to_numpy(dtype=float)
    centre = pairs["payer_id"].map(by_payer.set_index("payer_id")["rate"]).to_numpy(dtype=float)
    k2, n2 = pairs["denied"].to_numpy(float), pairs["lines"].to_numpy(float)
    pairs = pairs[["payer_id", "cpt", "lines", "denied"]].assign(rate=(strength * centre + k2) / (strength + n2))
    return _RateTable(pairs.reset_index(drop=True), by_payer[["payer_id", "lines", "denied", "rate"]], priors)


# ---------------------------------------------------------------------------------------
# Words
# ---------------------------------------------------------------------------------------


def _phrase(feature: str, level: str, names: Mapping[str, str]) -> str:
    if feature == "payer":
        return names.get(level, level)
    if feature == "code":
        return f"code {level}"
    if feature == "ptype":
        return f"provider type {level.upper()}"
    if feature == "dx":
        return f"{level.replace('_', ' / ')} diagnosis"
    return level


def plain_term(term: Term, names: Mapping[str, str]) -> str:
    """A model term in plain words: ``("payer", "ppo_gold", "code", "97124", ...)`` -> "Gold PPO, code 97124".

    Examples
    --------
    >>> plain_term(("payer", "ppo_gold", "rx", "no prescription on file"), {"ppo_gold": "Gold PPO"})
    'Gold PPO, no prescription on file'
    >>> plain_term(("other code in the visit", "97140", "", ""), {})
    '97140 billed in the same visit'
    """
    fa, la, fb, lb = term
    if fa == "modifier":
        return f"billed with {la}"
    if fa == "other code in the visit":
        return f"{la} billed in the same visit"
    first = _phrase(fa, la, names)
    return f"{first}, {_phrase(fb, lb, names)}" if fb else first


# ---------------------------------------------------------------------------------------
# Validation by time
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TimeValidation:
    """The risk fitted on the earlier months and scored on the last ones.

    ``scores`` has one row per predictor (the learned risk, the practice's overall rate, the
    shrunk payer x code rates): ``predictor``, ``lines``, ``denied``, ``brier``, ``log_loss``,
    ``auc``. ``calibration`` is :func:`calibration_table` of the learned risk on the held-out
    lines.
    """

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    train_lines: int
    train_denials: int
    scores: pd.DataFrame
    calibration: pd.DataFrame


def _months(dates: np.ndarray) -> np.ndarray:
    """The month of each date as an integer (months since 1970-01), a missing date after every month."""
    month = dates.astype("datetime64[M]").view(np.int64)
    return np.where(np.isnat(dates), np.iinfo(np.int64).max, month)


def _test_months(frame: pd.DataFrame, mask: np.ndarray, dates: np.ndarray | None = None) -> np.ndarray | None:
    """The last months of service held out (as :func:`_months`): a quarter of the months with
    answered lines, 1 to 3. ``dates``: the frame's service dates, when already read."""
    dates = pd.to_datetime(frame["service_date"]).to_numpy() if dates is None else dates
    months = np.unique(_months(dates[mask]))
    if len(months) < 4:
        return None
    return months[-max(1, min(3, len(months) // 4)):]


def _validate(frame, y, learn, payers, min_denials, min_lines,
              features: LineFeatures | None = None, codes: TextCodes | None = None,
              dates: np.ndarray | None = None) -> tuple[TimeValidation | None, str]:
    """Fit on the earlier months, score the last ones; (result, why not). ``features``,
    ``codes`` and ``dates``: the frame's model features, text codes and service dates, when
    already read (the same for both fits)."""
    dates = pd.to_datetime(frame["service_date"]).to_numpy() if dates is None else dates
    test_months = _test_months(frame, learn, dates)
    if test_months is None:
        return None, "fewer than 4 months of answered lines: too short to hold the last months out"
    held = np.isin(_months(dates), test_months)
    train, test = learn & ~held, learn & held
    if int(y[train].sum()) < min_denials or int(train.sum()) < min_lines or not test.any():
        return None, (f"the earlier months have {int(y[train].sum()):,} denials in {int(train.sum()):,} lines; "
                      f"validation needs {min_denials} denials and {min_lines} lines before the last months")
    model = DenialRiskModel(payers=payers, holdout=0, min_denials=min_denials, min_lines=min_lines)
    labels = pd.array(np.where(train, y, False), dtype="boolean")
    labels[~train] = pd.NA
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(frame, labels, features=features)
        if features is None:
            p_model = model.predict_proba(frame).to_numpy()[test]
        else:  # each line's chance rests on its own features: score the held-out lines only
            p_model = model.predict_features(features.take(np.flatnonzero(test)))
    rates = _rate_table(frame, train, payers, codes=codes)
    p_rates = rates.predict(frame["payer_id"][test], frame["cpt"][test])
    p_overall = np.full(int(test.sum()), float(y[train].mean()))
    yt = y[test]
    scores = pd.DataFrame([
        {"predictor": "learned risk (model)", **score_predictions(p_model, yt)},
        {"predictor": "practice's overall rate", **score_predictions(p_overall, yt)},
        {"predictor": "shrunk payer x code rates", **score_predictions(p_rates, yt)},
    ])
    return TimeValidation(
        train_start=pd.Timestamp(dates[train].min()), train_end=pd.Timestamp(dates[train].max()),
        test_start=pd.Timestamp(dates[test].min()), test_end=pd.Timestamp(dates[test].max()),
        train_lines=int(train.sum()), train_denials=int(y[train].sum()),
        scores=scores, calibration=calibration_table(p_model, yt),
    ), ""


# ---------------------------------------------------------------------------------------
# The learned risk
# ---------------------------------------------------------------------------------------


def _not_kept() -> None:
    return None


class FittedFeatures:
    """The model features of the frame a risk was fitted on, found again for the same frame.

    The frame is held by a weak reference and the features are let go with it: a risk kept
    after its lines are gone (the explorer's) holds no features of a million lines. A copy of
    the risk (pickle) does not carry them either; features are built again when asked.
    """

    __slots__ = ("_frame", "_rows", "features")

    def __init__(self, frame: pd.DataFrame, features: LineFeatures) -> None:
        self._frame = weakref.ref(frame, self._let_go)
        self._rows = len(frame)
        self.features: LineFeatures | None = features

    def _let_go(self, _ref) -> None:
        self.features = None

    def of(self, frame: pd.DataFrame) -> LineFeatures | None:
        """The features when ``frame`` is the very frame fitted on (same object, as many
        lines), else None."""
        return self.features if self._frame() is frame and len(frame) == self._rows else None

    def __reduce__(self):
        return (_not_kept, ())


@dataclasses.dataclass(frozen=True)
class LearnedRisk:
    """The practice's denial risk as learned from its history (see :func:`learned_risk`).

    Attributes
    ----------
    mode
        ``"model"`` (the denial-risk model), ``"rates"`` (too few denials to fit it: shrunk
        payer x code rates) or ``"prior"`` (no answered line: each payer's ``denial_prior``).
    model
        The fitted :class:`~analytics.denials.DenialRiskModel` (mode ``"model"``), else None.
    counts
        Lines learned from and denials per payer and code (``payer_id, cpt, lines, denied``).
    lines, denials, rule_denied
        Lines learned from, their denials, and answered lines the payer rules deny (left out).
    start, end
        First and last date of service learned from.
    validation, validation_note
        :class:`TimeValidation`, or None and why not.
    payers
        The payer policies.
    """

    mode: str
    model: DenialRiskModel | None
    rates: _RateTable
    counts: pd.DataFrame
    lines: int
    denials: int
    rule_denied: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    validation: TimeValidation | None
    validation_note: str
    payers: Mapping[str, Any]
    min_denials: int
    fitted: FittedFeatures | None = dataclasses.field(default=None, repr=False, compare=False)

    # -- the denial_model protocol of analytics.pipeline.evaluate --------------------------
    def predict_proba(self, lines: pd.DataFrame) -> pd.Series:
        """Each line's chance of denial (a Series ``p_deny`` on the input index); self-pay 0.

        Pass whole visits: the model reads the other codes of a line's visit.
        """
        if self.mode == "model":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = self.model.predict_proba(lines).to_numpy(dtype=float)
        else:
            p = self.rates.predict(lines["payer_id"], lines["cpt"])
        p = np.where(self._cash(lines), 0.0, p)
        return pd.Series(np.clip(p, 0.0, 1.0), index=lines.index, name="p_deny")

    def _cash(self, lines: pd.DataFrame) -> np.ndarray:
        return _is_in(lines["payer_id"], _cash_payers(self.payers))

    def payer_name(self, payer_id: str) -> str:
        pol = self.payers.get(payer_id)
        return (getattr(pol, "name", "") or payer_id) if pol is not None else payer_id

    def basis_words(self, lines: pd.DataFrame) -> np.ndarray:
        """What each line's chance of denial rests on, in words.

        "learned from 276 Gold PPO 97124 lines, 26 denied" (the lines of that payer and code the
        payer rules pass), "... no 97139 history" when only the payer is known, "shrunk rate of
        ..." in a thin history, "payer prior, no history", "self-pay: nothing to deny".
        """
        pc, pv = factorize(lines["payer_id"])
        cc, cv = factorize(lines["cpt"])
        pair, codes = np.unique(pc * max(len(cv), 1) + cc, return_inverse=True)
        codes = codes.ravel()
        u = pd.DataFrame({"payer_id": pv[pair // max(len(cv), 1)] if len(pair) else np.zeros(0, dtype=object),
                          "cpt": cv[pair % max(len(cv), 1)] if len(pair) else np.zeros(0, dtype=object)})
        by_pair, by_payer = self._history_counts
        cash = set(p for p, pol in self.payers.items() if getattr(pol, "kind", "") == "cash")
        how = "learned from" if self.mode == "model" else "shrunk rate of"
        thin = "" if self.mode == "model" else " (too few denials to fit the model)"
        words = []
        for pid, cpt in u.itertuples(index=False, name=None):
            n, k = by_pair.get((pid, cpt), (0, 0))
            npay, kpay = by_payer.get(pid, (0, 0))
            name = self.payer_name(pid)
            if pid in cash:
                words.append("self-pay: nothing to deny")
            elif n > 0:
                words.append(f"{how} {n:,} {name} {cpt} lines, {k:,} denied{thin}")
            elif npay > 0:
                words.append(f"{how} {npay:,} {name} lines, {kpay:,} denied; no {cpt} history{thin}")
            else:
                words.append("payer prior, no history")
        return np.asarray(words, dtype=object)[codes] if len(codes) else np.zeros(0, dtype=object)

    @functools.cached_property
    def _history_counts(self) -> tuple[dict[tuple[Any, Any], tuple[int, int]], dict[Any, tuple[int, int]]]:
        """Lines and denials of the history by (payer, code) and by payer, looked up by
        :meth:`basis_words` on every redraw of the explorer (built once)."""
        c = self.counts
        lines = c["lines"].fillna(0).to_numpy(dtype=np.int64)
        denied = c["denied"].fillna(0).to_numpy(dtype=np.int64)
        by_pair = {}
        for pid, cpt, n, k in zip(c["payer_id"], c["cpt"], lines, denied, strict=True):
            by_pair.setdefault((pid, cpt), (int(n), int(k)))
        per_payer = c.groupby("payer_id")[["lines", "denied"]].sum()
        by_payer = {pid: (int(n), int(k)) for pid, n, k in zip(
            per_payer.index, per_payer["lines"].fillna(0).to_numpy(dtype=np.int64),
            per_payer["denied"].fillna(0).to_numpy(dtype=np.int64), strict=True)}
        return by_pair, by_payer

    # -- reading the risk -------------------------------------------------------------------
    @property
    def names(self) -> dict[str, str]:
        return {str(p): (getattr(pol, "name", "") or str(p)) for p, pol in self.payers.items()}

    def drivers(self, top: int = 8, min_lines: int = 20) -> pd.DataFrame:
        """What raises the chance of denial, in plain words, with the lines each applies to.

        Mode ``"model"``: the model's terms with the largest positive effect (a term that
        applied to the same training lines as another is shown once), each with ``odds``
        (how many times the odds of denial it multiplies, other factors equal), ``lines`` and
        ``denied`` (training lines it applies to, and their denials). Otherwise the payer x
        code pairs with the highest shrunk rates. Columns: ``driver``, ``odds``, ``lines``,
        ``denied``, ``observed_rate``.
        """
        cols = ["driver", "odds", "lines", "denied", "observed_rate"]
        if self.mode == "model":
            m = self.model
            rep = m.group_ == np.arange(len(m.group_))
            frame = pd.DataFrame({
                "driver": [plain_term(t, self.names) for t in m.columns_],
                "odds": np.exp(m.coef_), "log_odds": m.coef_,
                "lines": m.train_lines_.astype(np.int64), "denied": m.train_denials_.astype(np.int64),
            })
            frame = frame[rep & (m.coef_ > 0) & (frame["lines"].to_numpy() >= min_lines)]
            frame = frame.sort_values(["log_odds", "lines"], ascending=[False, False], kind="stable")
        else:
            frame = self.rates.pairs.assign(
                driver=lambda t: t["payer_id"].map(self.names).fillna(t["payer_id"]) + ", code " + t["cpt"],
                odds=np.nan)
            frame = frame[frame["lines"] > 0].sort_values(["rate", "lines"], ascending=[False, False],
                                                          kind="stable")
        frame = frame.head(top)
        out = frame.assign(observed_rate=frame["denied"] / frame["lines"].where(frame["lines"] > 0))
        return out[cols].reset_index(drop=True)

    def line_features(self, lines: pd.DataFrame) -> LineFeatures | None:
        """The model's features of ``lines`` (mode ``"model"``; else None): those built for
        the fit when ``lines`` is the frame the risk was fitted on (the same object, unchanged
        since), else built now."""
        if self.mode != "model":
            return None
        kept = self.fitted.of(lines) if self.fitted is not None else None
        return kept if kept is not None else self.model.line_features(lines)

    def reasons(self, lines: pd.DataFrame, top: int = 2) -> pd.DataFrame:
        """The ``top`` factors that raise each line's chance of denial, in plain words.

        Pass whole visits. Columns ``reason_1`` ... (empty where fewer factors apply); outside
        mode ``"model"`` the one reason is the basis of the rate.
        """
        return self.scored(lines, top=top).drop(columns="p_deny")

    def scored(self, lines: pd.DataFrame, top: int = 2, *, features: LineFeatures | None = None) -> pd.DataFrame:
        """Each line's chance of denial (``p_deny``, as :meth:`predict_proba`) and its ``top``
        reasons (as :meth:`reasons`), from one reading of the lines' features.

        ``features``: the lines' model features (:meth:`line_features`, or a selection of
        them), when already built; a line's features are read from its whole visit, so
        features built on whole visits may score a few of their lines.
        """
        out = pd.DataFrame(index=lines.index)
        if self.mode == "model":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ex = self.model.explain(lines, top=top, features=features)
            p = ex["p_deny"].to_numpy(dtype=float)
            out["p_deny"] = np.clip(np.where(self._cash(lines), 0.0, p), 0.0, 1.0)
            words = dict(zip(term_words(self.model.columns_),
                             (plain_term(t, self.names) for t in self.model.columns_), strict=True))
            for i in range(1, top + 1):
                # each distinct factor put in words once
                codes, raw = pd.factorize(ex[f"factor_{i}"].to_numpy(dtype=object), use_na_sentinel=False)
                plain = np.array([words.get(w, w) if w else "" for w in raw], dtype=object)
                out[f"reason_{i}"] = plain[codes] if len(raw) else np.zeros(0, dtype=object)
            return out
        out["p_deny"] = self.predict_proba(lines).to_numpy()
        out["reason_1"] = self.basis_words(lines)
        for i in range(2, top + 1):
            out[f"reason_{i}"] = ""
        return out

    def card(self) -> pd.DataFrame:
        """The model card as a two-column table (``figure``, ``value``)."""
        how = {"model": "denial-risk model (regularised logistic regression)",
               "rates": "shrunk payer x code rates: too few denials to fit the model",
               "prior": "payer priors (denial_prior in payers.yaml): no answered line yet"}[self.mode]
        window = (f"{self.start.date()} to {self.end.date()}" if self.start is not None else "no answered line")
        rows = [("Risk learned with", how), ("Services learned from", window),
                ("Lines learned from", f"{self.lines:,}"), ("  of which denied", f"{self.denials:,}"),
                ("Lines the payer rules deny (certain, left out)", f"{self.rule_denied:,}")]
        v = self.validation
        if v is not None:
            rows += [("Validated by time: fitted on", f"{v.train_start.date()} to {v.train_end.date()} "
                                                     f"({v.train_lines:,} lines, {v.train_denials:,} denied)"),
                     ("  scored on", f"{v.test_start.date()} to {v.test_end.date()} "
                                     f"({int(v.scores['lines'].iloc[0]):,} lines, "
                                     f"{int(v.scores['denied'].iloc[0]):,} denied)")]
        else:
            rows.append(("Validated by time", f"not done: {self.validation_note}"))
        return pd.DataFrame(rows, columns=["figure", "value"])


def fit_learned_risk(
    frame: pd.DataFrame,
    payers: Mapping[str, Any],
    *,
    min_denials: int = 20,
    min_lines: int = 200,
    validate: bool = True,
) -> LearnedRisk:
    """Learn the denial risk from a frame of :func:`history_frame`'s shape.

    Parameters
    ----------
    frame
        Every line in scope (whole visits), with ``adjudicated``, ``denied``, ``self_pay``
        and ``disposition`` beside the features.
    payers
        Payer policies (visit and filing limits, payer pairs, priors, self-pay payers).
    min_denials, min_lines
        Fewer denials or lines (the payer rules' denials left out) than these: no model, the
        shrunk payer x code rates instead.
    validate
        Fit on the earlier months and score the last ones (:class:`TimeValidation`).
    """
    need = {"payer_id", "cpt", "service_date", "adjudicated", "denied", "self_pay", "disposition"}
    missing = sorted(need - set(frame.columns))
    if missing:
        raise InputError(f"The lines lack column(s) {missing}; build them with history_frame(history) from "
                         "load_history(DIR).")
    codes = TextCodes(frame)  # payer, code and disposition read once for every count below
    learn = _learnable(frame, payers, codes)
    y = frame["denied"].to_numpy(dtype=bool) & learn
    rule = (frame["adjudicated"].to_numpy(dtype=bool) & ~frame["self_pay"].to_numpy(dtype=bool)
            & _is_in(codes("disposition"), _RULE_DISPOSITIONS))
    n, k = int(learn.sum()), int(y.sum())
    counts = _pair_counts(frame, learn, y, codes)
    all_dates = pd.to_datetime(frame["service_date"]).to_numpy()
    dates = all_dates[learn]
    rates = _rate_table(frame, learn, payers, counts)
    mode, model, features = ("prior" if n == 0 else "rates"), None, None
    if k >= min_denials and n >= min_lines and k < n:
        model = DenialRiskModel(payers=payers, holdout=0, min_denials=min_denials, min_lines=min_lines)
        # the features of the lines are the same for the fit on every month and the fit on the
        # earlier months (only the outcomes learned from differ): built once
        features = model.line_features(frame)
        labels = pd.array(y, dtype="boolean")
        labels[~learn] = pd.NA
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(frame, labels, features=features)
        mode = "model" if model.mode_ == "model" else "rates"
        model = model if mode == "model" else None
    validation, note = (None, "not asked for")
    if validate and mode == "model":
        validation, note = _validate(frame, frame["denied"].to_numpy(dtype=bool), learn, payers, min_denials,
                                     min_lines, features, codes, all_dates)
    elif validate:
        note = "too few denials to fit the model" if n else "no answered line"
    return LearnedRisk(
        mode=mode, model=model, rates=rates, counts=counts, lines=n, denials=k, rule_denied=int(rule.sum()),
        start=pd.Timestamp(dates.min()) if n else None, end=pd.Timestamp(dates.max()) if n else None,
        validation=validation, validation_note=note, payers=payers, min_denials=min_denials,
        fitted=FittedFeatures(frame, features) if mode == "model" else None,
    )


def learned_risk(history: Any, *, min_denials: int = 20, min_lines: int = 200, validate: bool = True) -> LearnedRisk:
    """The denial risk learned from a practice's history (every line up to its as-of date).

    The history's payer and provider selection applies; its period does not (the whole
    history up to ``as_of`` is learned from). See :func:`fit_learned_risk`.

    Examples
    --------
    >>> from analytics.kpis import load_history
    >>> risk = learned_risk(load_history("data/sample"))  # doctest: +SKIP
    >>> risk.mode  # doctest: +SKIP
    'model'
    """
    return fit_learned_risk(history_frame(history), history.payers, min_denials=min_denials,
                            min_lines=min_lines, validate=validate)
