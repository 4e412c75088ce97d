"""Client order ids: unique, at most 128 characters, traceable to the worker that made them.

An id is `<prefix>-<boot>-<counter>`: the prefix names the worker, `boot` is 64 random bits drawn once when
the generator is built (so two runs, or two processes with the same prefix, never collide), and the counter is
a plain in-process integer. Making an id is one `next()` and one string format: no system call on the
hot path.

A venue that takes only UUIDs (Coinbase Exchange's `client_oid`) gets ids in UUID form instead,
`uuid=True`: 18 random hex digits drawn once (`boot`, with the version-4 and variant digits fixed), then a
12-digit hex counter. Such an id cannot carry the worker's prefix.
"""

from __future__ import annotations

import itertools
import re
import secrets

MAX_CLIENT_ORDER_ID_LENGTH = 128  # Coinbase's limit on `client_order_id`
_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.]{1,64}")  # no '-': it separates the id's parts
_BOOT_HEX_DIGITS = 16
_UUID_BOOT_HEX_DIGITS = 18  # of the 32: one is the version (4), one the variant (8), 12 the counter


class ClientOrderIds:
    """Makes client order ids for one worker. `ids.next()` is the hot-path call."""

    __slots__ = ("_counter", "_stem", "_uuid", "boot", "prefix")

    def __init__(self, prefix: str = "eng", *, boot: str | None = None, uuid: bool = False) -> None:
        if not _PREFIX_PATTERN.fullmatch(prefix):
            raise ValueError("client order id prefix must be 1-64 characters of [A-Za-z0-9_.] (no '-')")
        if uuid:
            if boot is None:
                boot = secrets.token_hex(_UUID_BOOT_HEX_DIGITS // 2 + 1)[:_UUID_BOOT_HEX_DIGITS]
            elif not re.fullmatch(f"[0-9a-f]{{{_UUID_BOOT_HEX_DIGITS}}}", boot):
                raise ValueError(f"a UUID id's boot must be {_UUID_BOOT_HEX_DIGITS} lowercase hex digits")
            stem = f"{boot[:8]}-{boot[8:12]}-4{boot[12:15]}-8{boot[15:18]}-"
        else:
            if boot is None:
                boot = secrets.token_hex(_BOOT_HEX_DIGITS // 2)
            elif not re.fullmatch(r"[0-9a-f]{1,32}", boot):
                raise ValueError("boot must be 1-32 lowercase hex digits")
            stem = f"{prefix}-{boot}-"
        self.prefix = prefix
        self.boot = boot
        self._stem = stem
        self._uuid = uuid
        self._counter = itertools.count(1)

    def next(self) -> str:
        """A fresh client order id. The counter is hex, so even 2**64 orders stay far below 128 characters
        (in UUID form, 2**48 orders a run)."""
        if self._uuid:
            return f"{self._stem}{next(self._counter):012x}"
        return f"{self._stem}{next(self._counter):x}"

    def minted(self, client_order_id: str) -> bool:
        """Whether this generator made the id, so it is new to every journal (its `boot` is this run's)."""
        return client_order_id.startswith(self._stem)

    def __repr__(self) -> str:
        return f"ClientOrderIds(prefix={self.prefix!r}, boot={self.boot!r})"


def worker_of(client_order_id: str) -> str | None:
    """The worker prefix an id was made by, or None when the id was not made by `ClientOrderIds`."""
    parts = client_order_id.split("-")
    if len(parts) != 3 or not _PREFIX_PATTERN.fullmatch(parts[0]):
        return None
    return parts[0]
