"""Fixtures shared by the test suite, its fast tier, and the sample report pack run once.

Test data
    Everything the tests read from outside the package lives in ``tests/data/`` (see its
    README): extracts of the CMS CY2025 and CY2026 physician fee schedule files and the 835
    remittance samples. The fixtures below point there, so the suite runs whole on a fresh
    clone; a missing file is an error, never a skip.

Tiers
    ``pytest -m "not slow"`` (``make test-fast``) leaves out the tests marked ``slow``: those
    that execute the report notebooks (papermill) or start Jupyter kernels, open Chromium,
    start a Dask cluster, or search many generated inputs, or take over about 2 s. They are
    marked here, by the fixtures they use (:data:`SLOW_FIXTURES`, :data:`SLOW_FIXTURES_IN`) and
    by name (:data:`SLOW`), so the test files carry no tier bookkeeping. ``pytest`` runs
    everything.

Report pack
    ``sample_pack_runs`` runs ``report all`` on ``data/sample`` once per session, through the
    command line (:func:`analytics.cli.main`), twice at once into one output folder and one
    cache: the whole span (``sample_pack``, read by the page tests) and, as a consultant runs
    it, the fourth quarter of 2025 with PDFs and the client pack (read by test_pack.py and the
    PDF tests). Tests that need other inputs (edge cases, planted identifiers, stand-in
    notebooks) make their own runs.

Docstring examples
    ``--doctest-modules`` collects the examples in the ``analytics`` docstrings (pyproject
    ``testpaths``). Examples known to fail are listed in :data:`KNOWN_DOCTEST_FAILURES` and
    marked xfail until their module is fixed; an example that starts passing shows as XPASS.
"""

from __future__ import annotations

import ast
import dataclasses
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Keep the practice cache of a test session in a temporary folder, never in ``~/.cache``; set the
    suite's practice key (:data:`TEST_PRACTICE_KEY`)."""
    import os
    import tempfile

    if "ANALYTICS_CACHE_DIR" not in os.environ:
        _made_cache_dirs.append(tempfile.mkdtemp(prefix="analytics-test-cache-"))
        os.environ["ANALYTICS_CACHE_DIR"] = _made_cache_dirs[-1]
    # the practice key of the suite, set before the test files are imported (see TEST_PRACTICE_KEY)
    os.environ["ANALYTICS_PRACTICE_KEY"] = TEST_PRACTICE_KEY
    # the fast tier searches fewer generated inputs (see FAST_TIER_EXAMPLES); a count set in the
    # environment (CI) wins
    if is_fast_tier(config):
        for variable, count in FAST_TIER_EXAMPLES.items():
            os.environ.setdefault(variable, str(count))


#: The practice cache folders this process made (:func:`pytest_configure`), removed at the end.
_made_cache_dirs: list[str] = []


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the temporary practice cache folder this process made."""
    import shutil

    while _made_cache_dirs:
        shutil.rmtree(_made_cache_dirs.pop(), ignore_errors=True)


def is_fast_tier(config: pytest.Config) -> bool:
    """True when the run leaves out the slow tests (``-m "not slow"``, ``make test-fast``)."""
    import re

    return re.search(r"\bnot\s+slow\b", config.getoption("markexpr", "") or "") is not None


#: Generated inputs per test in the fast tier, by the environment variable that sets the count
#: (the whole suite and CI use the test file's default or the variable's value): the tier keeps
#: the search, with fewer inputs.
FAST_TIER_EXAMPLES: dict[str, int] = {
    "ANALYTICS_FUZZ_835": 20,  # test_fuzz_835.py (default 100)
}

if TYPE_CHECKING:
    from analytics.reports import RunResult

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SAMPLE = REPO / "data" / "sample"


def data_path(*parts: str) -> Path:
    """Path under ``tests/data``; fails with the fix when the file is missing."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: tests/data is part of the repository (see tests/data/README.md); "
                    "restore it from version control", pytrace=False)
    return path


