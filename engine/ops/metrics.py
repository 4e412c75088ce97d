"""Prometheus metrics for one worker, in a registry of its own (never the global one), so two workers in a
process, or two tests, never share counters.

Labels are closed sets (an outcome, a risk rule, a result): never a product id from a signal, a key name or
anything else a sender controls, so a metric page cannot carry a secret or grow without bound.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "EngineMetrics", "LatencySamples"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SLOW = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Callbacks(Collector):
    """Values owned by other components (limiter, signer pool, WebSocket, journal), read at scrape time."""

    def __init__(self) -> None:
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.counters: dict[str, tuple[str, Callable[[], float]]] = {}

    def collect(self) -> Iterable[Metric]:
        for name, (doc, read) in self.gauges.items():
            yield GaugeMetricFamily(name, doc, value=_read(read))
        for name, (doc, read) in self.counters.items():
            yield CounterMetricFamily(name, doc, value=_read(read))


def _read(read: Callable[[], float]) -> float:
    try:
        return float(read())
    except Exception:  # a broken source must not take the whole page down
        return float("nan")


class EngineMetrics:
    """Every metric the worker exports. Counters are updated where the event happens; values other
    components already count (the limiter's 429s and wait time, the signer's pre-mint pool, the journal's
    pending writes) are bound with `observe_gauge` / `observe_counter` and read at scrape time."""

    def __init__(self, namespace: str = "engine") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ns, r = namespace, self.registry
        self.signals = Counter(
            "signals", "Signals received, by outcome (accepted, invalid, unauthenticated, replayed, full)",
            ["outcome"], namespace=ns, registry=r,
        )  # fmt: skip
        self.orders = Counter(
            "orders", "Order requests, by outcome (acknowledged, rejected, failed, unknown, dry_run)",
            ["outcome"], namespace=ns, registry=r,
        )  # fmt: skip
        self.fills = Counter("fills", "Fills seen on the engine's orders", namespace=ns, registry=r)
        self.refusals = Counter(
            "risk_refusals", "Orders refused by the risk gate, by rule", ["rule"], namespace=ns, registry=r
        )
        self.cancels = Counter(
            "cancels", "Orders cancelled by the worker, by reason", ["reason"], namespace=ns, registry=r
        )
        self.key_reloads = Counter(
            "credential_reloads", "Credential reloads (SIGHUP), by result (rotated, kept_old_key)",
            ["result"], namespace=ns, registry=r,
        )  # fmt: skip
        self.signal_to_ack = Histogram(
            "signal_to_ack_seconds", "From a signal's arrival to the exchange acknowledging its order",
            namespace=ns, registry=r, buckets=_SLOW,
        )  # fmt: skip
        self.order_request = Histogram(
            "order_request_seconds", "Placing an order: risk check, journal intent, request to response",
            namespace=ns, registry=r, buckets=_SLOW,
        )  # fmt: skip
        self.signing = Histogram(
            "signing_seconds", "Time to obtain a signed token", namespace=ns, registry=r, buckets=_FAST
        )
        self.queue_depth = Gauge("signal_queue_depth", "Signals waiting", namespace=ns, registry=r)
        self.in_flight = Gauge("orders_in_flight", "Signals being worked now", namespace=ns, registry=r)
        self.open_orders = Gauge("open_orders", "Orders the engine knows open", namespace=ns, registry=r)
        self.clock_offset = Gauge(
            "clock_offset_seconds", "Exchange clock minus local clock", namespace=ns, registry=r
        )
        self.up = Gauge("worker_running", "1 while the worker accepts signals", namespace=ns, registry=r)
        self._callbacks = _Callbacks()
        self._namespace = namespace
        self.registry.register(self._callbacks)

    def observe_gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Export `read()` as the gauge `<namespace>_<name>` (e.g. premint_pool_depth, journal_pending)."""
        self._callbacks.gauges[f"{self._namespace}_{name}"] = (documentation, read)

    def observe_counter(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Export a count another component keeps (e.g. websocket_gaps) as a counter."""
        self._callbacks.counters[f"{self._namespace}_{name}"] = (documentation, read)

    def render(self) -> bytes:
        """The Prometheus text exposition of this worker's registry."""
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """One sample's current value (0 when absent): for summaries and tests."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found

    def labelled(self, name: str, label: str) -> dict[str, float]:
        """`{label value: count}` of a labelled counter: `labelled("engine_risk_refusals_total", "rule")`."""
        result: dict[str, float] = {}
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name == name and label in sample.labels:
                    result[sample.labels[label]] = sample.value
        return result


class LatencySamples:
    """A bounded uniform sample (reservoir) of latencies for exact-enough percentiles in summaries;
    Prometheus histograms only keep buckets."""

    def __init__(self, capacity: int = 100_000, seed: int = 0) -> None:
        self._capacity = capacity
        self._values: list[float] = []
        self._seen = 0
        self._rng = random.Random(seed)

    def add(self, seconds: float) -> None:
        self._seen += 1
        if len(self._values) < self._capacity:
            self._values.append(seconds)
            return
        slot = self._rng.randrange(self._seen)
        if slot < self._capacity:
            self._values[slot] = seconds

    def __len__(self) -> int:
        return self._seen

    def percentiles(self, quantiles: Sequence[float] = (0.5, 0.9, 0.99)) -> dict[float, float]:
        """Nearest-rank percentiles in seconds; empty when no sample was taken."""
        ordered = sorted(self._values)
        if not ordered:
            return {}
        result = {}
        for q in quantiles:
            rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
            result[q] = ordered[rank - 1]
        return result
