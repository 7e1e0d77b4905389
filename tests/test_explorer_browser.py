"""The coding-choice explorer as a practice owner uses it: JupyterLab in headless Chromium.

The browser test starts JupyterLab (the ``make lab-env`` environment, whose kernel is the
project's ``.venv``) on a free local port, on a scratch copy of ``notebooks/explorer.ipynb``,
opens it in Debian's Chromium through Playwright (``executable_path=/usr/bin/chromium``; no
browser is downloaded), runs it from the Run menu and works the controls: a slider, a typed
value, a modifier, the payer picker, the full table, the folder picker and the save button.
After each change the chart and the tables must show what :func:`compare` gives for the same
session, computed here independently. A screenshot is kept in ``tests/artifacts/``.

The expected figures come from the engine's public API (:func:`compare`), not from the
explorer: the explorer must show them, formatted as on the report pages
(:func:`analytics.kpis.fmt_money`: ``$116.28``; percents with one decimal).

The other tests here check the explorer's pure parts without a browser.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from analytics.exceptions import MinutesError
from analytics.kpis import fmt_money
from analytics.payers import load_payers
from analytics.scenarios import Session, compare, practice_defaults, with_fee_schedule
from analytics.scenarios.explorer import (
    denial_chances,
    open_practice,
    parse_minutes,
    ranked_totals,
    remember_folder,
    remembered_folder,
    settings_path,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
NOTEBOOK = REPO / "notebooks" / "explorer.ipynb"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LAB_ENV = Path(os.environ.get("ANALYTICS_LAB_ENV", REPO / ".venv" / "lab"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The sample practice's payers, in payers.yaml order, and their names on the page.
SAMPLE_PAYERS = ["medicare", "ppo_gold", "auto_pip", "workers_comp", "hmo_capped", "cash"]


# ---------------------------------------------------------------------------------------
# Without a browser
# ---------------------------------------------------------------------------------------


def test_typed_minutes_are_checked_not_clipped():
    assert parse_minutes("75", "97124", 120) == 75
    assert parse_minutes("120", "97124", 120) == 120
    for typed in ("500", "-5", "thirty", "7.5"):
        with pytest.raises(MinutesError, match="97124") as err:
            parse_minutes(typed, "97124", 120)
        assert "from 0 to 120" in str(err.value)


def test_the_last_folder_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("ANALYTICS_EXPLORER_SETTINGS", raising=False)
    practice = tmp_path / "practice"
    practice.mkdir()
    (practice / "payers.yaml").write_text((SAMPLE / "payers.yaml").read_text())
    assert remembered_folder(SAMPLE) == SAMPLE  # nothing remembered yet
    assert remember_folder(practice) == settings_path()
    assert settings_path() == tmp_path / "config" / "massage-billing-analytics" / "explorer.json"
    assert remembered_folder(SAMPLE) == practice.resolve()
    (practice / "payers.yaml").unlink()  # a folder that no longer holds a practice is forgotten
    assert remembered_folder(SAMPLE) == SAMPLE


def test_a_folder_without_payers_says_what_to_choose(tmp_path):
    from analytics.exceptions import InputError

    with pytest.raises(InputError, match=r"holds no payers\.yaml.*Choose the practice folder"):
        open_practice(tmp_path)
    with pytest.raises(InputError, match="There is no folder"):
        open_practice(tmp_path / "missing")


def _sample_session(minutes: dict[str, int], date: str, **fields) -> Session:
    """The session the explorer builds for the sample practice's first PT provider."""
    defaults = dict(distinct_regions=True, separate_time_blocks=False, hot_pack=False,
                    prescription_on_file=True)
    defaults.update(fields)
    return Session.from_minutes(
        {"97124": 0, "97140": 0, "97112": 0, "97110": 0, **minutes},
        service_date=date,
        deductible_remaining=0.0,
        **defaults,
        **practice_defaults(SAMPLE, providers=["PT1"]),
    )


def _sample_payers():
    return with_fee_schedule(load_payers(SAMPLE / "payers.yaml"), locality="00000-00")


@functools.cache
def _sample_risk():
    """The chance of denial learned from the sample practice's 835s, as the reports learn it."""
    from analytics.kpis import load_history
    from analytics.scenarios import learned_risk

    return learned_risk(load_history(SAMPLE), validate=False)


