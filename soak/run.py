"""`make soak`: a long stream of orders through the Engine against the simulator, watched for growth and loss.

    python -m soak.run --orders 1000000 --duration 3600 --out .soak

The simulator runs as its own process (`engine sim` on 127.0.0.1), so this process's resident memory and
descriptors are the engines' alone. Each leg (`soak.legs`) runs `--keys` engines, one API key and one journal
each, `--in-flight` orders at a time per engine; the simulator's rate limits stay on at `--private-rate` per
key (the client's token bucket keeps the same budget) and its faults are on at `--fault-rate`: 5xx answers,
connections dropped after the order was accepted, slow responses, WebSocket drops and gaps.

Every `--sample` seconds: RSS, open descriptors, orders per second and ack-latency percentiles. At the end,
every engine cancels what is left and stops, and each journal is compared with the simulator's ledger: an
order the simulator accepted that a journal does not hold is lost, one it holds twice is duplicated, and one
whose id or state differ is mismatched. Exit status 0 only if none is, no 429 was earned within the budget,
descriptors came back to where they were, and RSS after warm-up drifted less than `--max-drift`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from engine.errors import EngineError, OrderRejected
from engine.net.retry import Backoff
from engine.risk import RiskConfig
from engine.trading.engine import Engine, EngineConfig
from engine.trading.ids import worker_of
from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from soak.gauges import LatencyWindow, Sample, open_fds, percentile, rss_bytes
from soak.legs import LEGS, Credential, Leg, Limits
from soak.plot import svg

_READY = "engine sim listening on "
_NEVER_PLACED = (OrderState.NOT_PLACED, OrderState.REJECTED)


@dataclass(frozen=True)
class SoakOptions:
    orders: int = 1_000_000
    duration_s: float = 3600.0  # the run stops at whichever of the two comes first
    legs: tuple[str, ...] = ("advanced_spot", "advanced_futures")
    keys: int = 4  # per leg: one engine, journal and rate budget each
    in_flight: int = 8  # orders at a time per engine
    private_rate: float = 250.0  # requests/s per key, simulator and client alike
    public_rate: float = 200.0  # requests/s, the simulator's per IP and each client's
    fault_rate: float = 0.001
    slow_response_s: float = 0.2
    sample_s: float = 2.0
    warmup: float = 0.2  # the first fraction of the orders, before the RSS baseline is taken
    # each journal's exact window of recent client_order_ids (EngineConfig.journal_recent_ids): memory grows
    # by design until it is full, so it must fill within the warm-up for the drift after it to mean anything
    recent_ids: int = 10_000
    max_drift: float = 0.05
    seed: int = 7
    out: Path | None = None  # report.json, soak.svg, soak.html; None: a temporary directory


@dataclass
class Tally:
    placed: int = 0  # place() calls made
    acknowledged: int = 0
    rejected: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # outcome unknown to the caller, by error type
    cancels: int = 0
    cancel_errors: int = 0


@dataclass
class Verdict:
    ledger_orders: int
    journal_orders: int
    lost: int
    duplicated: int
    mismatched: int
    unresolved: int
    examples: list[str]


@dataclass
class SoakReport:
    options: dict[str, Any]
    elapsed_s: float
    tally: dict[str, Any]
    verdict: dict[str, Any]
    samples: list[dict[str, Any]]
    rss_baseline: int
    rss_max_after_warmup: int
    rss_drift: float | None  # None: too few samples after warm-up to judge
    fds_before: int
    fds_after: int
    fds_baseline: int
    fds_max_after_warmup: int
    rate_limited: int  # 429s the simulator served within its limits (the engines' fault)
    injected: dict[str, int]
    ws: dict[str, Any]
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures


# == the simulator, in its own process ===================================================================


@contextlib.contextmanager
def simulator(flags: Sequence[str], log_path: Path) -> Iterator[str]:
    """`engine sim` on a free loopback port; yields its base URL, stops it with SIGTERM."""
    with log_path.open("w") as errors:
        process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
            [sys.executable, "-m", "engine", "sim", "--port", "0", *flags],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith(_READY):
                raise RuntimeError(f"engine sim did not start ({line!r}); see {log_path}")
            yield line[len(_READY) :].strip()
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _get(url: str, timeout: float = 60.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the simulator, on loopback)
        return orjson.loads(response.read())


def sim_flags(options: SoakOptions, credentials: Sequence[Credential]) -> list[str]:
    rate = options.fault_rate
    flags = [
        "--seed",
        str(options.seed),
        "--private-rate",
        str(options.private_rate),
        "--public-rate",
        str(options.public_rate),
        "--error-5xx-rate",
        str(rate),
        "--drop-after-accept-rate",
        str(rate),
        "--slow-response-rate",
        str(rate),
        "--slow-response-s",
        str(options.slow_response_s),
        "--ws-drop-rate",
        str(rate / 10),  # per message, and messages outnumber requests
        "--ws-gap-rate",
        str(rate),
    ]
    for credential in credentials:
        flags += credential.sim_flags
    return flags


# == the engines =========================================================================================


class OrderBudget:
    """How many orders are left to place, over every engine, until the deadline."""

    def __init__(self, orders: int, deadline: float) -> None:
        self.left = orders
        self.deadline = deadline

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() >= self.deadline:
            return False
        self.left -= 1
        return True


async def _trader(
    engine: Engine, leg: Leg, numbers: Iterator[int], budget: OrderBudget, window: LatencyWindow, tally: Tally
) -> None:
    while budget.take():
        order = leg.order(next(numbers))
        tally.placed += 1
        started = time.perf_counter()
        try:
            tracked = await engine.place(
                order.product_id, order.side, order.configuration, leverage=order.leverage
            )
        except OrderRejected:
            tally.rejected += 1
            continue
        except (EngineError, OSError, TimeoutError) as error:  # tracked UNKNOWN: the engine resolves it
            tally.errors[type(error).__name__] += 1
            continue
        window.add(time.perf_counter() - started)
        tally.acknowledged += 1
        if order.rests and tracked.is_open:
            tally.cancels += 1
            try:
                await engine.cancel(tracked)
            except (EngineError, OSError, TimeoutError):
                tally.cancel_errors += 1  # still open: the final cancel_all takes it


def _engine_config(leg: Leg, index: int, workdir: Path, recent_ids: int) -> EngineConfig:
    return EngineConfig(
        journal_path=workdir / f"{leg.name}-{index}.db",
        worker=f"{leg.name}.{index}",
        # market data on each leg's first engine: the others would only multiply the same messages
        products=leg.products if index == 0 else (),
        market_channels=("level2", "ticker"),
        risk=RiskConfig(check_balance=False),
        housekeeping_s=0.25,
        unknown_grace_s=1.0,
        ws_backoff=Backoff(initial=0.02, maximum=0.5),
        journal_recent_ids=recent_ids,
    )


async def _settle_everything(engine: Engine, within_s: float = 60.0) -> None:
    """Cancel what is open, then wait (bounded) until every order the engine tracks has ended."""
    with contextlib.suppress(EngineError, OSError, TimeoutError):
        await engine.cancel_all()
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        live = [o for o in engine.orders.values() if not o.state.is_terminal]
        if not live:
            return
        if any(o.is_open for o in live):
            with contextlib.suppress(EngineError, OSError, TimeoutError):
                await engine.cancel_all()
        await asyncio.sleep(0.25)


async def _sample(
    started: float,
    budget_total: int,
    budget: OrderBudget,
    window: LatencyWindow,
    samples: list[Sample],
    every_s: float,
    last: list[float],
) -> None:
    now = time.monotonic()
    latencies = window.take()
    done = budget_total - budget.left
    elapsed = now - last[0]
    samples.append(
        Sample(
            at_s=round(now - started, 3),
            orders=done,
            rss=rss_bytes(),
            fds=open_fds(),
            throughput=round((done - last[1]) / elapsed, 1) if elapsed > 0 else 0.0,
            p50_ms=round(percentile(latencies, 0.50) * 1000, 3),
            p99_ms=round(percentile(latencies, 0.99) * 1000, 3),
            max_ms=round((latencies[-1] if latencies else 0.0) * 1000, 3),
        )
    )
    last[0], last[1] = now, done
    s = samples[-1]
    print(
        f"{s.at_s:8.1f}s {s.orders:>9} orders {s.throughput:8.1f}/s  p50 {s.p50_ms:7.2f} ms  "
        f"p99 {s.p99_ms:7.2f} ms  max {s.max_ms:8.2f} ms  rss {s.rss / 2**20:7.1f} MiB  fds {s.fds}",
        flush=True,
    )


async def _run_engines(
    options: SoakOptions, base_url: str, legs: Sequence[tuple[Leg, list[Credential]]], workdir: Path
) -> tuple[Tally, list[Sample], int, int, float]:
    limits = Limits(options.private_rate, options.public_rate)
    tally = Tally()
    window = LatencyWindow()
    samples: list[Sample] = []
    # One engine started and stopped first, placing nothing: the event loop opens a descriptor of its own the
    # first time (uvloop's libuv keeps /dev/null open from then on), which is not the engines' to give back.
    async with contextlib.AsyncExitStack() as stack:
        leg, credentials = legs[0]
        venue = await leg.venue(stack, base_url, credentials[0], limits)
        primer = replace(
            _engine_config(leg, 0, workdir, options.recent_ids),
            journal_path=workdir / "primer.db",
            worker="primer",
        )
        await stack.enter_async_context(Engine(config=primer, venue=venue))
    fds_before = open_fds()
    started = time.monotonic()
    budget = OrderBudget(options.orders, started + options.duration_s)
    async with contextlib.AsyncExitStack() as stack:
        engines: list[tuple[Leg, Engine]] = []
        for leg, credentials in legs:
            for index, credential in enumerate(credentials):
                venue = await leg.venue(stack, base_url, credential, limits)
                engine = Engine(config=_engine_config(leg, index, workdir, options.recent_ids), venue=venue)
                await stack.enter_async_context(engine)
                engines.append((leg, engine))
        traders = []
        for leg, engine in engines:
            numbers = iter(range(1 << 62))  # one flow per engine, its traders taking turns
            for _ in range(options.in_flight):
                traders.append(asyncio.create_task(_trader(engine, leg, numbers, budget, window, tally)))
        last = [time.monotonic(), 0.0]
        running = asyncio.gather(*traders)
        while not running.done():
            await asyncio.wait([running], timeout=options.sample_s)
            await _sample(started, options.orders, budget, window, samples, options.sample_s, last)
        await running
        await asyncio.gather(*(_settle_everything(engine) for _, engine in engines))
        elapsed = time.monotonic() - started
    fds_after = open_fds()
    return tally, samples, fds_before, fds_after, elapsed


# == the verdict =========================================================================================


def ledger_entries(base_url: str, page: int = 50_000) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        body = _get(f"{base_url}/sim/ledger?offset={offset}&limit={page}")
        yield from body["orders"]
        offset += body["count"]
        if body["count"] < page:
            return


def _leg_of(client_order_id: str, legs: Sequence[Leg]) -> Leg | None:
    """The leg whose engine made the id: `<leg>.<engine>-<boot>-<counter>` (engine.trading.ids)."""
    worker = worker_of(client_order_id)
    name = worker.rsplit(".", 1)[0] if worker else None
    return next((leg for leg in legs if leg.name == name), None)


def verify(base_url: str, journal_paths: Sequence[Path], legs: Sequence[Leg]) -> Verdict:
    """Every journal against the simulator's ledger: lost, duplicated, mismatched, unresolved. Each leg
    reads its venue's ledger entries into a state."""
    journalled: dict[str, tuple[OrderState, str | None]] = {}
    unresolved = 0
    for path in journal_paths:
        with OrderJournal(path) as journal:
            for entry in journal.entries():
                journalled[entry.client_order_id] = (entry.state, entry.order_id)
            unresolved += len(journal.unresolved())
    seen: set[str] = set()
    duplicated = lost = mismatched = ledger_orders = 0
    examples: list[str] = []
    for entry in ledger_entries(base_url):
        ledger_orders += 1
        client_order_id = str(entry["client_order_id"])
        if client_order_id in seen:
            duplicated += 1
            examples.append(f"placed twice: {client_order_id}")
            continue
        seen.add(client_order_id)
        ours = journalled.get(client_order_id)
        if ours is None:
            lost += 1
            examples.append(f"accepted but not journalled: {client_order_id}")
            continue
        state, order_id = ours
        leg = _leg_of(client_order_id, legs)
        expected = leg.ledger_state(entry) if leg is not None else None
        if state is not expected or order_id != entry["order_id"]:
            mismatched += 1
            examples.append(
                f"{client_order_id}: journal {state.value} {order_id}, "
                f"ledger {entry['status']} {entry['order_id']}"
            )
    for client_order_id, (state, _) in journalled.items():
        if state not in _NEVER_PLACED and not state.is_unresolved and client_order_id not in seen:
            lost += 1  # the journal says it was placed, the exchange never had it
            examples.append(f"journalled {state.value} but not on the exchange: {client_order_id}")
    return Verdict(ledger_orders, len(journalled), lost, duplicated, mismatched, unresolved, examples[:20])


