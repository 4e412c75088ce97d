"""Turn a pytest-benchmark JSON run into the figures quants read: a terminal table and an HTML page.

Input is the file written by ``pytest --benchmark-json`` (which always holds every round's timing) or a run
saved with ``--benchmark-save-data``. Output:

- a table per group of medians, p99 and each row's ratio to the group's reference row (the engine's
  benchmark when the group has one, else the fastest), with the test outcome beside it: a benchmark also
  asserts that what it timed is correct, and a fast wrong answer is shown as wrong, not as fast;
- the ratios of every engine benchmark to every peer it is compared with (the peers in the same group, or
  the ones named in its ``extra_info["vs"]``), median and p99;
- a self-contained HTML page with the same tables, a latency CDF per group (log-scaled, one line per
  benchmark) and the machine, commit and date of the run. Inline SVG and CSS only: no script, no CDN,
  readable offline and as a CI artefact.

How a benchmark is classified (all optional, read from ``extra_info``):

- ``role``: ``"engine"`` or ``"peer"``. Without it, a benchmark whose name mentions "engine" is the
  engine's and, in a group that has one, every other benchmark is a peer.
- ``label``: the name shown in tables and legends (default: the test name without ``test_``).
- ``vs``: for an engine benchmark, the name(s) or label(s) of the peers to compare it with, in any group.
- ``per_round`` (and ``unit``): the units of work one timed call does, e.g. 500 orders sent in one round;
  the figures are then per unit, and the throughput column is units per second. ``orders_per_round`` is
  read the same way with the unit "order".

A group timed with ``time.process_time`` is marked as CPU time rather than wall-clock time.

Usage::

    python benches/report.py RESULTS.json [--html REPORT.html] [--compare BASELINE.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENGINE = "engine"
PEER = "peer"

# Okabe-Ito, readable by colour-blind readers; the engine's benchmarks take the first (strongest) colours.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of a run: its identity, its classification and its timings in seconds per unit of work.

    pytest-benchmark times one call of the benchmarked function; when that call does ``per_round`` units of
    work (``extra_info["per_round"]``, e.g. a batch of 500 orders), every figure here is divided by it.
    """

    fullname: str
    name: str
    group: str
    label: str
    role: str | None
    vs: tuple[str, ...]
    outcome: str | None
    median: float
    mean: float
    minimum: float
    maximum: float
    stddev: float
    rounds: int
    iterations: int
    data: tuple[float, ...]
    extra_info: Mapping[str, Any] = field(default_factory=dict)
    per_round: float = 1.0
    unit: str = "op"
    cpu_time: bool = False

    @property
    def throughput(self) -> float | None:
        """Units of work per second at the median."""
        return 1.0 / self.median if self.median > 0 else None

    @property
    def has_data(self) -> bool:
        return bool(self.data)

    @property
    def p99(self) -> float | None:
        """99th percentile of the rounds; each round is the mean of ``iterations`` calls."""
        return percentile(sorted(self.data), 0.99) if self.data else None

    @property
    def p50(self) -> float:
        return percentile(sorted(self.data), 0.50) if self.data else self.median


@dataclass(frozen=True)
class Run:
    """A whole pytest-benchmark run: its benchmarks and where and when it was taken."""

    benchmarks: tuple[Benchmark, ...]
    machine_info: Mapping[str, Any]
    commit_info: Mapping[str, Any]
    datetime: str
    version: str

    def groups(self) -> dict[str, list[Benchmark]]:
        """Benchmarks by group, in the order the groups first appear; each group sorted fastest first."""
        grouped: dict[str, list[Benchmark]] = {}
        for bench in self.benchmarks:
            grouped.setdefault(bench.group, []).append(bench)
        return {name: sorted(members, key=lambda b: b.median) for name, members in grouped.items()}

    def find(self, key: str, group: str | None = None) -> Benchmark | None:
        """A benchmark by fullname, name, name without ``test_``, or label; one in ``group`` first."""
        matches = [b for b in self.benchmarks if key in (b.fullname, b.name, b.label, _strip_test(b.name))]
        in_group = [b for b in matches if b.group == group]
        if in_group or matches:
            return (in_group or matches)[0]
        return None


