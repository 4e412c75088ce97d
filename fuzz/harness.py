"""What every fuzz target shares: building a case from the fuzzer's bytes, the typed errors it may raise, and
the check that no error repeats the secret material of its input.

A target is a function `case(data, secret)` returning the call to make and the secret values in its input.
Every value in a secret position (a private key, an API secret, a passphrase, a bearer token, a signature)
passes through `secret` on its way into the input. The harness makes the call; an exception that is not one
of the target's documented types propagates, and atheris reports it as a crash with the input saved. A
documented error is checked for an echo: 8 or more consecutive characters of a secret value anywhere in its
message, repr, args, attributes or chained exceptions (the suite's criterion, `tests.support.hostile`).

An 8-character window can also match by coincidence, when the fuzzer has copied a field name or part of a
message into the secret itself (`privateKey` into the value of `privateKey`). So a hit is confirmed by
building the same case again with every secret value shifted (each letter and digit replaced by the next
one): a real echo repeats the shifted secret too; a coincidence does not, and is only counted. A window
with no letter or digit (`}}}}}}}}`) reads the same shifted, so it is counted as a coincidence too: the
secrets here (base64, hex, PEM, passwords) are letters and digits.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

from tests.support.hostile import ECHO_WINDOW, echoes_in
from tests.support.leaks import exception_text

T = TypeVar("T")
Secret = Callable[[str], str]
Case = tuple[Callable[[], object], list[str]]


class SecretEchoed(AssertionError):
    """A documented error repeated secret material of its input (the finding, reported as a crash)."""


_SHIFT = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "bcdefghijklmnopqrstuvwxyzaBCDEFGHIJKLMNOPQRSTUVWXYZA1234567890",
)


def identity(value: str) -> str:
    return value


def shift(value: str) -> str:
    """Every ASCII letter and digit replaced by the next one: the same shape, none of the same windows."""
    return value.translate(_SHIFT)


@dataclass
class Stats:
    """Counted over one run and printed at its end (libFuzzer prints the inputs and their rate)."""

    refused: dict[str, int] = field(default_factory=dict)  # documented error type -> inputs
    accepted: int = 0
    coincidences: int = 0  # unconfirmed 8-character matches, see the module docstring

    def summary(self) -> str:
        refused = ", ".join(f"{name} {count}" for name, count in sorted(self.refused.items()))
        return (
            f"FUZZ-STATS accepted={self.accepted} refused={sum(self.refused.values())} ({refused}) "
            f"coincidences={self.coincidences}"
        )


# Outcomes as coverage. The Rust parsers carry no coverage instrumentation, so the fuzzer cannot see which
# branch of the signing core an input reached; the error that came back says it, though. Each outcome (type,
# reason, message with its digits dropped) lands in one of `_BUCKETS` branches of a generated, instrumented
# function: an input with a new kind of refusal is new coverage, and kept.
_BUCKETS = 256


def _tree(low: int, high: int, depth: int) -> str:
    """Nested ifs halving [low, high): 8 comparisons to reach one of 256 distinct leaves."""
    pad = "    " * depth
    if high - low == 1:
        return f"{pad}return {low}\n"
    middle = (low + high) // 2
    below, above = _tree(low, middle, depth + 1), _tree(middle, high, depth + 1)
    return f"{pad}if bucket < {middle}:\n{below}{pad}else:\n{above}"


_namespace: dict[str, object] = {}
# generated from constants, not input
exec("def _outcome_edge(bucket):\n" + _tree(0, _BUCKETS, 1), _namespace)  # noqa: S102
_outcome_edge = cast(Callable[[int], int], _namespace["_outcome_edge"])


def _label(exc: BaseException | None) -> bytes:
    if exc is None:
        return b"accepted"
    text = f"{type(exc).__name__} {getattr(exc, 'reason', '')} {str(exc)[:120]}"
    return text.translate(str.maketrans("", "", "0123456789")).encode("utf-8", "replace")


def instrument() -> None:
    """Make outcomes count as coverage (call under atheris, before `atheris.Fuzz`)."""
    import atheris

    global _outcome_edge
    _outcome_edge = atheris.instrument_func(_outcome_edge)


def run_case(
    case: Callable[[bytes, Secret], Case],
    documented: tuple[type[BaseException], ...],
    data: bytes,
    stats: Stats,
) -> None:
    call, secrets = case(data, identity)
    try:
        call()
    except documented as exc:
        stats.refused[type(exc).__name__] = stats.refused.get(type(exc).__name__, 0) + 1
        _outcome_edge(zlib.crc32(_label(exc)) % _BUCKETS)
        if secrets and _may_echo(text := exception_text(exc), secrets) and echoes_in(text, *secrets):
            _confirm(case, documented, data, stats)
    else:
        stats.accepted += 1
        _outcome_edge(zlib.crc32(_label(None)) % _BUCKETS)


def _may_echo(text: str, secrets: list[str]) -> bool:
    """Whether any 8 characters of `text` occur in a secret: the quick test before the exact criterion."""
    secrets = [secret for secret in secrets if len(secret) >= ECHO_WINDOW]
    for window in {text[i : i + ECHO_WINDOW] for i in range(len(text) - ECHO_WINDOW + 1)}:
        for secret in secrets:
            if window in secret:
                return True
    return False


def _confirm(
    case: Callable[[bytes, Secret], Case],
    documented: tuple[type[BaseException], ...],
    data: bytes,
    stats: Stats,
) -> None:
    call, secrets = case(data, shift)
    try:
        call()
    except documented as exc:
        # a window of punctuation alone is the same shifted or not, so it cannot confirm anything
        leaked = [w for w in echoes_in(exception_text(exc), *secrets) if w != shift(w)]
        if leaked:
            raise SecretEchoed(
                f"{type(exc).__name__} repeats {len(leaked)} windows of the input's secret"
            ) from None
    stats.coincidences += 1


def main(
    case: Callable[[bytes, Secret], Case],
    documented: tuple[type[BaseException], ...],
    argv: Sequence[str] | None = None,
) -> None:
    """Fuzz `case` under atheris with libFuzzer's command line (`-runs=N`, corpus directories)."""
    import atheris

    args = list(argv if argv is not None else sys.argv)
    # libFuzzer ends the process with C's exit(), past Python's atexit: the count is printed on the way
    runs = next((int(a.split("=", 1)[1]) for a in args if a.startswith("-runs=")), 0)
    stats = Stats()
    seen = 0

    def one_input(data: bytes) -> None:
        nonlocal seen
        run_case(case, documented, data, stats)
        seen += 1
        if seen == runs or seen % 100_000 == 0:
            print(stats.summary(), file=sys.stderr, flush=True)

    instrument()
    atheris.Setup(args, one_input)
    atheris.Fuzz()