# --------------------------------------------------------------------------------------------
# The practice key: the commands that write pseudonyms refuse to run without one
# --------------------------------------------------------------------------------------------

#: The pseudonym key the suite gives every command, the documented way for scheduled runs
#: (``ANALYTICS_PRACTICE_KEY``, 64 hex digits), set by :func:`pytest_configure` before the test
#: files are imported (so tables read at import and by the commands share it; subprocesses and
#: Dask workers inherit it); a test about running without a key removes it.
TEST_PRACTICE_KEY = "7e57" * 16

#: Test files that make and pass their own practice keys (``init``, key files, re-keying): a
#: key in the environment that differs from a key file is an error, so they start without one.
OWN_KEYS = frozenset({"test_onboarding.py", "test_privacy_keys.py", "test_privacy_rekey.py",
                      "test_privacy_reports.py", "test_privacy_outputs.py"})


@pytest.fixture(scope="module", autouse=True)
def own_practice_keys(request):
    """No key in the environment for the test files of :data:`OWN_KEYS`."""
    from analytics.privacy import KEY_ENV

    if Path(str(request.path)).name not in OWN_KEYS:
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(KEY_ENV, raising=False)
        yield


@pytest.fixture(scope="session")
def x12_dir() -> Path:
    """Folder of the 835 remittance samples (public samples and the project's synthetic ones)."""
    return data_path("x12-835")


@pytest.fixture(scope="session")
def cms_dir() -> Path:
    """CMS CY2025 files (RVU25D): PPRRVU2025_Oct.csv extract, GPCI2025.csv, 25LOCCO.csv."""
    return data_path("cms", "rvu25d")


@pytest.fixture(scope="session")
def cms26_dir() -> Path:
    """CMS CY2026 files (RVU26C): PPRRVU2026_Jul_nonQPP.csv extract, GPCI2026.csv."""
    return data_path("cms", "rvu26c")


@pytest.fixture(scope="session")
def sample_history():
    """The sample practice read once per session (``load_history("data/sample")``), for the test
    files that only read it (tests must not modify its tables); its warnings are not checked here."""
    import warnings

    from analytics import kpis

    if not (SAMPLE / "service_lines.csv").exists():
        pytest.skip("data/sample has no service_lines.csv yet: generate it with "
                    "`python -m analytics sample --out data/sample`")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kpis.load_history(SAMPLE)


@pytest.fixture(scope="session")
def package_sources() -> dict[Path, tuple[str, ast.Module]]:
    """Every ``analytics/**/*.py`` file, its text and its parsed tree, read once per session for
    the tests that check the source (layout, CSV writers); trees are walked, never changed."""
    return {path: (text, ast.parse(text, filename=str(path)))
            for path in sorted((REPO / "analytics").rglob("*.py"))
            for text in [path.read_text(encoding="utf-8")]}


# --------------------------------------------------------------------------------------------
# The report pack on the sample practice, run once per session
# --------------------------------------------------------------------------------------------


#: The client pack's run: the quarter, its cover, and the footers' date (fixed, so that the
#: tests know it).
PACK_PERIOD = "2025-Q4"
PACK_TITLE = "Quarterly billing review"
PACK_BY = "A. Consultant, billing reviews"
PACK_DAY = "2026-01-15"


@dataclasses.dataclass(frozen=True)
class ReportPack:
    """The session's runs of ``report all`` on the sample practice, started together into one folder."""

    out: Path  #: the --out folder shared by the runs
    whole: RunResult  #: the sample's whole span (no period)
    quarter: RunResult | None  #: PACK_PERIOD with PDFs and the client pack; None without Chromium
    exit_codes: dict[str, int]  #: what ``analytics report all`` returned, by run ("whole", "quarter")
    cache: Path  #: the cache folder the runs used (the session's ``ANALYTICS_CACHE_DIR``)

    @property
    def runs(self) -> tuple[RunResult, ...]:
        return tuple(r for r in (self.whole, self.quarter) if r is not None)


