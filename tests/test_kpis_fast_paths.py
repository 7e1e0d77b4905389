"""The revenue, denials and contracts figures on their fast paths equal the plain definitions.

At a million lines the figures are computed once per scope (the page's sentences, actions and
tables share them), on narrow columns, on integer claim numbers, and the Medicare benchmark is
priced once per distinct line. Each test below recomputes a figure the plain way (the whole
frame, a groupby per claim, every line priced) and asks for the same numbers to the last bit,
on the sample practice and on generated histories with the awkward cases: claims answered by two
remittances, partial denials, remittances after the as-of date, codes without a contract rate,
self-pay and unbilled claims, modifiers and multi-unit lines.
"""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pandas as pd
import pytest
from test_kpis import AS_OF, PAYERS, charge_lines, era, remittance

from analytics import comparisons, kpis, narratives
from analytics.edits import DISPOSITIONS
from analytics.exceptions import ReferenceDataError
from analytics.history import CENT
from analytics.payers import PayerPolicy
from analytics.periods import Period
from analytics.pricing import price_lines, to_cents
from analytics.refdata import load_reference
from analytics.remittance import Remittance, read_835

CODES = ("97140", "97124", "97110", "97112")  # 97110 and 97112 have no rate in the test payers
MODIFIERS = ("", "GP", "59", "CQ")


def generated_history(seed: int) -> kpis.History:
    """Sixty claims drawn with a fixed seed: paid, denied, partly denied, reworked (a second 835),
    answered after the as-of date, unbilled and self-pay; charges of $100 a line."""
    rng = np.random.default_rng(seed)
    rows, answers = [], {}
    for c in range(1, 61):
        payer = str(rng.choice(["acme", "beta", "self"], p=[0.45, 0.4, 0.15]))
        day = pd.Timestamp("2026-01-02") + pd.Timedelta(days=int(rng.integers(0, 85)))
        billed = payer != "self" and rng.random() > 0.1
        sent = (day + pd.Timedelta(days=int(rng.integers(1, 5)))).date().isoformat() if billed else ""
        provider = str(rng.choice(["LMT1", "LMT2", "PT1"]))
        claim = []
        for j in range(int(rng.integers(1, 4))):
            line_id, cpt = f"G{c}-{j + 1}", str(rng.choice(CODES))
            rows.append((line_id, f"G{c}", f"Q{c % 17}", day.date().isoformat(), payer, cpt, sent,
                         str(rng.choice(MODIFIERS)), float(rng.integers(8, 61)), provider))
            claim.append((line_id, cpt))
        if not billed or rng.random() < 0.15:
            continue
        for k in range(2 if rng.random() < 0.2 else 1):  # a reworked claim has two remittances
            paid_on = (day + pd.Timedelta(days=int(rng.integers(10, 40)) + 30 * k)).date().isoformat()
            lines = []
            for line_id, cpt in claim:
                outcome = rng.choice(["paid", "paid", "short", "denied", "partial"])
                share = 12.0 if payer == "beta" else 0.0
                if outcome == "denied":
                    paid, adjustments = 0.0, [("CO", "97", 100.0)]
                elif outcome == "partial":
                    paid, adjustments = 30.0, [("CO", "97", 20.0), ("CO", "45", 50.0)]
                else:
                    paid = {"paid": 48.0 if payer == "beta" else 50.0, "short": 33.3}[outcome]
                    adjustments = [("CO", "45", round(100.0 - paid - share, 2))] + (
                        [("PR", "2", share)] if share else [])
                lines.append((line_id, cpt, day.date().isoformat(), paid, adjustments))
            answers.setdefault((payer, paid_on), []).append((f"G{c}", lines))
    frame = pd.DataFrame(rows, columns=["line_id", "claim_id", "patient_id", "service_date", "payer_id", "cpt",
                                        "submission_date", "modifiers", "minutes", "provider_id"])
    frame = frame.assign(service_date=pd.to_datetime(frame["service_date"]),
                         submission_date=pd.to_datetime(frame["submission_date"].replace("", None)),
                         provider_type="lmt", charge=100.0)
    remits = Remittance.concat([read_835(era(payer, paid_on, claims), source_name=f"{payer}_{paid_on}.835")
                                for (payer, paid_on), claims in sorted(answers.items())])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kpis.build_history(frame, remits, payers=PAYERS, as_of=AS_OF, salt="test")