# ---- drawing values from the fuzzer's bytes ----------------------------------------------------------------
class Draw:
    """The fuzzer's bytes as the values a case is built from (atheris' FuzzedDataProvider, plus damage)."""

    def __init__(self, data: bytes) -> None:
        import atheris

        self._fdp = atheris.FuzzedDataProvider(data)

    def pick(self, options: Sequence[T]) -> T:
        return options[self._fdp.ConsumeIntInRange(0, len(options) - 1)]

    def int(self, low: int, high: int) -> int:
        return int(self._fdp.ConsumeIntInRange(low, high))

    def flag(self) -> bool:
        return bool(self._fdp.ConsumeBool())

    def float(self) -> float:
        return float(self._fdp.ConsumeFloat())

    def text(self, max_chars: int = 64) -> str:
        """Any text, lone surrogates included (what a header or a hand-edited file can hand over)."""
        return str(self._fdp.ConsumeUnicode(self.int(0, max_chars)))

    def ascii(self, max_chars: int = 64) -> str:
        return bytes(b & 0x7F for b in self.bytes(max_chars)).decode("ascii")

    def bytes(self, max_bytes: int = 64) -> bytes:
        return bytes(self._fdp.ConsumeBytes(self.int(0, max_bytes)))

    def rest(self) -> bytes:
        return bytes(self._fdp.ConsumeBytes(self._fdp.remaining_bytes()))

    def damage(self, value: str) -> str:
        """`value` cut, with text spliced in, repeated or padded, or as it is."""
        how = self.int(0, 5)
        if how == 0:
            return value
        if how == 1:
            return value[: self.int(0, len(value))]
        if how == 2:
            at = self.int(0, len(value))
            return value[:at] + self.text(8) + value[at:]
        if how == 3:
            return value * self.int(2, 12)
        if how == 4:
            at = self.int(0, max(len(value) - 1, 0))
            return value[:at] + value[at + 1 :]
        # mostly a little; now and then past the 16 KiB every loader caps a key at
        size = self.int(1, 64) if self.flag() else self.pick([4_096, 16_383, 16_384, 16_385, 65_537])
        return value + self.pick(["A", " ", "\n", "\\n", "="]) * size
