"""Secret-leak scanning: everything the suite logged, printed or raised is searched for generated secrets.

Exceptions are scanned whole (`observe_exception`): message, `repr`, `args`, attributes, and every exception
chained to them, for each one a test raised, expected with `pytest.raises`, or that was logged.

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
        if record.exc_info and record.exc_info[1] is not None:
            # the formatted traceback shows only str(exc); a reporter would also record args and repr
            observe_exception(record.exc_info[1], f"log:{record.name} exception")
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
    """Scan what any error reporter could record of `exc` (see `exception_text`)."""
    observe(exception_text(exc), where)


def exception_text(exc: BaseException) -> str:
    """Everything `exc` holds as text: message, `repr`, `args`, notes, the text and bytes in its attributes (a
    `JSONDecodeError` keeps the whole document in `.doc`, a `UnicodeError` the whole string in `.object`), and
    the same for every exception reachable from it: `__cause__` and `__context__` (also when suppressed by
    `raise ... from None`: the object still holds it), an exception group's members.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    described: list[str] = []
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        described.append(_describe(current))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
    return "\n".join(described)


def _describe(exc: BaseException) -> str:
    parts = [type(exc).__name__]
    for show in (str, repr):
        try:
            parts.append(show(exc))
        except Exception as failed:  # a broken __str__ must not hide the rest
            parts.append(f"<{show.__name__} failed: {type(failed).__name__}>")
    parts.append(repr(exc.args))
    parts.extend(repr(note) for note in getattr(exc, "__notes__", ()))
    attributes = getattr(exc, "__dict__", {})
    parts.extend(f"{name}={value!r}" for name, value in attributes.items() if isinstance(value, str | bytes))
    # builtin exceptions keep some fields in slots rather than __dict__
    for name in ("object", "doc", "filename", "filename2", "msg", "text", "name", "path"):
        value = getattr(exc, name, None)
        if isinstance(value, str | bytes) and name not in attributes:
            parts.append(f"{name}={value!r}")
    return " ".join(parts)


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
