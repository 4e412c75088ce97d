"""Clock offset between this host and the exchange, measured from its `/time` endpoint.

Coinbase judges a token's `nbf`/`exp` (and an HMAC timestamp) by its own clock, so the signer adds the offset
measured here. The server's time is taken to be that of the midpoint of the round trip; of a few samples the
one with the shortest round trip is kept (least queueing, least error).

The signer gets the lower bound of that estimate, not the midpoint: Coinbase refuses a token whose `nbf` is
ahead of its clock, while one dated a fraction of a second early costs nothing of its two-minute life.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson

from engine.errors import ExchangeError
from engine.net.transport import Transport
from engine.net.wire import ServerTime
from engine.ratelimit import EndpointClass

__all__ = ["ClockSample", "ClockSync", "offset_from"]

log = logging.getLogger("engine.net.clock")

# A re-measured offset that moved by at least this much explains a 401 as clock skew.
SKEW_THRESHOLD_S = 1.0
# Kept between the signing clock and the earliest the exchange's clock can be (timer and rounding slack).
SIGNING_GUARD_S = 0.05


@dataclass(frozen=True, slots=True)
class ClockSample:
    offset_s: float  # server time minus local time
    round_trip_s: float
    server_epoch_s: float

    @property
    def signing_offset_s(self) -> float:
        """The offset the signer uses: the server read its clock somewhere within the round trip, so the true
        offset may be up to half of it lower than `offset_s`; never sign ahead of the exchange's clock."""
        return self.offset_s - self.round_trip_s / 2.0 - SIGNING_GUARD_S


def offset_from(sent_at: float, received_at: float, server_epoch_s: float) -> ClockSample:
    """Offset assuming the server read its clock halfway through the round trip."""
    midpoint = (sent_at + received_at) / 2.0
    return ClockSample(server_epoch_s - midpoint, received_at - sent_at, server_epoch_s)


class ClockSync:
    """Measures the offset through `transport` and applies it to the key's signing clock."""

    def __init__(self, transport: Transport, path: str, *, samples: int = 3, timeout_s: float = 3.0) -> None:
        self.transport = transport
        self.path = path
        self.samples = max(1, samples)
        self.timeout_s = timeout_s
        self.last: ClockSample | None = None

    @property
    def offset_s(self) -> float:
        return self.last.offset_s if self.last is not None else 0.0

    @property
    def signing_offset_s(self) -> float:
        """What the key's `clock_offset` is set to (0 until measured: the local clock as it is)."""
        return self.last.signing_offset_s if self.last is not None else 0.0

    async def measure(self) -> ClockSample:
        """Take up to `samples` readings, keep the tightest, apply it. Raises what the transport raises."""
        best: ClockSample | None = None
        for _ in range(self.samples):
            sent_at = time.time()
            response = await self.transport.send(
                "GET", self.path, endpoint=EndpointClass.PUBLIC, timeout_s=self.timeout_s, signed=False
            )
            received_at = time.time()
            if response.status != 200:
                if best is not None:
                    break
                raise ExchangeError(f"GET {self.path} answered {response.status}", status=response.status)
            server = ServerTime.parse(orjson.loads(response.body))
            sample = offset_from(sent_at, received_at, server.epoch_seconds)
            if best is None or sample.round_trip_s < best.round_trip_s:
                best = sample
            if sample.round_trip_s < 0.005:  # as good as it gets on one host; spare the public pool
                break
        assert best is not None
        self.apply(best)
        return best

    def apply(self, sample: ClockSample) -> None:
        previous = self.offset_s
        self.last = sample
        self.transport.key.clock_offset = sample.signing_offset_s
        log.info(
            "clock offset to %s is %+.3fs (was %+.3fs; round trip %.1f ms; signing with %+.3fs)",
            self.transport.host,
            sample.offset_s,
            previous,
            sample.round_trip_s * 1000.0,
            sample.signing_offset_s,
        )
