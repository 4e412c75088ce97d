"""The report generator, fed the JSON of a real timed pytest-benchmark run."""

from __future__ import annotations

import html
import json
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest

from benches import report
from tests.bench.conftest import TinyRun


def _by_name(run: report.Run) -> dict[str, report.Benchmark]:
    return {b.name: b for b in run.benchmarks}


def test_the_plugin_records_each_benchmarks_outcome(tiny_run: TinyRun) -> None:
    assert tiny_run.process.returncode == 1, "test_wrong_answer fails by design"
    outcomes = {b["name"]: b["extra_info"].get("outcome") for b in tiny_run.document["benchmarks"]}
    assert outcomes["test_wrong_answer"] == "failed"
    assert outcomes["test_engine_sha256"] == "passed"
    assert set(outcomes.values()) == {"passed", "failed"}


def test_loads_every_benchmark_with_its_raw_rounds(tiny_run: TinyRun) -> None:
    run = report.load_run(tiny_run.json_path)
    raw = {b["fullname"]: b["stats"] for b in tiny_run.document["benchmarks"]}
    assert {b.fullname for b in run.benchmarks} == set(raw)
    for bench in run.benchmarks:
        stats = raw[bench.fullname]
        assert len(bench.data) == stats["rounds"] == bench.rounds >= 200
        assert bench.median * bench.per_round == pytest.approx(stats["median"])
        assert bench.median == pytest.approx(statistics.median(bench.data))


def test_p99_is_the_interpolated_99th_percentile_of_the_rounds(tiny_run: TinyRun) -> None:
    for bench in report.load_run(tiny_run.json_path).benchmarks:
        expected = statistics.quantiles(bench.data, n=100, method="inclusive")[98]
        assert bench.p99 == pytest.approx(expected, rel=1e-12)
        assert bench.p99 is not None
        assert min(bench.data) <= bench.median <= bench.p99 <= max(bench.data)


def test_roles_groups_and_labels(tiny_run: TinyRun) -> None:
    run = report.load_run(tiny_run.json_path)
    named = _by_name(run)
    assert named["test_engine_sha256"].role == report.ENGINE
    assert named["test_sha256_of_joined_chunks"].role == report.PEER
    assert named["test_sha256_of_joined_chunks"].label == "sha256 of joined chunks"
    assert named["test_explicit_pair"].role == report.ENGINE
    ungrouped = [b for b in run.benchmarks if b.name.startswith("test_ungrouped")]
    assert {b.group for b in ungrouped} == {"bench_tiny.py"}
    assert all(b.role is None for b in ungrouped)
    assert set(run.groups()) == {"digest", "other group", "batch", "bench_tiny.py"}


def test_pairs_compare_the_engine_with_its_peers(tiny_run: TinyRun) -> None:
    run = report.load_run(tiny_run.json_path)
    named = _by_name(run)
    found = {(p.engine.name, p.peer.name): p for p in report.pairs(run)}
    assert set(found) == {
        ("test_engine_sha256", "test_sha256_of_joined_chunks"),
        ("test_explicit_pair", "test_sha256_of_joined_chunks"),  # named in vs, from another group
    }
    pair = found[("test_engine_sha256", "test_sha256_of_joined_chunks")]
    engine, peer = named["test_engine_sha256"], named["test_sha256_of_joined_chunks"]
    assert pair.median_speedup == peer.median / engine.median
    assert pair.p99_speedup == pytest.approx(peer.p99 / engine.p99)  # type: ignore[operator]
    assert [(b.name, key) for b, key in report.missing_peers(run)] == [
        ("test_explicit_pair", "not_in_this_run")
    ]


def test_a_batch_is_reported_per_unit_of_work(tiny_run: TinyRun) -> None:
    run = report.load_run(tiny_run.json_path)
    batch = _by_name(run)["test_batch_of_orders"]
    raw = next(b for b in tiny_run.document["benchmarks"] if b["name"] == "test_batch_of_orders")
    assert batch.per_round == 50
    assert batch.unit == "order"
    assert batch.cpu_time
    assert batch.median == pytest.approx(raw["stats"]["median"] / 50)
    assert batch.data == pytest.approx([x / 50 for x in raw["stats"]["data"]])
    assert batch.throughput == pytest.approx(50 / raw["stats"]["median"])
    text = report.render_text(run)
    assert "[batch]  (CPU time (time.process_time), not wall-clock; per unit of a round of 50 orders)" in text
    batch_line = next(line for line in text.splitlines() if line.strip().startswith("batch_of_orders"))
    assert f"{report.format_rate(batch.throughput)} orders" in batch_line
    assert "per_round" not in report.render_html(run)


def test_a_bad_batch_size_is_refused(tiny_run: TinyRun) -> None:
    document = tiny_run.document
    document["benchmarks"][0]["extra_info"]["per_round"] = 0
    with pytest.raises(ValueError, match="per_round must be a positive number"):
        report.parse_run(document)


def test_a_peer_named_in_vs_is_looked_for_in_the_engines_group_first(tiny_run: TinyRun) -> None:
    document = tiny_run.document
    for bench in document["benchmarks"]:
        if bench["name"] == "test_ungrouped[1]":
            bench["extra_info"]["label"] = "sha256 of joined chunks"  # same label, other group
        if bench["name"] == "test_engine_sha256":
            bench["extra_info"]["vs"] = ["sha256 of joined chunks"]
    run = report.parse_run(document)
    (pair,) = [p for p in report.pairs(run) if p.engine.name == "test_engine_sha256"]
    assert pair.peer.name == "test_sha256_of_joined_chunks"


