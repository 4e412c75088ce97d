"""Suite-wide hooks: the secret-leak scan over everything the suite logged, printed and raised."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import chaos, leaks

_handler = leaks.CapturingHandler()
_original_raises: Callable[..., Any] = pytest.raises


class _RecordingRaises:
    """Wraps `pytest.raises(...)` so every exception a test expected is scanned as well."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __enter__(self) -> Any:
        return self._inner.__enter__()

    def __exit__(self, *exc_info: Any) -> Any:
        if exc_info[1] is not None:  # before the inner check, which raises when the type or match is wrong
            leaks.observe_exception(exc_info[1], "pytest.raises")
        return self._inner.__exit__(*exc_info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _recording_raises(*args: Any, **kwargs: Any) -> Any:
    result = _original_raises(*args, **kwargs)
    if len(args) > 1:  # the call form: pytest.raises(E, func, *args) returns ExceptionInfo
        leaks.observe_exception(result.value, "pytest.raises")
        return result
    return _RecordingRaises(result)


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(_handler)
    root.setLevel(logging.DEBUG)
    pytest.raises = _recording_raises  # type: ignore[assignment]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None:
        leaks.observe_exception(call.excinfo.value, f"{item.nodeid} ({call.when})")
    leaks.record_report_sections(report.sections, report.longrepr)
    if report.failed and item.get_closest_marker("chaos") is not None:
        report.sections.append(("chaos", chaos.replay_hint()))
    return report


# Under pytest-xdist each worker scans what it saw and hands its findings to the controller, which reports
# for the whole run and fails it on any leak.
_from_workers: dict[str, Any] = {"leaks": [], "observed": 0, "secrets": 0}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    output = getattr(node, "workeroutput", {})
    _from_workers["leaks"].extend(output.get("secret_leaks", []))
    _from_workers["observed"] += output.get("secret_observed", 0)
    _from_workers["secrets"] += output.get("secret_count", 0)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = list(leaks.find_leaks())
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput["secret_leaks"] = found
        workeroutput["secret_observed"] = leaks.observed_count()
        workeroutput["secret_count"] = len(leaks.SECRETS)
        return
    found += _from_workers["leaks"]
    observed = leaks.observed_count() + _from_workers["observed"]
    secrets = len(leaks.SECRETS) + _from_workers["secrets"]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if found:
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("=", "SECRET MATERIAL LEAKED", red=True)
            for line in sorted(set(found)):
                reporter.write_line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(
            f"secret scan: {observed} logs/outputs/exceptions scanned for {secrets} generated secrets, "
            "none leaked"
        )