def test_chance_of_denial_is_the_payer_prior_on_payable_lines():
    """payers.yaml of the sample: Medicare denial_prior 0.06, Gold PPO 0.08, self-pay 0.
    Without modifier 59/XS/XU, NCCI denies 97124 beside 97140 for Medicare: that line counts
    among the lines denied by edits, the chance stays the prior of the line paid."""
    c = compare(_sample_session({"97124": 30, "97140": 30}, "2026-06-01"), _sample_payers(),
                payer_ids=["medicare", "ppo_gold", "cash"])
    chances = denial_chances(c).set_index(["alternative", "payer_id"])
    assert chances.loc[("97140 + 97124-XS", "medicare"), "p_deny"] == pytest.approx(0.06)
    assert chances.loc[("97140 + 97124-XS", "ppo_gold"), "p_deny"] == pytest.approx(0.08)
    assert chances.loc[("97140 + 97124-XS", "cash"), "p_deny"] == 0
    bare = ("97140 + 97124 (no modifier)", "medicare")
    assert chances.loc[bare, "p_deny"] == pytest.approx(0.06)
    assert chances.loc[bare, "p_deny_basis"].startswith("payer prior")
    ranked = ranked_totals(c)
    first = ranked[~ranked["payer_id"].duplicated()]
    best = c.totals[c.totals["best"]]
    assert dict(zip(first["payer_id"], first["alternative"], strict=True)) == dict(
        zip(best["payer_id"], best["alternative"].astype(str), strict=True))


def test_the_widgets_follow_compare_without_a_front_end(tmp_path, monkeypatch):
    """The same explorer a notebook shows, driven from Python: minutes, modifier, payer."""
    pytest.importorskip("ipywidgets")
    from analytics.scenarios.explorer import explorer

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("ANALYTICS_EXPLORER_SETTINGS", raising=False)
    app = explorer(sample=SAMPLE, save_dir=tmp_path / "saved", learn=False)
    date = app.date.value
    app.sliders["97124"].value = 75
    c = compare(_sample_session({"97124": 75, "97140": 30}, date), _sample_payers())
    shown = app.ranked.set_index(["alternative", "payer_id"])["expected_total"]
    assert shown.to_dict() == c.totals.set_index(["alternative", "payer_id"])["expected_total"].to_dict()
    app.modifier.value = "XS"
    assert set(app.ranked["alternative"]) == {"97140 + 97124-XS", "97140 only", "97124 only"}
    app.payer.value = "cash"
    assert set(app.ranked["payer_id"]) == {"cash"}
    app.typed["97140"].value = "500"
    assert "500 minutes" in app.message.value and app.sliders["97140"].value == 30
    csv, png = app.save()
    assert len(pd.read_csv(csv)) == 3 and png.stat().st_size > 0


# ---------------------------------------------------------------------------------------
# JupyterLab in Chromium
# ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_jupyter() -> Path:
    """JupyterLab's ``jupyter``, installing its environment (``make lab-env``) when missing."""
    jupyter = LAB_ENV / "bin" / "jupyter"
    if not jupyter.exists():
        if shutil.which("make") is None:
            pytest.fail(f"JupyterLab is not installed in {LAB_ENV} and there is no make to run "
                        "`make lab-env`; install make, or run the Makefile's lab-env steps by hand.")
        done = subprocess.run(["make", "-C", str(REPO), "lab-env"], capture_output=True, text=True)
        if done.returncode != 0 or not jupyter.exists():
            pytest.fail(f"`make lab-env` failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return jupyter


def _chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser: Debian's Chromium is not at {CHROMIUM} (`make chromium` installs it "
                    "where apt-get can reach Debian's packages)")


@contextlib.contextmanager
def lab_server(workdir: Path) -> Iterator[str]:
    """JupyterLab serving ``workdir`` on a free local port; yields the notebook's URL.

    ``workdir`` gets a copy of the explorer notebook in ``notebooks/`` and a link to the
    repository's ``data/``, so its relative paths hold and the committed notebook is never
    written; the kernel's settings and saved comparisons stay in ``workdir`` too.
    """
    jupyter = _lab_jupyter()
    (workdir / "notebooks").mkdir(parents=True)
    shutil.copyfile(NOTEBOOK, workdir / "notebooks" / NOTEBOOK.name)
    (workdir / "data").symlink_to(REPO / "data", target_is_directory=True)
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(workdir / "config"),
        "JUPYTER_CONFIG_DIR": str(workdir / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "jupyter-runtime"),
    }
    env.pop("ANALYTICS_EXPLORER_SETTINGS", None)
    log = (workdir / "jupyter.log").open("wb")
    server = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={workdir}", f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
         f"--LabApp.user_settings_dir={workdir / 'user-settings'}", "--LabApp.expose_app_in_browser=True"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n" + (workdir / "jupyter.log").read_text()[-3000:])
                time.sleep(0.25)  # polling a starting server, not a fixed wait
        yield f"http://127.0.0.1:{port}/lab/tree/notebooks/{NOTEBOOK.name}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextlib.contextmanager
