"""The leak scanner itself must catch a leak, or its silence proves nothing."""

import json
import logging
from collections.abc import Callable

from engine.errors import KeyFormatError
from tests.support import keys, leaks


def test_scanner_detects_a_logged_secret_fragment() -> None:
    key = keys.new_ed25519_key()
    text = f"oops {key.private_key[5:40]} end"
    before = len(leaks._OBSERVED)
    leaks._OBSERVED.append(("probe", text))
    try:
        assert leaks.find_leaks(), "the scanner missed a planted secret fragment"
    finally:
        del leaks._OBSERVED[before:]
    assert not leaks.find_leaks()


def test_scanner_sees_log_records() -> None:
    before = leaks.observed_count()
    logging.getLogger("engine.test").info("harmless line")
    assert leaks.observed_count() > before


def _leaks_of(exc: BaseException) -> list[str]:
    """What the scan says of `exc` alone; the probe is removed again, so the session's scan stays clean."""
    before = len(leaks._OBSERVED)
    try:
        leaks.observe_exception(exc, "probe")
        return [leak for leak in leaks.find_leaks() if leak.startswith("probe")]
    finally:
        del leaks._OBSERVED[before:]


def _secret() -> str:
    return keys.new_exchange_key().secret


def _raised(make: Callable[[], BaseException]) -> BaseException:
    try:
        raise make()
    except BaseException as exc:
        return exc


def test_scanner_reads_args_and_repr_that_str_does_not_show() -> None:
    secret = _secret()
    # what PyO3 raised for a key with a lone surrogate: str() names a position, args hold the whole key
    exc = _raised(lambda: UnicodeEncodeError("utf-8", secret + "\udcff", len(secret), len(secret) + 1, "x"))
    assert secret[:16] not in str(exc)
    assert _leaks_of(exc)


def test_scanner_follows_a_context_suppressed_by_raise_from_none() -> None:
    secret = _secret()

    def from_none() -> KeyFormatError:
        try:
            json.loads('{"privateKey": "' + secret + '"')  # truncated: JSONDecodeError keeps it in .doc
        except ValueError:
            try:
                raise KeyFormatError("not JSON") from None
            except KeyFormatError as clean_message:
                return clean_message
        raise AssertionError("the document was valid JSON")

    exc = from_none()
    assert exc.__suppress_context__
    assert secret[:16] not in f"{exc} {exc!r} {exc.args!r}"
    assert _leaks_of(exc), "a suppressed __context__ still holds the document and must be scanned"


def test_scanner_follows_cause_and_context_both() -> None:
    secret = _secret()
    exc = RuntimeError("outer")
    exc.__cause__ = ValueError("harmless cause")
    exc.__context__ = ValueError("context", secret)
    assert _leaks_of(exc)


def test_scanner_reads_exception_groups_notes_and_attributes() -> None:
    secret = _secret()
    group = ExceptionGroup("several", [ValueError("fine"), KeyError(secret)])
    assert _leaks_of(group)
    noted = ValueError("fine")
    noted.add_note(f"while loading {secret}")
    assert _leaks_of(noted)
    carrying = ValueError("fine")
    carrying.secret_material = secret.encode()  # type: ignore[attr-defined]
    assert _leaks_of(carrying)


def test_scanner_reads_a_logged_exception_beyond_its_traceback_text() -> None:
    secret = _secret()
    exc = _raised(lambda: UnicodeEncodeError("utf-8", secret, 0, 1, "surrogates not allowed"))
    before = len(leaks._OBSERVED)
    try:
        record = logging.LogRecord(
            "engine.probe", logging.ERROR, __file__, 1, "failed", None, (type(exc), exc, None)
        )
        leaks.CapturingHandler().handle(record)
        assert any(where.endswith("exception") for where, _ in leaks._OBSERVED[before:])
        assert leaks.find_leaks()
    finally:
        del leaks._OBSERVED[before:]


def test_clean_exceptions_are_not_called_leaks() -> None:
    secret = _secret()
    exc = _raised(lambda: KeyFormatError("the Exchange API secret is not base64: copy it again"))
    assert secret
    assert not _leaks_of(exc)
