"""Secret-leak scanning: everything the suite logged, printed or raised is searched for generated secrets.

Tests that see text outside the logging system (a subprocess's output, an HTTP body, a metrics page) pass it
to `observe()` so it is scanned too.
"""

from __future__ import annotations

import logging
from typing import Any

from tests.support.keys import SECRETS

_OBSERVED: list[tuple[str, str]] = []  # (where, text)
# Fragments shorter than this are too likely to occur by chance (e.g. in other base64) to call a leak.
_MIN_FRAGMENT = 16


def observe(text: str, where: str = "observed") -> None:
    if text:
        _OBSERVED.append((where, text))


class CapturingHandler(logging.Handler):
    """Keeps the formatted text of every record, including exception tracebacks and `extra` fields."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
            if extra:
                text += " " + repr(extra)
        except Exception as exc:  # a record that cannot format is itself worth scanning
            text = f"<unformattable record {record.msg!r} {record.args!r}: {exc!r}>"
        observe(text, f"log:{record.name}")


_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def observe_exception(exc: BaseException, where: str = "exception") -> None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        observe(f"{type(current).__name__}: {current!s} {current!r} {current.args!r}", where)
        current = current.__cause__ or current.__context__


def _fragments(secret: str) -> list[str]:
    secret = secret.strip()
    if len(secret) <= _MIN_FRAGMENT:
        return [secret] if len(secret) >= 8 else []
    # any window of the secret counts, so a truncated or partially-echoed secret is caught too
    step = _MIN_FRAGMENT // 2
    return [secret[i : i + _MIN_FRAGMENT] for i in range(0, len(secret) - _MIN_FRAGMENT + 1, step)]


def find_leaks() -> list[str]:
    fragments: dict[str, str] = {}
    for secret in SECRETS:
        for fragment in _fragments(secret):
            fragments[fragment] = secret[:4] + "…"
    leaks = []
    for where, text in _OBSERVED:
        for fragment in fragments:
            if fragment in text:
                leaks.append(f"{where}: contains a fragment of a generated secret")
                break
    return leaks


def observed_count() -> int:
    return len(_OBSERVED)


def record_report_sections(sections: list[tuple[str, str]], longrepr: Any) -> None:
    for title, content in sections:
        observe(content, title)
    if longrepr is not None:
        observe(str(longrepr), "failure report")