def explorer_page(workdir: Path, viewport: dict[str, int] | None = None):
    """Chromium on the explorer notebook, kernel idle; yields ``(page, dirty_on_open)``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `make install` (pip install -e '.[dev]') installs it")
    with lab_server(workdir) as url, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(workdir / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport=viewport or {"width": 1500, "height": 2600},
        )
        try:
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            dirty = page.evaluate(_DIRTY_AFTER_KERNEL_INFO)
            yield page, dirty
        finally:
            context.close()


# Resolves after the kernel's info reply has been applied to the notebook (JupyterLab chains
# its language_info update on the same promise first), then reports the dirty flag.
_DIRTY_AFTER_KERNEL_INFO = """async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  await panel.sessionContext.session.kernel.info;
  await new Promise(r => setTimeout(r, 0));
  const tab = document.querySelector('.lm-TabBar-tab.jp-mod-current');
  return panel.context.model.dirty || tab.classList.contains('jp-mod-dirty');
}"""


# Labels whose text is wider than their box (shown with an ellipsis or clipped): each element
# is measured against a copy of itself laid out at its natural width.
_CUT_OFF = """els => els.filter(e => {
  const c = e.cloneNode(true);
  c.style.cssText += ';position:absolute;visibility:hidden;width:max-content;max-width:none;';
  e.parentNode.appendChild(c);
  const cut = c.getBoundingClientRect().width > e.getBoundingClientRect().width + 1;
  c.remove();
  return cut;
}).map(e => e.textContent)"""


def run_all_cells(page) -> None:
    """Run the notebook as its first cell tells the owner: Run > Run All Cells."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.wait_for_selector(".mba-chart .mba-bar", timeout=120_000)


def shown_bars(page) -> dict[tuple[str, str], str]:
    """The chart's bars: (alternative, payer id) -> the amount written beside the bar."""
    rows = page.eval_on_selector_all(
        ".mba-chart .mba-row",
        "rows => rows.map(r => [r.firstChild.dataset.alternative, r.firstChild.dataset.payer,"
        " r.lastChild.textContent])",
    )
    return {(a, p): text for a, p, text in rows}


