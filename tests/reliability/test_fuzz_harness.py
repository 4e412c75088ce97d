"""The fuzz harness's own judgement (fuzz/harness.py): an echo of a secret is a finding, a coincidence is
only counted, and an undocumented exception escapes, so the fuzz run's "0 findings" can fail."""

from __future__ import annotations

import pytest

from fuzz.harness import Case, Secret, SecretEchoed, Stats, run_case, shift


def _echoing(data: bytes, secret: Secret) -> Case:
    value = secret(data.decode())

    def call() -> object:
        raise ValueError(f"bad key {value!r}")  # what a careless parser does

    return call, [value]


def _coincidence(data: bytes, secret: Secret) -> Case:
    value = secret(data.decode())

    def call() -> object:
        raise ValueError("the privateKey field must be a string")  # fixed text the input happens to hold

    return call, [value]


def test_an_error_repeating_the_secret_is_a_finding() -> None:
    with pytest.raises(SecretEchoed):
        run_case(_echoing, (ValueError,), b"c2VjcmV0LWtleS1tYXRlcmlhbA", Stats())


def test_an_error_repeating_fixed_text_the_secret_holds_is_counted_not_reported() -> None:
    stats = Stats()
    run_case(_coincidence, (ValueError,), b'{"privateKey field": 1}', stats)
    assert stats.coincidences == 1
    assert stats.refused == {"ValueError": 1}


def _punctuation(data: bytes, secret: Secret) -> Case:
    value = secret(data.decode())

    def call() -> object:
        raise ValueError("refused ({'reason': '}}}}}}}}}}'})")  # another field's text, the same punctuation

    return call, [value]


def test_a_window_of_punctuation_alone_is_a_coincidence() -> None:
    stats = Stats()
    run_case(_punctuation, (ValueError,), b"}" * 40, stats)
    assert stats.coincidences == 1


def test_an_undocumented_exception_escapes() -> None:
    with pytest.raises(ValueError, match="bad key"):
        run_case(_echoing, (KeyError,), b"anything-at-all", Stats())


def test_shift_keeps_the_shape_and_changes_every_window() -> None:
    assert shift("az-AZ_09/+=") == "ba-BA_10/+="