def scopes(history: kpis.History) -> list[kpis.History]:
    """The history, a payer alone, one month, and an as-of date that leaves answers unread."""
    out = [history, history.select(payers=[history.lines["payer_id"].iloc[0]])]
    start = history.lines["service_date"].min()
    out.append(history.select(start=start, end=start + pd.Timedelta(days=30)))
    out.append(history.select(as_of=start + pd.Timedelta(days=45)))
    return out


@pytest.fixture(scope="module", params=[1, 2, 3])
def generated(request) -> kpis.History:
    return generated_history(request.param)


@pytest.fixture(scope="module")
def hand() -> kpis.History:
    return kpis.build_history(charge_lines(), remittance(), payers=PAYERS, as_of=AS_OF, salt="test")


def test_generated_histories_hold_the_awkward_cases(generated):
    lines = generated.lines
    assert (lines["remits_on_claim"] > 1).any() and lines["partially_denied"].any() and lines["denied"].any()
    assert lines["self_pay"].any() and (~lines["submitted"] & ~lines["self_pay"]).any()
    assert lines["contract_expected"].isna().any()  # codes without a rate


# --- the plain definitions -------------------------------------------------------------------


def plain_insurance_adjudicated(history: kpis.History) -> pd.DataFrame:
    ins = kpis.insurance(history.period)
    return ins[ins["adjudicated"].to_numpy()]


def plain_summary(history: kpis.History) -> dict[str, float]:
    """The headline figures from whole frames, one boolean selection after another."""
    p = history.period
    ins = kpis.insurance(p)
    adj = ins[ins["adjudicated"].to_numpy()]
    lines = history.lines
    ar = lines[lines["submitted"].to_numpy() & ~lines["adjudicated"].to_numpy() & ~lines["self_pay"].to_numpy()]
    age = (history.as_of - ar["service_date"]).dt.days.to_numpy()

    def total(frame: pd.DataFrame, col: str) -> float:
        return float(frame[col].to_numpy(dtype=float).sum())

    def ratio(a: float, b: float) -> float:
        return float(a) / float(b) if b else float("nan")

    got = total(adj, "paid") + total(adj, "patient_responsibility")
    return {
        "visits": p["visit"].nunique(), "lines": len(p), "gross_charges": total(p, "charge"),
        "self_pay_charges": total(p[p["self_pay"].to_numpy()], "charge"), "insurance_charges": total(ins, "charge"),
        "unbilled_charges": total(ins[~ins["submitted"].to_numpy()], "charge"),
        "adjudicated_charges": total(adj, "charge"), "allowed": total(adj, "allowed"),
        "payer_paid": total(adj, "paid"), "patient_responsibility": total(adj, "patient_responsibility"),
        "contractual_adjustments": total(adj, "contractual"), "denied_amount": total(adj, "denied_amount"),
        "denied_lines": int(adj["denied"].sum()), "adjudicated_lines": len(adj),
        "denial_rate": ratio(adj["denied"].sum(), len(adj)),
        "net_collection_rate": ratio(got, total(adj, "charge") - total(adj, "contractual")),
        "paid_per_visit": ratio(got, adj["visit"].nunique()),
        "ar_balance": total(ar, "charge"), "ar_over_90": float(ar["charge"].to_numpy(dtype=float)[age > 90].sum()),
    }


def plain_first_pass(history: kpis.History) -> tuple[int, int]:
    """Claims answered, and of them resolved on the first pass, by a groupby claim by claim."""
    adj = plain_insurance_adjudicated(history)
    claim = adj.groupby("claim_id", sort=False).agg(denied=("denied", "any"), partial=("partially_denied", "any"),
                                                    remits=("remits_on_claim", "max"))
    return len(claim), int((~claim["denied"] & ~claim["partial"] & (claim["remits"] <= 1)).sum())