def shown_table(page, selector: str, expect: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """An HTML table of the page as text, with its headings, read once the table is whole (the
    widget redraws it after each change: headings and rows are read from one drawing) and, with
    ``expect``, once those columns show those values (the table is redrawn after the chart, so a
    chart already showing a change does not mean the table does)."""
    whole = """([sel, expect]) => { const t = document.querySelector(sel + " table"); if (!t) return false;
        const heads = [...t.querySelectorAll("thead th")].map(x => x.textContent);
        const rows = [...t.querySelectorAll("tbody tr")];
        if (heads.length === 0 || !rows.every(r => r.cells.length === heads.length)) return false;
        return Object.entries(expect).every(([col, want]) => {
            const i = heads.indexOf(col);
            return i >= 0 && rows.length === want.length && rows.every((r, k) => r.cells[i].textContent === want[k]);
        }); }"""
    with contextlib.suppress(Exception):  # on a timeout, read what is shown: the asserts say what differs
        page.wait_for_function(whole, arg=[selector, expect or {}], timeout=60_000)
    head, body = page.eval_on_selector(
        f"{selector} table",
        "t => [[...t.querySelectorAll('thead th')].map(x => x.textContent),"
        " [...t.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.textContent))]",
    )
    return pd.DataFrame(body, columns=head)


def expected_bars(c, names: set[str] | None = None) -> dict[tuple[str, str], str]:
    t = c.totals
    keep = t if names is None else t[t["alternative"].astype(str).isin(names)]
    return {
        (str(a), str(p)): fmt_money(v, cents=True)
        for a, p, v in zip(keep["alternative"], keep["payer_id"], keep["expected_total"], strict=True)
    }


def wait_for_bars(page, expected: dict[tuple[str, str], str], timeout: float = 60_000) -> None:
    """Wait until the chart shows ``expected``, then compare (a clear diff on failure)."""
    want = [[a, p, v] for (a, p), v in sorted(expected.items())]
    with contextlib.suppress(Exception):
        page.wait_for_function(
            """want => {
              const got = [...document.querySelectorAll('.mba-chart .mba-row')].map(
                r => [r.firstChild.dataset.alternative, r.firstChild.dataset.payer, r.lastChild.textContent]);
              const key = x => JSON.stringify(x);
              return got.length === want.length && want.every(w => got.some(g => key(g) === key(w)));
            }""",
            arg=want,
            timeout=timeout,
        )
    assert shown_bars(page) == expected


def minutes_box(page, code: str):
    return page.locator(f".mba-minutes-{code} input")


def expected_chance(c, alternative: str, payer: str) -> tuple[str, str]:
    """Chance of denial of an alternative as the page defines it, and its basis: the
    allowed-dollar-weighted chance over the lines no edit denies, the lines' bases joined."""
    t = c.table[(c.table["alternative"].astype(str) == alternative) & (c.table["payer_id"] == payer)]
    live = t[~t["disposition"].isin(["denied", "not_billed"])]
    allowed = live["allowed"].astype(float)
    chance = (allowed * live["p_deny"]).sum() / allowed.sum() if allowed.sum() else live["p_deny"].mean()
    return f"{100 * chance:.1f}%", "; ".join(dict.fromkeys(live["p_deny_basis"].astype(str)))


def check_best_table(page, c) -> None:
    """The short table: per payer, by name, the best supported alternative and its figures."""
    best = c.totals[c.totals["best"]].set_index("payer_id", drop=False)
    best = best.loc[[p for p in c.payers if p in best.index]]  # in payers.yaml order
    table = shown_table(page, ".mba-best", expect={
        "Payer": best["payer_name"].tolist(),
        "Expected per visit": [fmt_money(v, cents=True) for v in best["expected_total"]],
    })
    assert list(table.columns)[:3] == ["Payer", "Best supported alternative", "Expected per visit"]
    assert table["Payer"].tolist() == best["payer_name"].tolist()
    assert table["Best supported alternative"].tolist() == best["alternative"].astype(str).tolist()
    assert table["Expected per visit"].tolist() == [fmt_money(v, cents=True) for v in best["expected_total"]]
    assert table["from patient"].tolist() == [fmt_money(v, cents=True) for v in best["expected_patient"]]
    chances = [expected_chance(c, str(a), p) for a, p in zip(best["alternative"], best["payer_id"], strict=True)]
    assert table["Chance of denial"].tolist() == [x for x, _ in chances]
    assert table["Basis of the chance"].tolist() == [b for _, b in chances]
    assert any(b.startswith("learned from") for _, b in chances)  # the sample has 835s to learn from


@pytest.mark.slow
def test_explorer_in_a_real_browser(tmp_path):
    _chromium_or_skip()
    ARTIFACTS.mkdir(exist_ok=True)
    with explorer_page(tmp_path) as (page, dirty_on_open):
        # Opening the notebook leaves it unmodified (no outputs, stable metadata).
        assert dirty_on_open is False
        run_all_cells(page)
        date = page.locator(".jupyter-widgets input[type=date]").first.input_value()
        assert page.locator(".mba-app input[type=text]").first.input_value() == str(SAMPLE.resolve())

        # Start: 30 + 30 minutes, every payer, every alternative, in payers.yaml order.
        assert "learned from the practice's" in page.locator(".mba-app .mba-ok").first.inner_text()
        pol, risk = _sample_payers(), _sample_risk()
        c = compare(_sample_session({"97124": 30, "97140": 30}, date), pol, risk=risk)
        wait_for_bars(page, expected_bars(c))
        check_best_table(page, c)
        assert "ppo_gold" not in page.locator(".mba-best").inner_text()

        # Labels fit: no checkbox label or button is cut off, the modifier buttons on one row.
        assert page.eval_on_selector_all(".mba-app .widget-checkbox label, .mba-app button", _CUT_OFF) == []
        tops = page.eval_on_selector_all(".mba-app .widget-toggle-button", "b => b.map(x => x.offsetTop)")
        assert len(tops) == 5 and len(set(tops)) == 1
        assert page.locator(".mba-app .widget-label", has_text="Modifier on 97124").count() == 1

        # A slider: drag 97124's handle to the right; the chart follows compare at the new minutes.
        handle = page.locator(".mba-slider-97124 .noUi-handle")
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 120, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        page.wait_for_function(
            "() => document.querySelector('.mba-minutes-97124 input').value !== '30'", timeout=30_000)
        dragged = int(minutes_box(page, "97124").input_value())
        assert 30 < dragged <= 120
        c = compare(_sample_session({"97124": dragged, "97140": 30}, date), pol, risk=risk)
        wait_for_bars(page, expected_bars(c))
        check_best_table(page, c)

        # Typed minutes: 500 is refused with a message, 75 is taken.
        minutes_box(page, "97140").fill("500")
        minutes_box(page, "97140").press("Enter")
        page.wait_for_selector(".mba-error:has-text('500 minutes')", timeout=30_000)
        assert "from 0 to 120" in page.locator(".mba-error").first.inner_text()
        assert minutes_box(page, "97140").input_value() == "30"
        minutes_box(page, "97140").fill("75")
        minutes_box(page, "97140").press("Enter")
        c = compare(_sample_session({"97124": dragged, "97140": 75}, date), pol, risk=risk)
        wait_for_bars(page, expected_bars(c))
        check_best_table(page, c)

        # A modifier: XS on 97124 keeps the alternatives billing 97124-XS or not pairing it.
        page.locator(".mba-app .widget-toggle-button", has_text="XS").click()
        xs = {"97140 + 97124-XS", "97140 only", "97124 only"}
        wait_for_bars(page, expected_bars(c, xs))

        # The payer picker: one payer, chosen by name.
        page.locator(".mba-app select").filter(has_text="All payers").select_option(label="Gold PPO")
        one = compare(_sample_session({"97124": dragged, "97140": 75}, date), pol, payer_ids=["ppo_gold"],
                      risk=risk)
        wait_for_bars(page, expected_bars(one, xs))
        best = one.totals[one.totals["best"]].iloc[0]
        table = shown_table(page, ".mba-best", expect={"Payer": ["Gold PPO"]})
        assert table["Payer"].tolist() == ["Gold PPO"]
        assert table["Expected per visit"].tolist() == [fmt_money(best["expected_total"], cents=True)]

        # The full table is one click away: every alternative shown for the payer.
        page.locator(".mba-app .jupyter-widget-Collapse-header", has_text="Every alternative").click()
        page.wait_for_selector(".mba-full table", timeout=30_000)
        full = shown_table(page, ".mba-full", expect={"Payer": ["Gold PPO"] * len(xs)})
        assert sorted(full["Alternative"]) == sorted(xs)
        assert set(full["Payer"]) == {"Gold PPO"}

        # The CMS-1500 preview of the chosen alternative: item 24 with XS on 97124.
        claim = shown_table(page, ".mba-claim", expect={"24D code": ["97140", "97124"]})
        assert claim["24D code"].tolist() == ["97140", "97124"]
        assert "XS" in claim.loc[1, ["24D modifier 1", "24D modifier 2"]].tolist()

        # Save: a CSV of what is shown and the PNG chart, in reports/explorer.
        page.locator(".mba-app button", has_text="Save comparison").click()
        page.wait_for_selector(".mba-ok:has-text('Saved')", timeout=60_000)
        saved = sorted((tmp_path / "reports" / "explorer").glob("comparison_*"))
        assert [p.suffix for p in saved] == [".csv", ".png"]
        table = pd.read_csv(saved[0])
        assert len(table) == len(xs) and set(table["payer_id"]) == {"ppo_gold"}
        assert saved[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # The practice folder is picked in the page; a wrong one is explained, not opened.
        folder = page.locator(".mba-app input[type=text]").first
        folder.fill(str(tmp_path / "nowhere"))
        folder.press("Enter")
        page.wait_for_selector(".mba-error:has-text('There is no folder')", timeout=30_000)
        settings = json.loads((tmp_path / "config" / "massage-billing-analytics" / "explorer.json").read_text())
        assert settings["practice_folder"] == str(SAMPLE.resolve())

        page.locator(".mba-app").first.screenshot(path=str(ARTIFACTS / "explorer.png"))
