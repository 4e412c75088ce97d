"""The leak scanner itself must catch a leak, or its silence proves nothing."""

import logging

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