@dataclass(frozen=True)
class Pair:
    """An engine benchmark beside one peer: how many times faster the engine is (peer / engine)."""

    engine: Benchmark
    peer: Benchmark

    @property
    def median_speedup(self) -> float:
        return self.peer.median / self.engine.median if self.engine.median > 0 else math.inf

    @property
    def p99_speedup(self) -> float | None:
        engine_p99, peer_p99 = self.engine.p99, self.peer.p99
        if engine_p99 is None or peer_p99 is None or engine_p99 <= 0:
            return None
        return peer_p99 / engine_p99


# ------------------------------------------------------------------------------------------------- loading


def percentile(sorted_data: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile ``q`` in [0, 1] of already sorted data (numpy's default method)."""
    if not sorted_data:
        raise ValueError("percentile of no data")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    position = q * (len(sorted_data) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_data) - 1)
    return sorted_data[low] + (sorted_data[high] - sorted_data[low]) * (position - low)


def _strip_test(name: str) -> str:
    return name.removeprefix("test_")


def _default_group(fullname: str) -> str:
    """A benchmark without a ``group`` is grouped with the others of its module (``bench_signing.py``)."""
    path = fullname.split("::", 1)[0]
    return path.rsplit("/", 1)[-1]


def _as_names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    raise ValueError(f"extra_info 'vs' must be a name or a list of names, not {value!r}")


def _per_round(raw: Mapping[str, Any], extra: Mapping[str, Any]) -> tuple[float, str]:
    """How many units of work one call of the timed function does, and what a unit is."""
    for key, unit in (("per_round", str(extra.get("unit") or "op")), ("orders_per_round", "order")):
        value = extra.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{raw['fullname']}: extra_info {key} must be a positive number, not {value!r}")
        return float(value), unit
    return 1.0, str(extra.get("unit") or "op")


def _benchmark(raw: Mapping[str, Any]) -> Benchmark:
    stats = raw["stats"]
    extra = dict(raw.get("extra_info") or {})
    role = extra.get("role")
    if role is not None and role not in (ENGINE, PEER):
        raise ValueError(f"{raw['fullname']}: extra_info role must be 'engine' or 'peer', not {role!r}")
    per_round, unit = _per_round(raw, extra)
    timer = str((raw.get("options") or {}).get("timer") or "")
    return Benchmark(
        fullname=raw["fullname"],
        name=raw["name"],
        group=raw.get("group") or _default_group(raw["fullname"]),
        label=str(extra.get("label") or _strip_test(raw["name"])),
        role=role,
        vs=_as_names(extra.get("vs")),
        outcome=extra.get("outcome"),
        median=float(stats["median"]) / per_round,
        mean=float(stats["mean"]) / per_round,
        minimum=float(stats["min"]) / per_round,
        maximum=float(stats["max"]) / per_round,
        stddev=float(stats.get("stddev") or 0.0) / per_round,
        rounds=int(stats["rounds"]),
        iterations=int(stats.get("iterations") or 1),
        data=tuple(float(x) / per_round for x in stats.get("data") or ()),
        extra_info=extra,
        per_round=per_round,
        unit=unit,
        cpu_time="process_time" in timer or "thread_time" in timer,
    )


def _classify(benchmarks: list[Benchmark]) -> list[Benchmark]:
    """Fill in missing roles: "engine" in a name marks the engine's benchmark; its group-mates are peers."""
    guessed: list[Benchmark] = []
    for bench in benchmarks:
        role = bench.role
        if role is None and ENGINE in bench.name.lower():
            role = ENGINE
        guessed.append(_replace_role(bench, role))
    engine_groups = {b.group for b in guessed if b.role == ENGINE}
    return [_replace_role(b, PEER) if b.role is None and b.group in engine_groups else b for b in guessed]


def _replace_role(bench: Benchmark, role: str | None) -> Benchmark:
    return bench if bench.role == role else dataclasses.replace(bench, role=role)


def parse_run(document: Mapping[str, Any]) -> Run:
    """A run from a decoded pytest-benchmark JSON document."""
    if "benchmarks" not in document:
        raise ValueError("not a pytest-benchmark JSON file: it has no 'benchmarks' list")
    benchmarks = _classify([_benchmark(raw) for raw in document["benchmarks"]])
    return Run(
        benchmarks=tuple(benchmarks),
        machine_info=document.get("machine_info") or {},
        commit_info=document.get("commit_info") or {},
        datetime=str(document.get("datetime") or ""),
        version=str(document.get("version") or ""),
    )


def load_run(path: Path) -> Run:
    return parse_run(json.loads(path.read_text(encoding="utf-8")))


# ------------------------------------------------------------------------------------------------- analysis


def reference(members: Sequence[Benchmark]) -> Benchmark:
    """The row a group's ratios are taken against: its fastest engine benchmark, else its fastest one."""
    engines = [b for b in members if b.role == ENGINE]
    return min(engines or members, key=lambda b: b.median)


def pairs(run: Run) -> list[Pair]:
    """Each engine benchmark with each peer it is compared with: those in ``vs``, else its group's peers."""
    found: list[Pair] = []
    groups = run.groups()
    for bench in run.benchmarks:
        if bench.role != ENGINE:
            continue
        if bench.vs:
            peers = [p for p in (run.find(key, bench.group) for key in bench.vs) if p is not None]
        else:
            peers = [p for p in groups[bench.group] if p.role == PEER]
        found.extend(Pair(bench, peer) for peer in peers)
    return found


def missing_peers(run: Run) -> list[tuple[Benchmark, str]]:
    """Names in ``vs`` that match no benchmark of the run (a peer that was skipped or renamed)."""
    return [(b, key) for b in run.benchmarks for key in b.vs if run.find(key) is None]


# ------------------------------------------------------------------------------------------------- formatting


def format_time(seconds: float | None) -> str:
    """A duration with three significant figures in the unit that suits it."""
    if seconds is None:
        return "-"
    if seconds == 0:
        return "0 s"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{_sig3(seconds / scale)} {unit}"
    return f"{_sig3(seconds / 1e-9)} ns"


def _sig3(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_speedup(speedup: float | None) -> str:
    """How many times faster (or slower, below 1) the engine is than a peer."""
    if speedup is None:
        return "-"
    if speedup >= 1 or speedup <= 0:
        return f"{format_ratio(speedup)} faster"
    return f"{format_ratio(1 / speedup)} slower"


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    if math.isinf(ratio):
        return "inf"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


def format_rate(per_second: float | None) -> str:
    """Units per second, three significant figures with a k/M suffix."""
    if per_second is None:
        return "-"
    for suffix, scale in (("M", 1e6), ("k", 1e3)):
        if per_second >= scale:
            return f"{_sig3(per_second / scale)}{suffix}"
    return _sig3(per_second)


def _unit_suffix(bench: Benchmark) -> str:
    """The unit of a row whose figures are per unit of a batch ("order"), blank for single calls."""
    return f"{bench.unit}s" if bench.per_round != 1 else ""


def _group_note(members: Sequence[Benchmark]) -> str:
    notes = []
    if any(b.cpu_time for b in members):
        notes.append("CPU time (time.process_time), not wall-clock")
    batches = sorted({f"{b.per_round:g} {b.unit}s" for b in members if b.per_round != 1})
    if batches:
        notes.append("per unit of a round of " + ", ".join(batches))
    return f"  ({'; '.join(notes)})" if notes else ""


def _outcome_mark(outcome: str | None) -> str:
    return {"passed": "ok", "failed": "WRONG", "skipped": "skipped"}.get(outcome or "", "?")


def _rows_and_widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = _rows_and_widths(header, rows)

    def line(cells: Sequence[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _change(current: Benchmark, baseline: Run | None) -> str:
    if baseline is None:
        return ""
    before = baseline.find(current.fullname)
    if before is None or before.median <= 0:
        return "new"
    return f"{(current.median / before.median - 1) * 100:+.1f}%"


def render_text(run: Run, baseline: Run | None = None) -> str:
    """The terminal report: a table per group, then the engine-to-peer ratios."""
    out: list[str] = [f"Benchmarks of {run.datetime or 'an undated run'} on {machine_summary(run)}", ""]
    header = ["benchmark", "role", "median", "p99", "per s", "rounds", "x ref", "correct"]
    if baseline is not None:
        header.append("vs baseline")
    for group, members in run.groups().items():
        ref = reference(members)
        rows = []
        for b in members:
            row = [
                b.label,
                b.role or "",
                format_time(b.median),
                format_time(b.p99),
                f"{format_rate(b.throughput)} {_unit_suffix(b)}".rstrip(),
                f"{b.rounds}x{b.iterations}" if b.iterations > 1 else str(b.rounds),
                "ref" if b is ref else format_ratio(b.median / ref.median if ref.median > 0 else None),
                _outcome_mark(b.outcome),
            ]
            if baseline is not None:
                row.append(_change(b, baseline))
            rows.append(row)
        out.append(f"[{group}]{_group_note(members)}")
        out.extend("  " + line for line in _text_table(header, rows, right={2, 3, 4, 5, 6}))
        out.append("")
    found = pairs(run)
    if found:
        out.append("Engine vs peers (the engine's figure against the peer's; same run, same machine)")
        rows = [
            [
                p.engine.label,
                p.peer.label,
                format_speedup(p.median_speedup),
                format_speedup(p.p99_speedup),
                format_time(p.engine.median),
                format_time(p.peer.median),
            ]
            for p in found
        ]
        header2 = ["engine", "peer", "median", "p99", "engine median", "peer median"]
        out.extend("  " + line for line in _text_table(header2, rows, right={2, 3, 4, 5}))
        out.append("")
    for bench, key in missing_peers(run):
        out.append(f"note: {bench.label} names peer {key!r}, which is not in this run")
    if not any(b.has_data for b in run.benchmarks) and run.benchmarks:
        out.append(
            "note: no raw timings in this file, so no p99: use --benchmark-json or --benchmark-save-data"
        )
    return "\n".join(out).rstrip() + "\n"


def machine_summary(run: Run) -> str:
    info = run.machine_info
    cpu = info.get("cpu") or {}
    brand = cpu.get("brand_raw") or info.get("processor") or "unknown CPU"
    cores = cpu.get("count")
    python = f"{info.get('python_implementation', 'Python')} {info.get('python_version', '')}".strip()
    node = info.get("node") or "unknown host"
    return f"{node} ({brand}{f', {cores} cores' if cores else ''}; {python})"


# ------------------------------------------------------------------------------------------------- SVG


def _tick_label(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale * 0.999 or unit == "ns":
            return f"{seconds / scale:g} {unit}"
    raise AssertionError("unreachable")


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks spanning [low, high] on a log axis; finer steps when that gives fewer than four."""
    for steps in ((1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)):
        ticks: list[float] = []
        decade = 10.0 ** math.floor(math.log10(low))
        while decade <= high * 10:
            ticks.extend(decade * step for step in steps if low <= decade * step <= high)
            decade *= 10
        if len(ticks) >= 4:
            break
    return ticks


def colors(members: Sequence[Benchmark]) -> dict[str, str]:
    """A colour per benchmark of a group: the engine's take the first (strongest) colours, then the rest."""
    ordered = [b for b in members if b.role == ENGINE] + [b for b in members if b.role != ENGINE]
    return {b.fullname: PALETTE[i % len(PALETTE)] for i, b in enumerate(ordered)}


def _downsample(sorted_data: Sequence[float], points: int = 300) -> list[tuple[float, float]]:
    """(value, cumulative fraction) pairs tracing the empirical CDF with at most ``points`` steps."""
    n = len(sorted_data)
    if n <= points:
        indices = list(range(n))
    else:
        indices = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)})
    return [(sorted_data[i], (i + 1) / n) for i in indices]


def cdf_svg(members: Sequence[Benchmark], width: int = 760, plot_height: int = 260) -> str:
    """An inline SVG of the latency CDF of each benchmark of a group, on a log scale, with p50/p99 guides.

    The x axis ends at the largest p99.9 of the group, so a few stray rounds (a GC pause, the scheduler)
    do not squeeze the part of the curves that matters; the table gives each maximum.
    """
    palette = colors(members)
    series = [(b, sorted(b.data)) for b in members if b.data]
    if not series:
        return '<p class="note">No raw timings in this run, so no distribution to draw.</p>'
    low = min(s[0] for _, s in series)
    high = max(percentile(s, 0.999) for _, s in series)
    clipped = any(s[-1] > high for _, s in series)
    if low <= 0:
        low = min((x for _, s in series for x in s if x > 0), default=1e-9)
    if high <= low:
        high = low * 10
    low, high = low / 1.15, high * 1.15
    left, right, top, bottom = 56, 16, 12, 40
    legend_h = 16 * len(series) + 6
    height = top + plot_height + bottom + legend_h
    plot_w, plot_h = width - left - right, plot_height
    log_low, log_span = math.log10(low), math.log10(high) - math.log10(low)

    def x_of(value: float) -> float:
        return left + (math.log10(min(max(value, low), high)) - log_low) / log_span * plot_w

    def y_of(fraction: float) -> float:
        return top + (1 - fraction) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="latency CDF">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#bbb"/>',
    ]
    for fraction, name in ((0.5, "p50"), (0.99, "p99")):
        y = y_of(fraction)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" '
            f'stroke-dasharray="4 3"/><text x="{left + plot_w - 4}" y="{y - 3:.1f}" text-anchor="end" '
            f'class="axis">{name}</text>'
        )
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_of(fraction)
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{fraction:.2f}</text>'
        )
    for tick in _log_ticks(low, high):
        x = x_of(tick)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="axis">'
            f"{html.escape(_tick_label(tick))}</text>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 34}" text-anchor="middle" class="axis">'
        "time per operation (log scale) — fraction of rounds at or below"
        + (" — axis ends at p99.9" if clipped else "")
        + "</text>"
    )
    for bench, data in series:
        color = palette[bench.fullname]
        points = _downsample(data)
        path = [f"M{x_of(points[0][0]):.1f},{y_of(0):.1f}"]
        previous_y = y_of(0)
        for value, fraction in points:
            x = x_of(value)
            path.append(f"L{x:.1f},{previous_y:.1f}L{x:.1f},{y_of(fraction):.1f}")
            previous_y = y_of(fraction)
        dash = "" if bench.role != PEER else ' stroke-dasharray="6 2"'
        parts.append(
            f'<path d="{"".join(path)}" fill="none" stroke="{color}" stroke-width="2"{dash}>'
            f"<title>{html.escape(bench.label)}: median {html.escape(format_time(bench.median))}, "
            f"p99 {html.escape(format_time(bench.p99))}</title></path>"
        )
    legend_y = top + plot_h + bottom + 14
    for bench, _ in series:
        color = palette[bench.fullname]
        dash = "" if bench.role != PEER else ' stroke-dasharray="6 2"'
        parts.append(
            f'<line x1="{left}" x2="{left + 24}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
            f'stroke="{color}" stroke-width="2"{dash}/><text x="{left + 30}" y="{legend_y}" class="label">'
            f"{html.escape(bench.label)}</text>"
        )
        legend_y += 16
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(members: Sequence[Benchmark], width: int = 760) -> str:
    """Horizontal bars of the median per benchmark (log scale) with a whisker to the p99."""
    palette = colors(members)
    row_h, left, right, top = 26, 330, 70, 8
    height = top + row_h * len(members) + 24
    values = [b.median for b in members] + [b.p99 for b in members if b.p99 is not None]
    low = min(v for v in values if v > 0) / 2
    high = max(values) * 1.2
    log_low, log_span = math.log10(low), max(math.log10(high) - math.log10(low), 1e-9)
    plot_w = width - left - right

    def x_of(value: float) -> float:
        return left + (math.log10(max(value, low)) - log_low) / log_span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="medians">'
    ]
    for index, bench in enumerate(members):
        color = palette[bench.fullname]
        y = top + index * row_h
        label = bench.label if len(bench.label) <= 48 else bench.label[:47] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" class="label">{html.escape(label)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{max(x_of(bench.median) - left, 1):.1f}" height="16" '
            f'fill="{color}" opacity="{0.9 if bench.role != PEER else 0.55}"/>'
        )
        p99 = bench.p99
        if p99 is not None:
            parts.append(
                f'<line x1="{x_of(bench.median):.1f}" x2="{x_of(p99):.1f}" y1="{y + 12}" y2="{y + 12}" '
                f'stroke="#333"/><line x1="{x_of(p99):.1f}" x2="{x_of(p99):.1f}" y1="{y + 6}" y2="{y + 18}" '
                'stroke="#333"/>'
            )
        parts.append(
            f'<text x="{x_of(max(bench.median, p99 or 0)) + 6:.1f}" y="{y + 16}" class="value">'
            f"{html.escape(format_time(bench.median))}</text>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 6}" class="axis">bar: median · whisker: p99 · log scale</text></svg>'
    )
    return "".join(parts)