def judge(report: SoakReport, options: SoakOptions) -> list[str]:
    failures = []
    v = report.verdict
    for name in ("lost", "duplicated", "mismatched", "unresolved"):
        if v[name]:
            failures.append(f"{v[name]} orders {name}")
    if report.tally["placed"] != v["journal_orders"]:
        failures.append(f"{report.tally['placed']} orders placed but {v['journal_orders']} journalled")
    if report.fds_after > report.fds_before:
        failures.append(f"descriptors grew: {report.fds_before} before the engines, {report.fds_after} after")
    if report.rate_limited:
        failures.append(f"{report.rate_limited} requests answered 429 within the budget")
    if report.rss_drift is not None and report.rss_drift >= options.max_drift:
        failures.append(f"RSS drifted {report.rss_drift:.1%} after warm-up (limit {options.max_drift:.0%})")
    return failures


def _after_warmup(samples: Sequence[Sample], options: SoakOptions) -> list[Sample]:
    mark = options.warmup * (samples[-1].orders if samples else 0)
    return [s for s in samples if s.orders >= mark]


def soak(options: SoakOptions) -> SoakReport:
    with contextlib.ExitStack() as cleanup:
        if options.out is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        else:
            workdir = options.out
            workdir.mkdir(parents=True, exist_ok=True)
            for stale in workdir.glob("*.db*"):
                stale.unlink()
        keydir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="soak-keys-")))
        legs = [
            (LEGS[name], [LEGS[name].new_credential(keydir) for _ in range(options.keys)])
            for name in options.legs
        ]
        credentials = [c for _, creds in legs for c in creds]
        with simulator(sim_flags(options, credentials), workdir / "sim.log") as base_url:
            tally, samples, fds_before, fds_after, elapsed = _run(options, base_url, legs, workdir)
            stats = _get(f"{base_url}/sim/stats?timestamps=0")
            journals = sorted(workdir.glob("*.db"))
            verdict = verify(base_url, journals, [leg for leg, _ in legs])
        steady = _after_warmup(samples, options)
        baseline = steady[0] if steady else None
        judged = len(steady) >= 3
        rss_max = max((s.rss for s in steady), default=0)
        storms = int(stats["injected"].get("storm_429", 0))
        report = SoakReport(
            options={k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
            elapsed_s=round(elapsed, 1),
            tally={**asdict(tally), "errors": dict(tally.errors)},
            verdict=asdict(verdict),
            samples=[asdict(s) for s in samples],
            rss_baseline=baseline.rss if baseline else 0,
            rss_max_after_warmup=rss_max,
            rss_drift=(rss_max - baseline.rss) / baseline.rss if baseline and judged else None,
            fds_before=fds_before,
            fds_after=fds_after,
            fds_baseline=baseline.fds if baseline else 0,
            fds_max_after_warmup=max((s.fds for s in steady), default=0),
            rate_limited=sum(int(k["rate_limited"]) for k in stats["keys"].values()) - storms,
            injected={k: int(v) for k, v in stats["injected"].items()},
            ws=stats["ws"],
            failures=[],
        )
        report.failures = judge(report, options)
        if options.out is not None:
            _write(report, samples, baseline.at_s if baseline else None, options.out)
        return report


def _run(
    options: SoakOptions, base_url: str, legs: Sequence[tuple[Leg, list[Credential]]], workdir: Path
) -> tuple[Tally, list[Sample], int, int, float]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover (Windows)
        return asyncio.run(_run_engines(options, base_url, legs, workdir))
    return uvloop.run(_run_engines(options, base_url, legs, workdir))


def _write(report: SoakReport, samples: Sequence[Sample], warmup_s: float | None, out: Path) -> None:
    (out / "report.json").write_bytes(orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2))
    title = f"soak: {report.tally['placed']:,} orders in {report.elapsed_s:.0f} s"
    picture = svg(samples, title, warmup_s)
    (out / "soak.svg").write_text(picture)
    summary = json.dumps({k: v for k, v in asdict(report).items() if k != "samples"}, indent=2)
    (out / "soak.html").write_text(
        f"<!doctype html><meta charset=utf-8><title>{title}</title><h1>{title}</h1>\n{picture}\n"
        f"<pre>{summary.replace('&', '&amp;').replace('<', '&lt;')}</pre>\n"
    )