def plain_percent_of_medicare(history: kpis.History, locality: str | None, year: int | None) -> pd.DataFrame:
    """Every paid line priced by the Medicare benchmark, one by one, then summed per payer and code."""
    ref = load_reference()
    p = kpis.paid_lines(history)
    p = p[p["cpt"].astype(str).isin(ref.codes["cpt"]).to_numpy()]
    paid_units = p["paid_units"].to_numpy(dtype=float)
    units = np.where(np.isfinite(paid_units) & (paid_units > 0), paid_units,
                     p["units"].to_numpy(dtype=float)).astype(np.int64)
    bench = {"_medicare_benchmark": PayerPolicy.from_dict("_medicare_benchmark", {
        "kind": "medicare", "fee": {"basis": "medicare", "locality": locality or history.locality,
                                    "year": int(year) if year else None}, "mppr": False}, where="Medicare benchmark")}
    frame = pd.DataFrame({
        "patient_id": p["patient_id"].to_numpy(), "service_date": p["service_date"].to_numpy(),
        "provider_id": p["provider_id"].to_numpy(), "payer_id": "_medicare_benchmark", "cpt": p["cpt"].to_numpy(),
        "modifiers": p["modifiers"].to_numpy(), "units": units,
        "disposition": pd.Categorical(np.full(len(p), "payable"), categories=DISPOSITIONS)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        medicare = price_lines(frame, bench, ref)["allowed"].to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(medicare) & (medicare > 0)
    work = pd.DataFrame({"payer_id": p["payer_id"].to_numpy()[ok], "cpt": p["cpt"].to_numpy()[ok],
                         "paid": (p["paid"] + p["patient_responsibility"]).to_numpy()[ok], "medicare": medicare[ok]})
    out = work.groupby(["payer_id", "cpt"], sort=True)[["paid", "medicare"]].sum().reset_index()
    return out.assign(paid=to_cents(out["paid"].to_numpy()), medicare=to_cents(out["medicare"].to_numpy()))


def plain_denial_reasons(history: kpis.History, by: str) -> pd.DataFrame:
    """Each denied line's reason in words, line by line, summed by reason."""
    ins = kpis.insurance(history.period)
    d = ins[(ins["adjudicated"] & (ins["denied_amount"] > CENT)).to_numpy()]
    words = narratives_words = d["denial_category"].map(kpis._category_label)
    if by == "carc":
        labels = load_reference().carc.set_index("carc")["label"]
        reason = d["denial_carc"].astype(str)
        words = "CARC " + reason + ": " + reason.map(labels).fillna("code outside the catalog")
    work = pd.DataFrame({"reason": words.to_numpy(), "category": narratives_words.to_numpy(),
                         "denied_amount": d["denied_amount"].to_numpy(), "n": 1})
    keys = ["reason", "category"] if by == "carc" else ["reason"]
    return work.groupby(keys, sort=True).agg(lines=("n", "sum"), denied_amount=("denied_amount", "sum")).reset_index()


def plain_trend(history: kpis.History, months: int = 13) -> pd.DataFrame:
    """Charges, visits and denied lines per month of the trend window, the window selected anew."""
    window = Period.of(history.start, history.end).months_back(months)
    first = history.base["service_date"].min().to_period("M").to_timestamp()
    start, end = max(pd.Timestamp(window.start), first), min(pd.Timestamp(window.end), history.as_of)
    p = history.select(start=start.date().isoformat(), end=end.date().isoformat()).period
    adj = plain_insurance_adjudicated(history.select(start=start.date().isoformat(), end=end.date().isoformat()))
    base = p.assign(month=p["service_date"].dt.to_period("M").dt.to_timestamp()).groupby("month").agg(
        visits=("visit", "nunique"), charges=("charge", "sum"))
    denied = adj.assign(month=adj["service_date"].dt.to_period("M").dt.to_timestamp()).groupby("month")[
        "denied"].mean()
    return base.join(denied.rename("denial_rate"))


# --- fast paths against the plain definitions ----------------------------------------------


def _same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) if isinstance(a, float) and np.isnan(a) else a == b


def test_summary_equals_the_whole_frame_definitions(generated, sample_history):
    for history in [*scopes(generated), *scopes(sample_history)]:
        fast, plain = kpis.summary(history), plain_summary(history)
        for key, value in plain.items():
            assert _same(float(fast[key]), float(to_cents(value)) if key in (
                "gross_charges", "self_pay_charges", "insurance_charges", "unbilled_charges", "adjudicated_charges",
                "allowed", "payer_paid", "patient_responsibility", "contractual_adjustments", "denied_amount",
                "ar_balance", "ar_over_90") else float(value)), key


def test_first_pass_counts_equal_a_groupby_claim_by_claim(generated, sample_history):
    for history in [*scopes(generated), *scopes(sample_history)]:
        fpr = kpis.first_pass_resolution_rate(history)
        claims, passed = plain_first_pass(history)
        assert (int(fpr["claims"].iloc[0]), int(fpr["first_pass"].iloc[0])) == (claims, passed)
        assert _same(float(fpr["rate"].iloc[0]), passed / claims if claims else float("nan"))
        by_payer = kpis.first_pass_resolution_rate(history, by="payer")  # the groupby path
        assert int(by_payer["claims"].sum()) == claims and int(by_payer["first_pass"].sum()) == passed


def test_claim_codes_are_the_sorted_codes_of_each_claims_underpaid_lines(generated, sample_history):
    for history in [*scopes(generated), *scopes(sample_history),
                    kpis.at_locality(sample_history, "01182-18")]:  # many claims paid below contract
        u = kpis.underpayments(history)
        plain = u.lines.groupby("claim_id")["cpt"].agg(lambda s: ", ".join(sorted(set(s))))
        assert u.claims.set_index("claim_id")["codes"].sort_index().to_dict() == plain.sort_index().to_dict()
        assert len(u.claims) == u.lines["claim_id"].nunique()


def test_claim_codes_beyond_one_set_of_bits_are_joined_claim_by_claim():
    # 70 distinct codes do not fit a 64-bit set per claim: the claim-by-claim path gives the same words
    rng = np.random.default_rng(7)
    codes = [f"9{i:04d}" for i in rng.permutation(70)]
    lines = pd.DataFrame({"claim_id": [f"C{i % 9}" for i in range(140)], "payer_claim_id": "X", "payer_id": "acme",
                          "payer": "Acme Health", "cpt": [codes[i % 70] for i in range(140)],
                          "month": pd.Timestamp("2026-01-01"), "expected": 1.0, "paid": 0.5, "shortfall": 0.5})
    for frame in (lines, lines.iloc[:40].assign(cpt=lambda f: f["cpt"].str[:3])):  # and a few codes, repeated
        claims = kpis._claims_to_appeal(frame)
        plain = frame.groupby("claim_id", sort=False)["cpt"].agg(lambda s: ", ".join(sorted(set(s))))
        assert claims["codes"].tolist() == plain.tolist()
        assert claims["claim_id"].tolist() == plain.index.tolist()


@pytest.mark.parametrize(("locality", "year"), [(None, None), ("01182-18", None), (None, 2025)])
def test_percent_of_medicare_equals_every_line_priced(generated, sample_history, locality, year):
    for history in [*scopes(generated), sample_history]:
        fast = kpis.percent_of_medicare(history, locality=locality, year=year)
        plain = plain_percent_of_medicare(history, locality, year)
        pd.testing.assert_frame_equal(fast[["payer_id", "cpt", "paid", "medicare"]].reset_index(drop=True), plain,
                                      check_exact=True, check_dtype=False)


def test_a_year_without_rates_names_every_line_as_pricing_line_by_line_does(hand):
    with pytest.raises(ReferenceDataError) as plain:
        plain_percent_of_medicare(hand, None, 1999)
    with pytest.raises(ReferenceDataError) as fast:
        kpis.percent_of_medicare(hand, year=1999)
    assert str(fast.value) == str(plain.value)
    assert "3 line(s)" in str(fast.value)  # L1, L3, L4: the paid lines, not one per distinct line


@pytest.mark.parametrize("by", ["category", "carc"])
def test_denial_reasons_equal_the_words_of_each_line(generated, sample_history, by):
    for history in [*scopes(generated), sample_history]:
        fast = kpis.denial_reasons(history, by=by)
        plain = plain_denial_reasons(history, by)
        keys = ["reason", "category"] if by == "carc" else ["reason"]
        got = fast.sort_values(keys).reset_index(drop=True)
        assert got[keys].to_numpy().tolist() == plain[keys].to_numpy().tolist()
        assert got["lines"].tolist() == plain["lines"].tolist()
        assert got["denied_amount"].tolist() == to_cents(plain["denied_amount"].to_numpy()).tolist()


def test_the_trend_window_equals_the_window_selected_anew(generated, sample_history):
    for history in [*scopes(generated), sample_history.select(start="2025-10-01", end="2025-12-31")]:
        trend = comparisons.monthly_trend(history).set_index("month")
        plain = plain_trend(history)
        assert trend["visits"].tolist() == plain["visits"].tolist()
        assert trend["charges"].tolist() == to_cents(plain["charges"].to_numpy()).tolist()
        assert all(_same(a, b) for a, b in zip(trend["denial_rate"].tolist(),
                                               plain["denial_rate"].fillna(np.nan).tolist(), strict=True))


def test_page_actions_count_what_the_tables_count(generated):
    # the recommendations count lines and claims from masks over the period, the tables from frames
    for history in scopes(generated):
        ins = kpis.insurance(history.period)
        unbilled = ins[~ins["submitted"].to_numpy()]
        actions = narratives.revenue_recommendations(history, top=50)
        row = actions[actions["source"] == "headline: Not yet billed"]
        if len(unbilled):
            assert (int(row["lines"].iloc[0]), int(row["count"].iloc[0])) == (len(unbilled),
                                                                              unbilled["claim_id"].nunique())
        acts = narratives.denial_actions(history)
        adj = plain_insurance_adjudicated(history)
        per = adj.groupby(["payer_id", "cpt"]).size()
        assert all(int(r.lines) == int(per[(r.payer_id, r.cpt)]) for r in acts.itertuples())


# --- once per scope ---------------------------------------------------------------------------


def test_a_scopes_figures_are_worked_out_once(hand, monkeypatch):
    calls = {"summary": 0, "underpayments": 0}
    summary_, underpayments_ = kpis._summary, kpis._underpayments

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(kpis, "_summary", counted("summary", summary_))
    monkeypatch.setattr(kpis, "_underpayments", counted("underpayments", underpayments_))
    scope = hand.select()  # a new scope: nothing worked out for it yet
    narratives.revenue_narrative(scope)
    kpis.headline(scope), kpis.headline_figures(scope), narratives.revenue_recommendations(scope)
    comparisons.headline_comparison(scope)  # the periods before have no services: no figures there
    assert calls["summary"] == 1
    narratives.contracts_narrative(scope), narratives.contracts_recommendations(scope), kpis.underpayments(scope)
    assert calls["underpayments"] == 1
    kpis.underpayments(scope, tolerance=1.0)  # another tolerance is another figure
    kpis.summary(scope.select(start="2026-01-01"))  # another scope too
    assert (calls["summary"], calls["underpayments"]) == (2, 2)


def test_a_figure_changed_by_its_caller_stays_as_computed(hand):
    scope = hand.select()
    s = kpis.summary(scope)
    s["visits"] = -1
    u = kpis.underpayments(scope)
    u.claims.loc[0, "codes"] = "changed"
    u.summary["recoverable"] = 0.0
    pay = kpis.by_payer(scope)
    pay.loc[0, "charges"] = -5.0
    fresh = hand.select()
    assert kpis.summary(scope).equals(kpis.summary(fresh))
    pd.testing.assert_frame_equal(kpis.underpayments(scope).claims, kpis.underpayments(fresh).claims)
    pd.testing.assert_frame_equal(kpis.underpayments(scope).summary, kpis.underpayments(fresh).summary)
    pd.testing.assert_frame_equal(kpis.by_payer(scope), kpis.by_payer(fresh))


def test_the_kept_figures_go_with_their_history(hand):
    scope = hand.select()
    kpis.summary(scope)
    ident = id(scope)
    assert ident in kpis._PER_SCOPE
    del scope
    gc.collect()
    assert ident not in kpis._PER_SCOPE