def test_reference_row_is_the_engine_else_the_fastest(tiny_run: TinyRun) -> None:
    groups = report.load_run(tiny_run.json_path).groups()
    assert report.reference(groups["digest"]).name == "test_engine_sha256"
    ungrouped = groups["bench_tiny.py"]
    assert report.reference(ungrouped) is min(ungrouped, key=lambda b: b.median)
    assert [b.median for b in ungrouped] == sorted(b.median for b in ungrouped)


def test_text_table(tiny_run: TinyRun) -> None:
    run = report.load_run(tiny_run.json_path)
    text = report.render_text(run)
    named = _by_name(run)
    assert "[digest]" in text
    assert "[other group]" in text
    assert "[bench_tiny.py]" in text
    wrong_line = next(line for line in text.splitlines() if "wrong_answer" in line)
    assert "WRONG" in wrong_line
    engine_line = next(line for line in text.splitlines() if line.strip().startswith("engine_sha256 "))
    assert report.format_time(named["test_engine_sha256"].median) in engine_line
    assert report.format_time(named["test_engine_sha256"].p99) in engine_line
    assert "ref" in engine_line
    peer_line = next(
        line for line in text.splitlines() if line.strip().startswith("sha256 of joined chunks ")
    )
    ratio = named["test_sha256_of_joined_chunks"].median / named["test_engine_sha256"].median
    assert report.format_ratio(ratio) in peer_line
    assert "Engine vs peers" in text
    assert "names peer 'not_in_this_run', which is not in this run" in text
    assert all(line == line.rstrip() for line in text.splitlines())


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in {"meta", "br", "rect", "line", "path"}:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"meta", "br", "rect", "line", "path"}:
            return
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()


def test_html_is_self_contained_with_a_cdf_per_group(tiny_run: TinyRun) -> None:
    run = report.load_run(tiny_run.json_path)
    page = report.render_html(run)
    parsed = _Collector()
    parsed.feed(page)
    parsed.close()
    assert parsed.open == ["html"] or parsed.open == [], parsed.open
    assert "script" not in parsed.tags
    assert "link" not in parsed.tags
    assert "img" not in parsed.tags
    urls = [value for name, value in parsed.attrs if name in {"src", "href"}]
    assert urls == []
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    groups = run.groups()
    assert page.count('aria-label="latency CDF"') == len(groups)
    assert page.count('aria-label="medians"') == len(groups)
    for bench in run.benchmarks:
        assert html.escape(bench.label) in page
    assert run.machine_info["node"] in page
    assert run.datetime in page
    assert str(run.commit_info.get("id", ""))[:12] in page
    assert 'class="wrong">WRONG' in page


def test_cli_writes_the_html_and_compares_with_a_baseline(
    tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nested" / "report.html"
    assert (
        report.main([str(tiny_run.json_path), "--html", str(out), "--compare", str(tiny_run.json_path)]) == 0
    )
    printed = capsys.readouterr().out
    assert "vs baseline" in printed
    assert "+0.0%" in printed
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_cli_refuses_what_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_run = tmp_path / "other.json"
    not_a_run.write_text('{"hello": 1}', encoding="utf-8")
    assert report.main([str(not_a_run)]) == 2
    assert "no 'benchmarks' list" in capsys.readouterr().err
    empty = tmp_path / "empty.json"
    empty.write_text('{"benchmarks": []}', encoding="utf-8")
    assert report.main([str(empty)]) == 1
    assert report.main([str(tmp_path / "missing.json")]) == 2


def test_a_run_saved_without_raw_timings_still_reports_medians(tiny_run: TinyRun) -> None:
    document = tiny_run.document
    for bench in document["benchmarks"]:
        del bench["stats"]["data"]
    run = report.parse_run(document)
    assert all(b.p99 is None and not b.has_data for b in run.benchmarks)
    text = report.render_text(run)
    assert "no raw timings" in text
    assert "No raw timings in this run" in report.render_html(run)


def test_a_bad_role_is_refused(tiny_run: TinyRun) -> None:
    document = json.loads(tiny_run.json_path.read_text(encoding="utf-8"))
    document["benchmarks"][0]["extra_info"]["role"] = "champion"
    with pytest.raises(ValueError, match="role must be 'engine' or 'peer'"):
        report.parse_run(document)


def test_percentile_and_formatting() -> None:
    data = [float(x) for x in range(1, 101)]
    assert report.percentile(data, 0.0) == 1.0
    assert report.percentile(data, 1.0) == 100.0
    assert report.percentile(data, 0.5) == 50.5
    assert report.percentile(data, 0.99) == pytest.approx(99.01)
    assert report.percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError, match="no data"):
        report.percentile([], 0.5)
    assert report.format_time(1.5e-7) == "150 ns"
    assert report.format_time(2.345e-6) == "2.35 µs"
    assert report.format_time(0.0123) == "12.3 ms"
    assert report.format_time(3.0) == "3.00 s"
    assert report.format_ratio(4.271) == "4.27x"
    assert report.format_ratio(123.4) == "123x"
    assert report.format_speedup(3.3) == "3.30x faster"
    assert report.format_speedup(0.8) == "1.25x slower"
    assert report.format_speedup(None) == "-"
    assert report.format_rate(1234.0) == "1.23k"
    assert report.format_rate(2_500_000.0) == "2.50M"
    assert report.format_rate(12.0) == "12.0"
