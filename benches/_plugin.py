"""pytest plugin for timed benchmark runs (loaded with ``-p benches._plugin``, as ``engine bench`` does).

- ``--bench-progress`` shows one live progress line while the suite runs: position, elapsed time, the
  benchmark running now and the median of the one just finished. On a terminal the line is rewritten in
  place; in a log (not a terminal) each finished benchmark gets its own line. pytest's own dots are hidden
  meanwhile; failures are still listed in the summary.
- A regression found by ``--benchmark-compare-fail`` ends the run with a failing exit status and
  pytest-benchmark's list of what regressed, not with a traceback.
- Every benchmark's test outcome is written into the JSON (``extra_info["outcome"]``): a benchmark asserts
  that what it timed is correct, and the report shows one whose check failed as wrong rather than fast.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import pytest
from pytest_benchmark.session import PerformanceRegression

_OUTCOMES = pytest.StashKey[dict[str, str]]()
_PROGRESS = pytest.StashKey["_Progress"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("benchmark")
    group.addoption(
        "--bench-progress",
        action="store_true",
        default=False,
        help="show a live progress line (position, elapsed, current benchmark, last median) instead of dots",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_OUTCOMES] = {}
    if config.getoption("bench_progress"):
        config.stash[_PROGRESS] = _Progress(config)


def _format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _median_of(item: pytest.Item) -> float | None:
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    metadata = getattr(fixture, "stats", None)
    stats = getattr(metadata, "stats", None)
    if stats is None or not getattr(stats, "data", None):
        return None
    return float(stats.median)


class _Progress:
    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._started = time.monotonic()
        self._total = 0
        self._position = 0
        self._last = ""
        self._failed: set[str] = set()

    @property
    def _reporter(self) -> Any:
        return self._config.pluginmanager.get_plugin("terminalreporter")

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self._started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def collected(self, count: int) -> None:
        self._total = count

    def starting(self, nodeid: str) -> None:
        self._position += 1
        reporter = self._reporter
        if reporter is not None and reporter.isatty():
            last = f"  | last: {self._last}" if self._last else ""
            line = f"bench [{self._position}/{self._total}] {self._elapsed()}  {nodeid}{last}"
            width = reporter._tw.fullwidth - 1
            reporter.rewrite(line if len(line) <= width else line[: width - 1] + "…", erase=True, bold=True)

    def finished(self, nodeid: str, median: float | None, failed: bool, skipped: bool = False) -> None:
        name = nodeid.rsplit("/", 1)[-1]
        self._last = f"{name} {_format_seconds(median)}" if median is not None else name
        reporter = self._reporter
        if reporter is None:
            return
        if failed and nodeid not in self._failed:
            self._failed.add(nodeid)
            if reporter.isatty():
                reporter.rewrite("", erase=True)
            reporter.write_line(
                f"bench FAILED {nodeid}: what it timed was not correct, see the summary", red=True
            )
        elif not reporter.isatty():
            timing = (
                "skipped"
                if skipped
                else f"median {_format_seconds(median)}"
                if median is not None
                else "no timing"
            )
            reporter.write_line(
                f"bench [{self._position}/{self._total}] {self._elapsed()}  {nodeid}  {timing}"
            )

    def done(self) -> None:
        reporter = self._reporter
        if reporter is not None and reporter.isatty():
            reporter.rewrite(
                f"bench: {self._position} benchmarks in {self._elapsed()}", erase=True, bold=True
            )
            reporter.write_line("")


def pytest_collection_finish(session: pytest.Session) -> None:
    progress = session.config.stash.get(_PROGRESS, None)
    if progress is not None:
        progress.collected(len(session.items))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    del nextitem
    progress = item.config.stash.get(_PROGRESS, None)
    if progress is not None:
        progress.starting(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    outcomes = item.config.stash[_OUTCOMES]
    previous = outcomes.get(item.nodeid)
    if report.failed:
        outcomes[item.nodeid] = "failed"
    elif report.skipped and previous is None:
        outcomes[item.nodeid] = "skipped"
    elif report.when == "call" and previous is None:
        outcomes[item.nodeid] = "passed"
    progress = item.config.stash.get(_PROGRESS, None)
    if progress is not None and (report.when == "call" or report.failed or report.skipped):
        median = _median_of(item) if call.when == "call" else None
        progress.finished(item.nodeid, median, report.failed, skipped=report.skipped)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """With the progress line on, the per-test letters are hidden; the counts and the failure summary stay."""
    if _PROGRESS not in config.stash:
        return None
    if report.when == "call" or report.failed or report.skipped:
        return report.outcome, "", ""
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    progress = session.config.stash.get(_PROGRESS, None)
    if progress is not None:
        progress.done()


@pytest.hookimpl(wrapper=True)
def pytest_terminal_summary(terminalreporter: Any) -> Generator[None, None, None]:
    """A regression found by ``--benchmark-compare-fail`` fails the run with pytest-benchmark's own message
    (printed above) instead of a traceback."""
    try:
        yield
    except PerformanceRegression:
        session = terminalreporter._session
        if session is not None:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        terminalreporter.write_line(
            "bench: slower than the baseline beyond the threshold (see above)", red=True, bold=True
        )


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """Write each benchmark's test outcome beside its timings, for the report's *correct* column."""
    del benchmarks
    outcomes = config.stash.get(_OUTCOMES, {})
    for bench in output_json.get("benchmarks", ()):
        outcome = outcomes.get(bench.get("fullname", ""))
        if outcome is not None:
            extra = bench.setdefault("extra_info", {})
            extra.setdefault("outcome", outcome)