def _run_packs(out: Path) -> ReportPack:
    """``analytics report all`` on the sample, the whole span and the client pack's quarter, at
    once into ``out``.

    Two concurrent runs into one folder and one cache check that such runs do not clobber each
    other, at the cost of about one run. ``run_reports`` is wrapped only to keep each run's
    result and to fix the quarter's date (the footers'); the command line runs unchanged.
    """
    # Imported here, not at the top: a module that fails to import then fails the tests that
    # need it instead of the whole session.
    from analytics import cli, reports

    common = ["report", "all", "--data", str(SAMPLE), "--out", str(out), "--timeout", "600"]
    commands = {"whole": common}
    if reports.find_chromium() is not None:
        commands["quarter"] = [*common, "--period", PACK_PERIOD, "--pdf", "--pack", "-p", "title", PACK_TITLE,
                               "-p", "prepared_by", PACK_BY]
    real = reports.run_reports
    results: dict[str, RunResult] = {}
    codes: dict[str, int] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def recording(*a, **k) -> RunResult:
        which = "quarter" if k.get("period") == PACK_PERIOD else "whole"
        if which == "quarter":
            k["date"] = PACK_DAY
        result = real(*a, **k)
        with lock:
            results[which] = result
        return result

    def command(which: str) -> None:
        try:
            code = cli.main(commands[which])
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)
        else:
            with lock:
                codes[which] = code

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reports, "run_reports", recording)
        threads = [threading.Thread(target=command, args=(which,)) for which in commands]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    from analytics.cache import default_cache_dir

    return ReportPack(out=out, whole=results["whole"], quarter=results.get("quarter"), exit_codes=codes,
                      cache=default_cache_dir())