# ------------------------------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1000px;color:#222;
padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}
th,td{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left} td.n{text-align:right}
th{background:#f6f6f6} .engine td:first-child{font-weight:600} .wrong{color:#b00;font-weight:700}
.ok{color:#080} .note{color:#666} .meta td{border:0;padding:.1em .7em .1em 0}
svg text.axis{font-size:11px;fill:#555} svg text.label{font-size:12px;fill:#222}
svg text.value{font-size:11px;fill:#333}
.swatch{display:inline-block;width:.9em;height:.9em;vertical-align:-.1em;margin-right:.4em;border-radius:2px}
"""


def _cell(value: str, numeric: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in ("n" if numeric else "", css) if c)
    return f'<td class="{classes}">{html.escape(value)}</td>' if classes else f"<td>{html.escape(value)}</td>"


def _extra_summary(bench: Benchmark) -> str:
    hidden = {"role", "label", "vs", "outcome", "per_round", "orders_per_round", "unit"}
    shown = [
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in bench.extra_info.items()
        if k not in hidden and isinstance(v, (int, float, str, bool))
    ]
    return ", ".join(shown)


def render_html(run: Run, baseline: Run | None = None) -> str:
    """The report as one self-contained HTML document (inline CSS and SVG, no script, no external link)."""
    commit = run.commit_info
    meta_rows = [
        ("Date", run.datetime or "unknown"),
        ("Machine", machine_summary(run)),
        ("Platform", str(run.machine_info.get("platform") or "")),
        (
            "Commit",
            f"{str(commit.get('id', ''))[:12]} on {commit.get('branch', '?')}"
            + (" (uncommitted changes)" if commit.get("dirty") else ""),
        ),
        ("pytest-benchmark", run.version),
    ]
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        "<title>Engine benchmarks</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Engine benchmarks</h1>",
        '<table class="meta">',
        *(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in meta_rows),
        "</table>",
        '<p class="note">Every figure is per operation. A round times <i>iterations</i> calls and records '
        "their mean, so p99 is the 99th percentile of those round means. Ratios compare benchmarks of this "
        "one run, on this one machine. <i>correct</i> is the outcome of the benchmark's own check of what it "
        "timed (tokens verify, orders landed in the simulator's ledger).</p>",
    ]
    found = pairs(run)
    if found:
        out.append(
            "<h2>Engine vs peers</h2><table><tr><th>engine</th><th>peer</th><th>at the median</th>"
            "<th>at p99</th><th>engine median</th><th>peer median</th></tr>"
        )
        for p in found:
            out.append(
                "<tr>"
                + _cell(p.engine.label)
                + _cell(p.peer.label)
                + _cell(format_speedup(p.median_speedup), numeric=True)
                + _cell(format_speedup(p.p99_speedup), numeric=True)
                + _cell(format_time(p.engine.median), numeric=True)
                + _cell(format_time(p.peer.median), numeric=True)
                + "</tr>"
            )
        out.append("</table>")
    missing = missing_peers(run)
    if missing:
        out.append(
            '<p class="note">'
            + "; ".join(
                f"{html.escape(b.label)} names peer {html.escape(repr(k))}, not in this run"
                for b, k in missing
            )
            + "</p>"
        )
    for group, members in run.groups().items():
        ref = reference(members)
        out.append(f"<h2>{html.escape(group)}</h2>")
        note = _group_note(members).strip()
        if note:
            out.append(f'<p class="note">{html.escape(note.strip("()"))}</p>')
        out.append(bars_svg(members))
        out.append(cdf_svg(members))
        header = [
            "",
            "benchmark",
            "role",
            "median",
            "p99",
            "mean",
            "min",
            "per s",
            "rounds x iterations",
            "x ref",
            "correct",
        ]
        if baseline is not None:
            header.append("vs baseline")
        header.append("extra")
        out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
        palette = colors(members)
        for b in members:
            color = palette[b.fullname]
            mark = _outcome_mark(b.outcome)
            row = [
                f'<td><span class="swatch" style="background:{color}"></span></td>',
                _cell(b.label),
                _cell(b.role or ""),
                _cell(format_time(b.median), numeric=True),
                _cell(format_time(b.p99), numeric=True),
                _cell(format_time(b.mean), numeric=True),
                _cell(format_time(b.minimum), numeric=True),
                _cell(f"{format_rate(b.throughput)} {_unit_suffix(b)}".rstrip(), numeric=True),
                _cell(f"{b.rounds} x {b.iterations}", numeric=True),
                _cell(
                    "ref" if b is ref else format_ratio(b.median / ref.median if ref.median > 0 else None),
                    True,
                ),
                _cell(mark, css="wrong" if mark == "WRONG" else "ok" if mark == "ok" else ""),
            ]
            if baseline is not None:
                row.append(_cell(_change(b, baseline), numeric=True))
            row.append(_cell(_extra_summary(b), css="note"))
            out.append(f'<tr class="{html.escape(b.role or "")}">' + "".join(row) + "</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("results", type=Path, help="pytest-benchmark JSON (--benchmark-json output)")
    parser.add_argument("--html", type=Path, help="write the self-contained HTML report here")
    parser.add_argument("--compare", type=Path, help="a baseline run to show each median's change against")
    args = parser.parse_args(argv)
    try:
        run = load_run(args.results)
        baseline = load_run(args.compare) if args.compare else None
    except (OSError, ValueError, KeyError) as exc:
        print(f"report: cannot read benchmark results: {exc}", file=sys.stderr)
        return 2
    if not run.benchmarks:
        print(f"report: {args.results} holds no benchmarks (was the run made with --benchmark-disable?)")
        return 1
    sys.stdout.write(render_text(run, baseline))
    if args.html:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(render_html(run, baseline), encoding="utf-8")
        print(f"HTML report: {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
