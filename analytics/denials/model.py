"""The denial-risk model: the probability that a payer denies a service line, learned from the
practice's own remittances, with the factors behind each prediction named in words.

A regularised logistic regression on features a biller can see before submission
(:mod:`analytics.denials.features`); :class:`RiskReport` says how well its probabilities match
the outcomes (Brier score, AUC, calibration).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analytics.denials.bands import factorize
from analytics.denials.design import (
    alias_groups,
    design_matrix,
    encoded_patterns,
    learn_levels,
    learn_pairs,
    term_columns,
    term_words,
)
from analytics.denials.features import (
    INTERACTIONS,
    LineFeatures,
    build_features,
    filing_codes,
    policy_array,
)
from analytics.denials.outcomes import DENIAL_OUTCOMES
from analytics.exceptions import InputError, ModelError, SmallSampleWarning
from analytics.pipeline import evaluate

__all__ = ["DenialRiskModel", "RiskReport"]

_RULE_DISPOSITIONS = ("denied", "not_billed")


@dataclasses.dataclass(frozen=True)
class RiskReport:
    """How well predicted denial probabilities match outcomes (held-out or given lines).

    ``brier`` is the mean squared error of the probabilities; ``brier_base`` the same for a
    constant prediction at the observed rate (lower is better; ``brier_skill`` = 1 -
    brier / brier_base). ``auc`` ranks denied above paid lines (0.5 = chance). The
    ``calibration`` table compares mean predicted and observed rates by predicted band, with
    a 95% Jeffreys interval for the observed rate.
    """

    lines: int
    denials: int
    base_rate: float
    brier: float
    brier_base: float
    brier_skill: float
    auc: float
    log_loss: float
    calibration: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        d = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "calibration"
        }
        d["calibration"] = self.calibration.to_dict("records")
        return d


def _report(p: np.ndarray, y: np.ndarray) -> RiskReport:
    from scipy import stats
    from sklearn.metrics import roc_auc_score

    p = np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9)
    y = np.asarray(y, dtype=bool)
    n = len(y)
    k = int(y.sum())
    base = k / n if n else float("nan")
    brier = float(np.mean((p - y) ** 2)) if n else float("nan")
    brier_base = float(np.mean((base - y) ** 2)) if n else float("nan")
    auc = float(roc_auc_score(y, p)) if 0 < k < n else float("nan")
    ll = float(-np.mean(np.where(y, np.log(p), np.log(1 - p)))) if n else float("nan")
    edges = np.array([0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
    band = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for i in range(len(edges) - 1):
        sel = band == i
        m = int(sel.sum())
        if not m:
            continue
        d = int(y[sel].sum())
        rows.append(
            {
                "predicted_band": f"{edges[i]:.0%}-{edges[i + 1]:.0%}",
                "lines": m,
                "mean_predicted": float(p[sel].mean()),
                "observed_rate": d / m,
                "observed_lo_95": float(stats.beta.ppf(0.025, d + 0.5, m - d + 0.5)),
                "observed_hi_95": float(stats.beta.ppf(0.975, d + 0.5, m - d + 0.5)),
            }
        )
    skill = (
        1 - brier / brier_base
        if brier_base and np.isfinite(brier_base) and brier_base > 0
        else float("nan")
    )
    return RiskReport(
        lines=n,
        denials=k,
        base_rate=base,
        brier=brier,
        brier_base=brier_base,
        brier_skill=skill,
        auc=auc,
        log_loss=ll,
        calibration=pd.DataFrame(rows),
    )


class DenialRiskModel:
    """Probability that a payer denies a service line, learned from the practice's remittances.

    A logistic regression with an L2 penalty (each coefficient has prior variance ``C`` on
    the log-odds scale) on one-hot features a biller can see before submission:

    * payer, code, provider type, diagnosis group (from the primary ICD-10-CM code),
      prescription on file, billed units (band);
    * bundling state: the line is the column-2 code of an NCCI pair, or of a payer's own
      pair, whose column-1 code is in the same visit, with no modifier, 59 or an X modifier;
    * the other codes billed in the visit, and modifier flags (GP, 59, X, KX, CQ/CO);
    * visit number in the calendar year with the payer (visits before the data included),
      against the payer's visit limit when ``payers`` gives one;
    * days from service to submission, against the payer's timely-filing limit when known
      (unsubmitted lines are scored as if submitted after ``assume_lag_days``);

    and their pairs in :data:`INTERACTIONS` (payer x every feature; code x provider type,
    diagnosis and prescription). Visit-level features are computed from the lines given, so
    pass whole visits (all of a patient's lines) to :meth:`fit` and :meth:`predict_proba`.

    Lines the rules engine denies for certain (``disposition`` denied or not billed, when the
    lines carry it, else computed with :func:`analytics.pipeline.evaluate` when ``payers`` is
    given) are left out of the fit: the model learns the denials the rules cannot foresee,
    and :func:`~analytics.pipeline.evaluate` sets those lines to 1 anyway.

    Thin history never breaks it: with fewer than ``min_denials`` denials or ``min_lines``
    lines (or none at all), it warns (:class:`~analytics.exceptions.SmallSampleWarning`)
    and predicts each payer's rate shrunk toward its prior (``denial_prior`` of the payer
    policy, else ``prior_rate``) with ``prior_strength`` pseudo-lines. Lines of a payer or a
    code the history never saw get the same prior-only prediction; self-pay lines get 0.

    Parameters
    ----------
    payers
        Payer policies (``load_payers``): visit and filing limits, payer-specific NCCI pairs,
        priors and self-pay payers.
    C
        Prior variance of each coefficient (inverse L2 strength, as in scikit-learn).
    holdout
        Share of patients held out to report Brier score, AUC and calibration
        (``validation_``); the model is then refitted on every line. 0 to skip.

    Examples
    --------
    >>> from analytics.datasets import generate_practice
    >>> p = generate_practice(3000, seed=3)
    >>> lines = p.adjudicated[p.adjudicated["adjudicated"]]  # lines with a remittance
    >>> model = DenialRiskModel(payers=p.payers).fit(lines, lines["denied"])
    >>> model.mode_, float(model.predict_proba(lines).between(0, 1).mean())
    ('model', 1.0)
    >>> model.explain(lines.head(3), top=2).columns.tolist()
    ['p_deny', 'basis', 'factor_1', 'log_odds_1', 'factor_2', 'log_odds_2']
    """

    def __init__(
        self,
        *,
        payers: Mapping | None = None,
        C: float = 1.0,
        interactions: tuple[tuple[str, str], ...] = INTERACTIONS,
        holdout: float = 0.2,
        random_state: int = 0,
        min_denials: int = 20,
        min_lines: int = 200,
        prior_rate: float = 0.05,
        prior_strength: float = 20.0,
        assume_lag_days: int = 7,
        exclude_rule_denials: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-6,
        reference=None,
    ):
        self.payers = payers
        self.C = C
        self.interactions = interactions
        self.holdout = holdout
        self.random_state = random_state
        self.min_denials = min_denials
        self.min_lines = min_lines
        self.prior_rate = prior_rate
        self.prior_strength = prior_strength
        self.assume_lag_days = assume_lag_days
        self.exclude_rule_denials = exclude_rule_denials
        self.max_iter = max_iter
        self.tol = tol
        self.reference = reference

    # -- features -----------------------------------------------------------------------
    def line_features(self, lines: pd.DataFrame) -> LineFeatures:
        """Each line's features (:func:`~analytics.denials.features.build_features`) under this
        model's payers, reference and assumed filing delay: build them once and pass them to
        :meth:`fit` and :meth:`predict_proba` to fit or score the same lines several times."""
        return self._features(lines)

    def with_submission_dates(self, features: LineFeatures, lines: pd.DataFrame,
                              submission: pd.Series) -> LineFeatures:
        """The features of ``lines`` with their days to submission counted to ``submission``
        (dates on the lines' index) instead of the lines' own submission dates: to score a
        line not sent yet as if sent on a given day without building its other features again."""
        payer_c, payer_v = features.cats["payer"]
        codes, labels = filing_codes(lines, payer_c, payer_v, payers=self.payers,
                                     assume_lag_days=self.assume_lag_days, submission=submission)
        return features.with_feature("filing", codes, np.array(labels, dtype=object))

    def _features(self, lines: pd.DataFrame, features: LineFeatures | None = None) -> LineFeatures:
        """Each line's features (:func:`~analytics.denials.features.build_features`), or
        ``features`` when they were built already (checked to be of as many lines)."""
        if features is not None:
            if len(features.cats["payer"][0]) != len(lines):
                raise InputError(
                    f"The features given are of {len(features.cats['payer'][0]):,} lines, the lines "
                    f"{len(lines):,}; build them with line_features(lines) from the same lines."
                )
            return features
        return build_features(
            lines,
            payers=self.payers,
            reference=self.reference,
            assume_lag_days=self.assume_lag_days,
        )

    def _columns(self, patterns: np.ndarray, fit: bool) -> tuple[np.ndarray, int]:
        """Column index of each active one-hot term per pattern (-1 where a term does not
        apply); learns the interaction columns when ``fit``."""
        if fit:
            self.pairs_ = learn_pairs(patterns, self.levels_, self.interactions)
        cols, width, names = term_columns(
            patterns, self.levels_, self.with_codes_, self.interactions, self.pairs_
        )
        if fit:
            self.columns_ = names
        return cols, width

    # -- fitting -------------------------------------------------------------------------
    def _target(self, lines: pd.DataFrame, y) -> tuple[np.ndarray, np.ndarray]:
        """(denied, known): missing outcomes (NA) are lines without a remittance yet."""

        if y is None:
            if "denied" in lines.columns:
                y = lines["denied"]
            elif "outcome" in lines.columns:
                out = lines["outcome"]
                return out.astype(str).isin(DENIAL_OUTCOMES).to_numpy(), out.notna().to_numpy()
            else:
                raise InputError(
                    "DenialRiskModel.fit needs the outcome of each line: pass y=..., or lines with a "
                    "boolean 'denied' column or an 'outcome' column (see label_lines)."
                )
        elif isinstance(y, str):
            y = lines[y]
        if isinstance(y, (pd.Series, pd.api.extensions.ExtensionArray, np.ndarray)) and len(y) == len(lines) \
                and pd.api.types.is_bool_dtype(y.dtype):
            # booleans, with NA where the outcome is not known yet: no object array of a million lines
            arr = y.array if isinstance(y, pd.Series) else y
            if isinstance(arr, np.ndarray):
                return arr.astype(bool), np.ones(len(arr), dtype=bool)
            if isinstance(arr, pd.arrays.NumpyExtensionArray):
                values = arr.to_numpy()
                return values.astype(bool), np.ones(len(values), dtype=bool)
            return arr.to_numpy(dtype=bool, na_value=False), ~np.asarray(arr.isna(), dtype=bool)
        series = pd.Series(
            y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y, dtype=object), dtype=object
        )
        if len(series) != len(lines):
            raise InputError(
                f"y has {len(series)} values for {len(lines)} lines; give one outcome per line."
            )
        known = series.notna().to_numpy()
        return series.where(known, False).astype(bool).to_numpy(), known

    def _rule_denied(self, lines: pd.DataFrame) -> np.ndarray:
        if not self.exclude_rule_denials:
            return np.zeros(len(lines), dtype=bool)
        if "disposition" in lines.columns:
            return lines["disposition"].astype(str).isin(_RULE_DISPOSITIONS).to_numpy()
        if self.payers is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = evaluate(lines, self.payers, self.reference)
            return out["disposition"].astype(str).isin(_RULE_DISPOSITIONS).to_numpy()
        return np.zeros(len(lines), dtype=bool)

    def _self_pay(self, payer_ids: np.ndarray) -> np.ndarray:
        if not self.payers:
            return np.zeros(len(payer_ids), dtype=bool)
        cash = [p for p, pol in self.payers.items() if getattr(pol, "kind", "") == "cash"]
        if payer_ids.dtype == object and len(payer_ids) > 1000:
            codes, uniq = factorize(pd.Series(payer_ids, dtype=object))
            return np.isin(uniq, cash)[codes]
        return np.isin(payer_ids.astype(str), cash)

    def _self_pay_lines(self, feats: LineFeatures) -> np.ndarray:
        """Whether each line's payer is a self-pay payer, tested once per payer."""
        codes, labels = feats.cats["payer"]
        return self._self_pay(labels.astype(object))[codes] if len(labels) else np.zeros(len(codes), dtype=bool)

    def fit(self, lines: pd.DataFrame, y=None, *, features: LineFeatures | None = None) -> DenialRiskModel:
        """Learn denial risk from lines with known outcomes.

        Parameters
        ----------
        lines
            Service lines (columns as in the practice's export; ``units`` and
            ``disposition`` when evaluated) of whole visits.
        y
            Denied or not, per line: an array, a column name, or ``None`` to use the
            ``denied`` (or ``outcome``) column. Missing values mark lines with no outcome yet:
            they count for the visit-level features of the others but are not learned from.
        features
            The lines' features from :meth:`line_features`, when already built.

        Returns
        -------
        DenialRiskModel
            ``self``, with ``coef_``, ``intercept_``, ``summary``, ``validation_``
            (held-out :class:`RiskReport`, when ``holdout`` > 0), ``mode_`` (``"model"`` or
            ``"prior"``) and the training counts.
        """
        y, known = self._target(lines, y)
        rule = self._rule_denied(lines)
        feats = self._features(lines, features)
        keep = known & ~rule & ~self._self_pay_lines(feats)
        self.n_rule_denied_ = int((rule & known).sum())
        self.n_lines_ = int(keep.sum())
        self.n_denials_ = int(y[keep].sum())
        self.validation_ = None
        payer_codes, payer_labels = feats.cats["payer"]
        payer = (payer_codes[keep], payer_labels.astype(object))  # each line's payer as a code into the labels
        self._fit_priors(payer, y[keep])
        if not self._enough(payer, y[keep]):
            self.mode_ = "prior"
            self.coef_ = np.zeros(0)
            self.intercept_ = 0.0
            self.columns_ = []
            return self
        self.mode_ = "model"
        train_all = feats.take(keep)
        yk = y[keep]
        if self.holdout and 0 < self.holdout < 1:
            self._validate_on_held_out_patients(lines, keep, train_all, yk)
        self._fit_logistic(train_all, yk)
        return self

    def _validate_on_held_out_patients(self, lines, keep, train_all: LineFeatures, yk) -> None:
        """Fit on all but a random ``holdout`` share of the patients and report the accuracy on
        theirs (``validation_``); skipped when either side would have no lines or the
        training side no denials."""
        pid = (
            lines["patient_id"]
            if "patient_id" in lines.columns
            else pd.Series(np.arange(len(lines)))
        )
        codes, uniq = factorize(pid)
        draw = np.random.default_rng(self.random_state).random(len(uniq))
        test = (draw[codes] < self.holdout)[keep]
        if 0 < test.sum() < len(test) and 0 < yk[~test].sum():
            self._fit_logistic(train_all.take(~test), yk[~test])
            self.validation_ = _report(self._predict_features(train_all.take(test)), yk[test])

    def _fit_priors(self, payer: tuple[np.ndarray, np.ndarray], y: np.ndarray) -> None:
        """Lines and denials per payer (sorted by payer id) of the lines learned from; ``payer``:
        each line's code into the payer labels, and the labels."""
        codes, labels = payer
        by_code = np.bincount(codes, minlength=len(labels))
        denied_by_code = np.bincount(codes, weights=y.astype(float), minlength=len(labels))
        present = np.flatnonzero(by_code)
        # two codes may read the same: one payer, as counting the ids would
        uniq, of = np.unique(np.asarray(labels[present], dtype=str), return_inverse=True)
        lines = np.bincount(of.ravel(), weights=by_code[present], minlength=len(uniq)).astype(np.int64)
        denied = np.bincount(of.ravel(), weights=denied_by_code[present], minlength=len(uniq)).astype(np.int64)
        self.payer_counts_ = pd.DataFrame({"lines": lines, "denied": denied},
                                          index=pd.Index(uniq.astype(object), name="payer"))
        self.base_rate_ = float(y.mean()) if len(y) else float(self.prior_rate)

    def _payer_prior(self, payer_ids: np.ndarray) -> np.ndarray:
        """Each payer's rate shrunk toward its prior (policy denial_prior, else prior_rate)."""
        codes, uniq = factorize(pd.Series(payer_ids, dtype=object))
        prior = policy_array(uniq, self.payers, "denial_prior")
        prior = np.where(np.isfinite(prior), prior, self.prior_rate)
        counts = self.payer_counts_.reindex(uniq)
        n = counts["lines"].fillna(0).to_numpy(dtype=float)
        k = counts["denied"].fillna(0).to_numpy(dtype=float)
        m = self.prior_strength
        return ((m * prior + k) / (m + n))[codes]

    def _enough(self, payer: tuple[np.ndarray, np.ndarray], y: np.ndarray) -> bool:
        """Whether the lines learned from (``payer``: their codes into the payer labels, and the
        labels) hold enough denials and lines to fit the model; warns when not, or when they
        have one payer."""

        n, k = len(y), int(y.sum())
        if n == 0 or k == 0 or k == n or k < self.min_denials or n < self.min_lines:
            what = (
                "no lines with outcomes"
                if n == 0
                else f"no denials in {n:,} lines"
                if k == 0
                else f"every one of {n:,} lines denied"
                if k == n
                else f"only {k:,} denials in {n:,} lines (the model needs {self.min_denials} denials and "
                f"{self.min_lines} lines)"
            )
            warnings.warn(
                f"DenialRiskModel: {what} after leaving out lines the payer rules deny; the model cannot learn "
                f"what drives denials. Predictions are each payer's observed rate shrunk toward its prior "
                f"(denial_prior of the payer policy, else {self.prior_rate:.0%}) with {self.prior_strength:g} "
                "pseudo-lines. Fit again when more remittances have come in.",
                SmallSampleWarning,
                stacklevel=3,
            )
            return False
        codes, labels = payer
        if len(set(labels[np.flatnonzero(np.bincount(codes, minlength=len(labels)))])) == 1:
            warnings.warn(
                f"DenialRiskModel: the history has one payer ({labels[codes[0]]}), so differences between payers "
                "cannot be learned; lines of other payers get prior-only predictions.",
                SmallSampleWarning,
                stacklevel=3,
            )
        return True

    def _fit_logistic(self, feats: LineFeatures, y: np.ndarray) -> None:
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        self.levels_, self.with_codes_ = learn_levels(feats)
        patterns, inv, _ = encoded_patterns(feats, self.levels_, self.with_codes_)
        cols, width = self._columns(patterns, fit=True)
        n_pat = np.bincount(inv, minlength=len(patterns)).astype(float)
        k_pat = np.bincount(inv, weights=y.astype(float), minlength=len(patterns))
        X = design_matrix(cols, width)
        # one weighted row per distinct pattern and outcome: the same likelihood as one row per
        # line, in a fraction of the time
        pos, neg = k_pat > 0, (n_pat - k_pat) > 0
        Xs = sparse.vstack([X[pos], X[neg]]).tocsr()
        ys = np.r_[np.ones(pos.sum()), np.zeros(neg.sum())]
        ws = np.r_[k_pat[pos], (n_pat - k_pat)[neg]]
        clf = LogisticRegression(C=self.C, solver="lbfgs", max_iter=self.max_iter, tol=self.tol)
        # L-BFGS makes many tiny BLAS calls; with BLAS threads each call pays thread start-up and
        # the fit runs an order of magnitude slower on a small machine.
        with threadpool_limits(1):
            clf.fit(Xs, ys, sample_weight=ws)
        self.coef_ = clf.coef_.ravel()
        self.intercept_ = float(clf.intercept_[0])
        self.width_ = width
        self.train_lines_ = np.asarray(X.T @ n_pat).ravel()
        self.train_denials_ = np.asarray(X.T @ k_pat).ravel()
        self.group_ = alias_groups(X, n_pat, self.train_lines_)

    # -- prediction ----------------------------------------------------------------------
    def _check_fitted(self) -> None:

        if not hasattr(self, "mode_"):
            raise ModelError(
                "This DenialRiskModel is not fitted yet; call fit(lines, y) with lines whose "
                "outcomes are known (see label_lines)."
            )

    def _scored(self, feats: LineFeatures):
        """(probability per line, unseen payer/code mask, patterns, line -> pattern)."""
        patterns, inv, unseen = encoded_patterns(feats, self.levels_, self.with_codes_)
        cols, width = self._columns(patterns, fit=False)
        eta = design_matrix(cols, width) @ self.coef_ + self.intercept_
        p = (1.0 / (1.0 + np.exp(-eta)))[inv]
        return p, unseen, cols, inv

    def predict_features(self, features: LineFeatures) -> np.ndarray:
        """Each line's probability of denial from its features (:meth:`line_features`), as
        :meth:`predict_proba` gives it, without the warning on payers or codes not seen."""
        self._check_fitted()
        return self._predict_features(features)

    def _predict_features(self, feats: LineFeatures, scored=None) -> np.ndarray:
        """Each line's probability; ``scored``: :meth:`_scored` of the same features, when
        already computed."""
        codes, labels = feats.cats["payer"]
        labels = labels.astype(object)
        prior = self._payer_prior(labels)[codes] if len(labels) else np.zeros(0)
        if self.mode_ == "prior":
            p = prior
        else:
            p, unseen, _, _ = scored if scored is not None else self._scored(feats)
            p = np.where(unseen, prior, p)
        p = np.where(self._self_pay_lines(feats), 0.0, p)
        return np.clip(np.nan_to_num(p, nan=self.prior_rate), 0.0, 1.0)

    def predict_proba(self, lines: pd.DataFrame, *, features: LineFeatures | None = None) -> pd.Series:
        """Probability that each line is denied (a Series ``p_deny`` on the input index).

        Lines of self-pay payers get 0; lines whose payer or code the history never saw,
        and every line when the model is in prior mode, get the payer's shrunk prior rate
        (with a :class:`~analytics.exceptions.SmallSampleWarning` naming them). ``features``:
        the lines' features from :meth:`line_features`, when already built.
        """

        self._check_fitted()
        feats = self._features(lines, features)
        p = self._predict_features(feats)
        if self.mode_ == "model":
            cash = set(self._cash_ids())
            new_payers = sorted(
                set(feats.cats["payer"][1].astype(str)) - set(self.levels_["payer"]) - cash
            )
            new_codes = sorted(set(feats.cats["code"][1].astype(str)) - set(self.levels_["code"]))
            if new_payers or new_codes:
                what = "; ".join(
                    x
                    for x in (
                        f"payer(s) {', '.join(new_payers)}" if new_payers else "",
                        f"code(s) {', '.join(new_codes)}" if new_codes else "",
                    )
                    if x
                )
                warnings.warn(
                    f"DenialRiskModel: the history has no lines of {what}; those lines get prior-only "
                    "predictions (the payer's rate shrunk toward its policy denial_prior).",
                    SmallSampleWarning,
                    stacklevel=2,
                )
        return pd.Series(p, index=lines.index, name="p_deny")

    def _cash_ids(self) -> list[str]:
        return [p for p, pol in (self.payers or {}).items() if getattr(pol, "kind", "") == "cash"]

    # -- reading the model ----------------------------------------------------------------
    @property
    def summary(self) -> pd.DataFrame:
        """Coefficients in words: log-odds, odds ratio, training lines and denials per term.

        ``same_lines_as`` names the term a coefficient is aliased with (both applied to the
        same training lines, so only their sum is identified; :meth:`explain` reports it).
        In prior mode, one row per payer with its shrunk rate as log-odds.
        """
        self._check_fitted()
        if self.mode_ == "prior":
            pc_ = self.payer_counts_.reset_index()
            rate = self._payer_prior(pc_["payer"].to_numpy(dtype=object))
            return pd.DataFrame(
                {
                    "term": "payer prior: " + pc_["payer"].astype(str),
                    "feature": "payer prior",
                    "log_odds": np.log(rate / (1 - rate)),
                    "odds_ratio": rate / (1 - rate),
                    "lines": pc_["lines"].to_numpy(),
                    "denied": pc_["denied"].to_numpy(),
                    "same_lines_as": "",
                }
            )
        words = np.array(term_words(self.columns_), dtype=object)
        alias = np.where(self.group_ != np.arange(len(self.group_)), words[self.group_], "")
        frame = pd.DataFrame(
            {
                "term": ["baseline (intercept)", *words],
                "feature": [
                    "intercept",
                    *[c[0] if not c[2] else f"{c[0]} x {c[2]}" for c in self.columns_],
                ],
                "log_odds": np.r_[self.intercept_, self.coef_],
                "lines": np.r_[self.n_lines_, self.train_lines_].astype(np.int64),
                "denied": np.r_[self.n_denials_, self.train_denials_].astype(np.int64),
                "same_lines_as": np.concatenate(
                    [np.array([""], dtype=object), alias.astype(object)]
                ),
            }
        )
        frame["odds_ratio"] = np.exp(frame["log_odds"])
        head = frame.iloc[:1]
        rest = frame.iloc[1:].sort_values("log_odds", ascending=False, kind="stable")
        return pd.concat([head, rest], ignore_index=True)[
            ["term", "feature", "log_odds", "odds_ratio", "lines", "denied", "same_lines_as"]
        ]

    def explain(self, lines: pd.DataFrame, top: int = 3, *, features: LineFeatures | None = None) -> pd.DataFrame:
        """The ``top`` factors that raise each line's denial risk, in words.

        Pass whole visits: the bundling and other-codes features of a line come from the
        other lines of its visit in ``lines``. Aliased terms (see :attr:`summary`) are summed
        under the most specific name. ``features``: the lines' features from
        :meth:`line_features`, when already built.

        Returns
        -------
        DataFrame
            On the input index: ``p_deny``, ``basis`` (model, prior-only and why, self-pay),
            and ``factor_1`` ... with ``log_odds_1`` ... (the terms with the largest positive
            log-odds among those that apply to the line).
        """
        self._check_fitted()
        feats = self._features(lines, features)
        n = len(lines)
        scored = self._scored(feats) if self.mode_ == "model" else None
        out = pd.DataFrame({"p_deny": self._predict_features(feats, scored)}, index=lines.index)
        factors = np.full((n, top), "", dtype=object)
        effects = np.full((n, top), np.nan)
        basis = np.full(n, "model", dtype=object)
        if self.mode_ == "model":
            _, unseen, cols, inv = scored
            factors, effects = self._top_factors(cols, inv, top)
            basis = np.where(unseen, "prior only: payer or code not in the history", basis)
            factors = np.where(unseen[:, None], "", factors)
            effects = np.where(unseen[:, None], np.nan, effects)
        else:
            basis[:] = "prior only: too little history to fit the model"
        basis = np.where(self._self_pay_lines(feats), "self-pay: nothing to deny", basis)
        out["basis"] = basis
        for i in range(top):
            out[f"factor_{i + 1}"] = factors[:, i]
            out[f"log_odds_{i + 1}"] = effects[:, i]
        return out

    def _top_factors(self, cols: np.ndarray, inv: np.ndarray, top: int):
        """The ``top`` terms with the largest positive log-odds of each line (aliased terms
        summed under the most specific name), and their log-odds."""
        words = np.array(term_words(self.columns_), dtype=object)
        r, c = np.nonzero(cols >= 0)
        col = cols[r, c]
        terms = pd.DataFrame({"row": r, "group": self.group_[col], "effect": self.coef_[col]})
        terms = terms.groupby(["row", "group"], sort=False)["effect"].sum().reset_index()
        terms = terms[terms["effect"] > 0].sort_values(
            ["row", "effect"], ascending=[True, False], kind="stable"
        )
        terms["rank"] = terms.groupby("row", sort=False).cumcount()
        terms = terms[terms["rank"] < top]
        f = np.full((len(cols), top), "", dtype=object)
        e = np.full((len(cols), top), np.nan)
        f[terms["row"].to_numpy(), terms["rank"].to_numpy()] = words[terms["group"].to_numpy()]
        e[terms["row"].to_numpy(), terms["rank"].to_numpy()] = terms["effect"].to_numpy()
        return f[inv], e[inv]

    def evaluate(self, lines: pd.DataFrame, y=None) -> RiskReport:
        """Brier score, AUC and calibration of the predictions on ``lines`` with known outcomes.

        Lines the payer rules deny (as in :meth:`fit`) and self-pay lines are left out.
        """
        self._check_fitted()
        yy, known = self._target(lines, y)
        feats = self._features(lines)
        keep = known & ~self._rule_denied(lines) & ~self._self_pay_lines(feats)
        return _report(self._predict_features(feats)[keep], yy[keep])