@pytest.fixture(scope="session")
def sample_pack_runs(tmp_path_factory) -> ReportPack:
    """``report all`` on ``data/sample``, the whole span and the pack's quarter at once, once per
    session (tests must not modify what it wrote).

    Under pytest-xdist (``make test``) every worker process has its own session: the first worker
    that needs the pack runs it into the folder the workers share, under a file lock, and the
    others read its result from there instead of running it again.
    """
    import fcntl
    import os
    import pickle

    if not (SAMPLE / "service_lines.csv").exists():
        pytest.skip("data/sample has no service_lines.csv yet: generate it with "
                    "`python -m analytics sample --out data/sample`")
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return _run_packs(tmp_path_factory.mktemp("sample-pack"))
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's own
    done = shared / "sample-pack.pickle"
    with open(shared / "sample-pack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return pickle.loads(done.read_bytes())
        out = shared / "sample-pack"
        out.mkdir(exist_ok=True)
        pack = _run_packs(out)
        done.write_bytes(pickle.dumps(pack))
        return pack


@pytest.fixture(scope="session")
def sample_pack(sample_pack_runs) -> RunResult:
    """The standard report pack on the sample practice (``report all``, the whole span)."""
    return sample_pack_runs.whole


# --------------------------------------------------------------------------------------------
# Tiers: what `pytest -m "not slow"` leaves out
# --------------------------------------------------------------------------------------------

#: Fixtures that execute report notebooks (papermill): every test that uses one, directly or
#: through another fixture, is slow.
SLOW_FIXTURES = frozenset({
    "sample_pack_runs",                                          # report all on the sample (here)
    "payer_alone", "payer_beside", "open_year", "one_line",      # edge inputs (test_edge_reports)
})

#: Fixtures that are slow in one test file only (by file): module fixtures that load the whole
#: sample practice's history.
SLOW_FIXTURES_IN: dict[str, frozenset[str]] = {
    "test_learned_risk.py": frozenset({"sample"}),
    "test_practice_whatif.py": frozenset({"sample"}),
}

#: Tests that are slow for another reason, by file, then test name (without parameters); "*" is
#: the whole file. From ``pytest --durations=0`` on the 2-core development machine (under load):
#: notebooks run on stand-ins or through the command line, headless Chromium, subprocesses, a
#: Dask cluster, property-based searches over many generated inputs, and anything else over
#: about 2 s. A renamed test drops out of this list silently: keep the names in step.
SLOW: dict[str, frozenset[str]] = {
    # kernels: every test starts Jupyter kernels (forked or afresh) and stops them
    "test_kernels.py": frozenset({"*"}),
    "test_reports.py": frozenset({
        "test_notebooks_in_parallel_with_a_relative_output_folder",
        "test_a_kernel_that_dies_starting_is_started_again",
        "test_failing_notebook_names_the_cell_and_keeps_the_notebook",
        "test_kernel_is_the_interpreter_running_the_report",
        "test_no_progress_bar_when_output_is_not_a_terminal",
        "test_concurrent_runs_into_one_folder_do_not_clobber",
        "test_scenarios_alone_take_the_practice_name_from_practice_yaml",
        "test_tables_are_published_with_a_relative_output_folder",
        "test_exit_code_of_the_command",
    }),
    "test_privacy_reports.py": frozenset({
        "test_no_planted_identifier_reaches_any_report",
        "test_a_page_showing_an_identifier_is_refused",
        "test_a_saved_table_with_an_identifier_is_refused",
        "test_a_failed_notebook_that_shows_an_identifier_is_not_kept",
    }),
    "test_reproducibility.py": frozenset({"test_two_computations_are_byte_identical"}),
    "test_explorer_browser.py": frozenset({
        "test_explorer_in_a_real_browser",  # JupyterLab, Chromium
        "test_the_widgets_follow_compare_without_a_front_end",  # every widget against compare()
    }),
    # the fast tier keeps the cache's basic promises (a cached read equals a fresh one, a changed
    # 835 is a new entry, no patient id, a killed write); damage, key changes and pruning are slow
    "test_cache.py": frozenset({
        "test_a_corrupt_or_foreign_entry_is_rebuilt_never_read",
        "test_a_changed_payer_policy_or_key_is_another_entry",
        "test_old_entries_beyond_the_limit_are_removed",
    }),
    "test_dask.py": frozenset({"*"}),
    "test_fuzz.py": frozenset({"*"}),
    "test_scenarios.py": frozenset({
        "test_notebook_runs_headless_with_default_parameters",
        "test_notebook_runs_headless_as_a_batch_report",
        "test_property_no_invented_codes_no_extra_units_totals_add_up",
    }),
    "test_cli.py": frozenset({"test_module_entry_point_runs"}),
    "test_remittance_quirks.py": frozenset({
        "test_wrapped_at_80_columns_with_breaks_anywhere_in_a_later_isa_or_iea",  # 80 whole reads
    }),
    "test_privacy.py": frozenset({"test_each_identifying_header_is_recognised"}),  # 50+ intake reads
    "test_remittance_stream.py": frozenset({
        "test_chunking_never_changes_the_outcome",
        "test_memory_is_bounded_by_the_chunk_not_the_file",
        "test_generated_interchanges_stack_to_whole_read",
        "test_warnings_are_worded_for_the_whole_file",
        "test_cli_writes_parts_like_a_whole_read",
        "test_one_large_transaction_is_split_and_balanced_once",
        "test_whole_read_matches_tokenizer_and_segment_numbers",
        "test_decoding_matches_the_whole_file",
    }),
    "test_remittance.py": frozenset({
        "test_generated_remittances_balance",
        "test_batches_never_change_the_outcome",
        "test_batched_files_equal_files_read_one_by_one",
        "test_cli_subprocess",
    }),
    "test_denials.py": frozenset({
        "test_rates_stay_in_bounds_and_ignore_row_order",
        "test_line_outcomes_match_the_reference_on_random_835s",
        "test_line_outcomes_match_the_reference_on_the_fixture_835s",
        "test_line_outcomes_match_the_reference_on_a_generated_practice",
        "test_model_recovers_the_true_denial_probabilities",
        "test_cli_denials_json",
        "test_model_plugs_into_evaluate",
        "test_label_lines_links_service_lines_to_outcomes",
        "test_line_outcomes_match_the_reference_on_small_cases",
    }),
    "test_intake.py": frozenset({"test_random_mixes_always_reconcile", "test_xlsx_and_parquet_give_identical_lines"}),
    "test_units.py": frozenset({"test_properties"}),
    # 1,500 random CSV texts and every date of seven years read both ways (the exports and 835s
    # of tests/data stay in the fast tier)
    "test_identifiers_fast.py": frozenset({"test_random_csv_texts_read_alike",
                                           "test_dates_of_birth_read_a_form_at_a_time_equal_one_at_a_time",
                                           "test_generated_messy_exports_read_alike"}),
    # mutated and cut 835s read both ways (the fixture 835s read both ways stay in the fast tier)
    "test_remittance_claim_runs.py": frozenset({"test_mutated_runs_read_column_wise_equal_the_segment_loop",
                                                "test_parts_of_a_file_read_column_wise_equal_the_segment_loop"}),
    "test_pricing.py": frozenset({"test_pricing_properties"}),
    "test_pipeline.py": frozenset({
        "test_any_split_by_patient_gives_the_same_figures",
        "test_evaluate_in_blocks_equals_one_pass",
        "test_evaluate_parquet_equals_evaluate",
        "test_practice_equals_the_concatenation_of_its_patient_partitions",
        "test_edge_cases_equal_the_concatenation_of_their_patient_partitions",
        "test_output_is_partitioned_by_year_month_with_categorical_codes",
        "test_plain_text_input_in_a_directory_of_files",
        "test_evaluate_command",
    }),
    "test_practice.py": frozenset({"test_denials_fits_its_model_on_any_export_format"}),  # 3 model fits
    "test_onboarding.py": frozenset({
        "test_init_again_keeps_the_owners_edits",
        "test_init_writes_the_practice_folder",
    }),
    "test_privacy_commands.py": frozenset({
        "test_evaluate_writes_pseudonyms_and_no_identifying_column",
        "test_remit_tables_have_keys_not_names_or_member_ids",
    }),
    "test_datasets.py": frozenset({
        "test_same_seed_same_practice_other_seed_other_practice",
        "test_truth_recomputes_from_the_published_mechanism_table",
        "test_remittances_pass_an_independent_x12_validator",
        "test_cli_sample_and_no_835",
        "test_sample_regenerates_byte_for_byte",
    }),
}

#: Docstring examples in ``analytics`` that fail today (module: example name), marked xfail.
KNOWN_DOCTEST_FAILURES: frozenset[str] = frozenset({
})


#: The test files that take longest (they run report packs, Chromium or many generated inputs),
#: longest first: they are collected first, so that with one file per worker (``--dist
#: loadfile``) they start at once and the short files fill the gaps, instead of one long file
#: starting last while the other workers have nothing left to do.
LONGEST_FILES = (
    "test_reports.py", "test_edge_reports.py", "test_privacy_reports.py", "test_cache.py", "test_pack.py",
    "test_onboarding.py", "test_remittance_stream.py", "test_explorer_browser.py", "test_portfolio.py",
    "test_fuzz.py", "test_fuzz_835.py", "test_page_cache.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file kept
    slow = pytest.mark.slow
    for item in items:
        name = getattr(item, "originalname", None) or item.name.split("[")[0]
        listed = SLOW.get(item.path.name, frozenset())
        fixtures = set(getattr(item, "fixturenames", ()))
        slow_fixtures = SLOW_FIXTURES | SLOW_FIXTURES_IN.get(item.path.name, frozenset())
        # Dask starts a local cluster: a test or docstring example named for it, or run with a
        # true ``dask`` parameter, is slow wherever it is.
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_dask = "dask" in name.lower() or params.get("dask") is True
        if "*" in listed or name in listed or slow_fixtures & fixtures or on_dask:
            item.add_marker(slow)
        if not isinstance(item, pytest.DoctestItem):
            continue
        if item.name in KNOWN_DOCTEST_FAILURES:
            item.add_marker(pytest.mark.xfail(reason="docstring example fails: fix it in its module", strict=False))
