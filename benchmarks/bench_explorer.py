"""One explorer interaction in a real browser: slider change to redrawn chart and table.

Usage: python benchmarks/bench_explorer.py [--moves 15]

Starts JupyterLab (``make lab-env``) on a scratch copy of ``notebooks/explorer.ipynb``,
opens it in headless Debian Chromium (Playwright), runs it on the sample practice (six
payers, 30 + 30 minutes) and clicks the 97124 slider's track, each time at minutes not seen
before (no cached comparison) and in another 15-minute unit band than the last (so the
figures change: a move that changes no unit leaves the page as it was). Each interaction
is timed in the page from the press to the frame after both the chart and the short table
have changed. Prints one markdown table row: median, fastest and slowest, in ms.
Target: 300 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from test_explorer_browser import explorer_page, run_all_cells  # noqa: E402

TARGET_MS = 300.0
#: Minutes of 97124 for each move: distinct, each in another unit band than the one before.
MOVES = (45, 60, 75, 90, 105, 116, 44, 59, 74, 89, 104, 117, 46, 61, 76, 91, 106, 118, 43, 58)

# Arms a timer: from the next press to the frame after both the chart and the short
# table have changed (rejects after 10 s, so a lost move is counted instead of hanging).
_ARM = """() => {
  const chart = document.querySelector('.mba-chart-box');
  const best = document.querySelector('.mba-best');
  window.__mbaMove = new Promise((resolve, reject) => {
    let start = null;
    const seen = new Set();
    document.addEventListener('pointerdown', () => { start = performance.now(); }, {capture: true, once: true});
    const watch = new MutationObserver(records => {
      for (const r of records) {
        if (chart.contains(r.target)) seen.add('chart');
        if (best.contains(r.target)) seen.add('best');
      }
      if (seen.size === 2 && start !== null) {
        watch.disconnect();
        requestAnimationFrame(() => resolve(performance.now() - start));
      }
    });
    watch.observe(chart, {childList: true, subtree: true, characterData: true});
    watch.observe(best, {childList: true, subtree: true, characterData: true});
    setTimeout(() => reject(new Error('no redraw within 10 s')), 10000);
  });
}"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=15, help=f"slider moves to time (at most {len(MOVES)})")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, explorer_page(Path(tmp)) as (page, _):
        run_all_cells(page)
        page.wait_for_function("() => document.querySelectorAll('.mba-best tbody tr').length === 6")
        times, landed = [], []
        track = page.locator(".mba-slider-97124 .noUi-target").bounding_box()
        for minutes in MOVES[: args.moves]:
            page.evaluate(_ARM)
            x = track["x"] + track["width"] * minutes / 120
            page.mouse.click(x, track["y"] + track["height"] / 2)
            try:
                ms = page.evaluate("() => window.__mbaMove")
            except PlaywrightError:  # the click did not move the slider: counted, not timed
                ms = None
            landed.append(page.locator(".mba-minutes-97124 input").input_value())
            print(f"  moved to {landed[-1]} min: " + (f"{ms:.0f} ms" if ms is not None else "no redraw"), flush=True)
            if ms is not None:
                times.append(ms)
    print(f"97124 minutes after each move: {', '.join(landed)}; load average {os.getloadavg()[0]:.1f}")
    median = statistics.median(times)
    print(
        f"| explorer: 97124 slider move -> chart and table redrawn (6 payers, learned risk, browser) "
        f"| {median:.0f} ms | {min(times):.0f}-{max(times):.0f} ms | {len(times)} of {len(landed)} moves timed "
        f"| target {TARGET_MS:.0f} ms: {'met' if median <= TARGET_MS else 'NOT met'} "
        f"| {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
