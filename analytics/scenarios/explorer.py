"""The coding-scenario explorer: ipywidgets sliders that re-run :func:`compare` live."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

from analytics.exceptions import InputError, UnpricedCodeWarning
from analytics.payers import PayerPolicy
from analytics.refdata import Reference, load_reference
from analytics.scenarios.alternatives import Alternative
from analytics.scenarios.catalog import code_catalog, pairs_present
from analytics.scenarios.chart import plot_totals
from analytics.scenarios.compare import compare
from analytics.scenarios.session import Service, Session

__all__ = ["explorer"]


def explorer(
    session: Session,
    payers: Mapping[str, PayerPolicy],
    *,
    reference: Reference | None = None,
    denial_model: Any | None = None,
    max_minutes: int = 60,
):
    """Sliders for minutes per code, a payer picker, the modifier toggle and the hot pack.

    Returns an ``ipywidgets.VBox``; each change re-runs :func:`compare` and redraws the
    totals table and the chart. Without a live front end the widgets simply show their
    initial state.
    """
    import ipywidgets as widgets
    from IPython.display import display

    ref = reference or load_reference()
    catalog = code_catalog(ref, session.codes)
    timed = [s for s in session.services if catalog[s.code][0]]
    sliders = {
        s.code: widgets.IntSlider(
            value=int(s.minutes or 0),
            min=0,
            max=max(max_minutes, int(s.minutes or 0)),
            step=1,
            description=f"{s.code} min",
            continuous_update=False,
        )
        for s in timed
    }
    pairs = pairs_present(session, ref, payers)
    column2 = sorted({c2 for _, c2 in pairs})
    label = column2[0] if column2 else "column-2 code"
    modifier = widgets.ToggleButtons(
        options=[("all", "all"), ("none", ""), ("59", "59"), ("XS", "XS"), ("XU", "XU")],
        value="all",
        description=f"on {label}",
        disabled=not column2,
        tooltips=[
            "every alternative",
            "no modifier",
            "distinct service",
            "separate structure",
            "non-overlapping service",
        ],
    )
    picker = widgets.SelectMultiple(
        options=list(payers), value=tuple(payers), description="payers", rows=min(len(payers), 6)
    )
    pack = widgets.Checkbox(value="97010" in session.codes, description="hot/cold pack (97010)")
    regions = widgets.Checkbox(
        value=session.distinct_regions, description="separate body regions documented"
    )
    blocks = widgets.Checkbox(
        value=session.separate_time_blocks, description="separate time blocks documented"
    )
    controls = {f"m_{c}": w for c, w in sliders.items()}
    controls.update(
        payer_ids=picker, modifier=modifier, hot_pack=pack, distinct=regions, separate=blocks
    )

    def redraw(payer_ids, modifier, hot_pack, distinct, separate, **minutes):
        mins = {k[2:]: v for k, v in minutes.items()}
        untimed = [s for s in session.services if s.code not in mins and s.code != "97010"]
        services = [
            Service(
                c,
                m,
                regions=(f"region {i}",) if distinct else (),
                time_block=i if separate else None,
            )
            for i, (c, m) in enumerate(((c, m) for c, m in mins.items() if m > 0), start=1)
        ]
        services += untimed + ([Service("97010")] if hot_pack else [])
        if not services or not payer_ids:
            print("Choose at least one service (minutes above 0) and one payer.")
            return
        try:
            s = dataclasses.replace(session, services=tuple(services))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnpricedCodeWarning)
                result = compare(
                    s, payers, payer_ids=list(payer_ids), reference=ref, denial_model=denial_model
                )
        except InputError as exc:
            print(exc)
            return
        totals = result.totals
        if modifier != "all" and column2:
            keep = [
                a.name for a in result.alternatives if _shows_modifier(a, label, modifier, pairs)
            ]
            totals = totals[totals["alternative"].isin(keep)]
            totals = totals.assign(alternative=totals["alternative"].cat.remove_unused_categories())
        display(
            totals[
                [
                    "alternative",
                    "payer_id",
                    "supported",
                    "expected_total",
                    "expected_payer",
                    "expected_patient",
                    "denied_lines",
                    "missing",
                ]
            ].reset_index(drop=True)
        )
        display(_png(plot_totals(totals, list(payer_ids), title=None, show_values=None)))

    out = widgets.interactive_output(redraw, controls)
    return widgets.VBox(
        [
            widgets.HBox(list(sliders.values())),
            widgets.HBox([picker, widgets.VBox([modifier, pack, regions, blocks])]),
            out,
        ]
    )


def _png(fig):
    """The figure as a PNG image, whatever matplotlib backend the kernel runs."""
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Image(data=buf.getvalue(), format="png")


def _shows_modifier(
    alt: Alternative, code: str, modifier: str, pairs: Mapping[tuple[str, str], int]
) -> bool:
    """True when ``alt`` bills ``code`` with ``modifier`` as a column-2 code, or does not pair it."""
    if code not in alt.codes:
        return True
    paired = any(c2 == code and c1 in alt.codes for c1, c2 in pairs)
    return not paired or alt.modifiers[alt.codes.index(code)] == modifier