def summary(report: SoakReport) -> str:
    v, t = report.verdict, report.tally
    drift = "not judged (run too short)" if report.rss_drift is None else f"{report.rss_drift:+.2%}"
    lines = [
        f"orders placed {t['placed']:,} in {report.elapsed_s:.0f} s "
        f"({t['placed'] / max(report.elapsed_s, 1e-9):,.0f}/s); acknowledged {t['acknowledged']:,}, "
        f"rejected {t['rejected']:,}, outcome unknown to the caller {sum(t['errors'].values()):,} "
        f"{t['errors']}",
        f"ledger {v['ledger_orders']:,}, journals {v['journal_orders']:,}: lost {v['lost']}, duplicated "
        f"{v['duplicated']}, mismatched {v['mismatched']}, unresolved {v['unresolved']}",
        f"RSS baseline {report.rss_baseline / 2**20:.1f} MiB, max after warm-up "
        f"{report.rss_max_after_warmup / 2**20:.1f} MiB, drift {drift}",
        f"descriptors: {report.fds_before} before, {report.fds_after} after; after warm-up "
        f"{report.fds_baseline} then at most {report.fds_max_after_warmup}",
        f"429 within the budget: {report.rate_limited}; faults injected {report.injected}; ws {report.ws}",
    ]
    windows = sorted(report.samples, key=lambda s: s["throughput"])
    if windows:
        p99s = sorted(s["p99_ms"] for s in report.samples)
        median_rate = percentile([s["throughput"] for s in windows], 0.5)
        lines.insert(
            1,
            f"per {report.options['sample_s']} s window: throughput median {median_rate:,.0f}/s "
            f"(min {windows[0]['throughput']:,.0f}, max {windows[-1]['throughput']:,.0f}); p99 median "
            f"{percentile(p99s, 0.5):.1f} ms, worst {p99s[-1]:.1f} ms",
        )
    lines += [f"  e.g. {example}" for example in v["examples"][:5]]
    lines.append("PASS" if report.ok else "FAIL: " + "; ".join(report.failures))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    defaults = SoakOptions()
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=defaults.orders)
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="at most this long, s")
    parser.add_argument("--legs", default=",".join(defaults.legs), help=f"of {', '.join(LEGS)}")
    parser.add_argument("--keys", type=int, default=defaults.keys, help="engines (API keys) per leg")
    parser.add_argument("--in-flight", type=int, default=defaults.in_flight, help="orders at once per engine")
    parser.add_argument(
        "--private-rate", type=float, default=defaults.private_rate, help="requests/s per key"
    )
    parser.add_argument("--public-rate", type=float, default=defaults.public_rate)
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate)
    parser.add_argument("--sample", type=float, default=defaults.sample_s, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="fraction of the orders")
    parser.add_argument("--max-drift", type=float, default=defaults.max_drift)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, default=Path(".soak"))
    args = parser.parse_args(argv)
    legs = tuple(name.strip() for name in args.legs.split(",") if name.strip())
    unknown = [name for name in legs if name not in LEGS]
    if unknown:
        parser.error(f"unknown legs {unknown}; known: {sorted(LEGS)}")
    options = SoakOptions(
        orders=args.orders,
        duration_s=args.duration,
        legs=legs,
        keys=args.keys,
        in_flight=args.in_flight,
        private_rate=args.private_rate,
        public_rate=args.public_rate,
        fault_rate=args.fault_rate,
        sample_s=args.sample,
        warmup=args.warmup,
        max_drift=args.max_drift,
        seed=args.seed,
        out=args.out,
    )
    # SIGTERM unwinds like Ctrl-C, so the simulator process is stopped on the way out, not orphaned
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    options.out.mkdir(parents=True, exist_ok=True)
    # the engines' warnings (retries, sequence gaps, reconnects: the faults at work) go to a file
    logging.basicConfig(filename=options.out / "engine.log", filemode="w", level=logging.WARNING)
    report = soak(options)
    print(summary(report), flush=True)
    print(f"report: {options.out}/report.json, plot: {options.out}/soak.svg", flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
