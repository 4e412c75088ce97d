"""The reliability suite's summary: the counts its tests record, printed once at the end of the run."""

from __future__ import annotations

import pytest

SUMMARY: list[str] = []


def record(line: str) -> None:
    """One line for the end-of-run summary (what the integrator quotes)."""
    SUMMARY.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("hostile requests")
        for line in SUMMARY:
            terminalreporter.write_line(line)
