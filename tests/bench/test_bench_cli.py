"""The benchmark runner (benches/runner.py, `make bench`): the commands it runs and a whole run of a tiny
suite; and `engine bench`, which finds the checkout's runner."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benches import runner as bench_cli
from engine.cli import bench as engine_bench
from tests.bench.tiny_suite import ROOT, write_suite


def _args(*argv: str) -> argparse.Namespace:
    return bench_cli.build_parser().parse_args(argv)


def test_runs_its_own_checkout_or_the_one_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_cli.find_checkout(None) == ROOT
    assert bench_cli.find_checkout(ROOT) == ROOT
    assert bench_cli.find_checkout(tmp_path) is None
    assert bench_cli.run_bench(_args("--checkout", str(tmp_path))) == 2
    assert "holds no benches/" in capsys.readouterr().err


def test_engine_bench_finds_the_runner_from_inside_the_checkout_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert engine_bench.find_checkout(ROOT / "engine" / "cli") == ROOT
    assert engine_bench.find_checkout(tmp_path) is None
    monkeypatch.chdir(tmp_path)
    assert engine_bench.run(argparse.Namespace(passthrough=[])) == 2
    err = capsys.readouterr().err
    assert "make bench" in err
    assert "benches/" in err
    command = [sys.executable, "-m", "engine", "bench", "--help"]
    inside = subprocess.run(command, cwd=ROOT / "engine", capture_output=True, text=True, check=False)
    assert inside.returncode == 0, inside.stderr
    assert "usage: benches/runner.py" in inside.stdout  # the arguments went to the checkout's runner


def test_the_pytest_command_per_mode(tmp_path: Path) -> None:
    paths = bench_cli.BenchPaths(checkout=tmp_path, out=tmp_path / "out")
    plain = bench_cli.pytest_command(paths, _args())
    assert "--benchmark-only" in plain
    assert f"--benchmark-json={paths.results}" in plain
    assert "--bench-progress" in plain
    assert "benches._plugin" in plain
    assert not any(a.startswith(("--benchmark-save", "--benchmark-compare")) for a in plain)
    saving = bench_cli.pytest_command(paths, _args("--save-baseline"))
    assert "--benchmark-save=baseline" in saving
    assert "--benchmark-save-data" in saving
    checking = bench_cli.pytest_command(
        paths, _args("--check", "--threshold", "12.5", "-k", "sign", "--", "-x")
    )
    assert "--benchmark-compare" in checking
    assert "--benchmark-compare-fail=median:12.5%" in checking
    assert checking[-3:] == ["-k", "sign", "-x"]
    callgrind = bench_cli.callgrind_command(paths, _args("--check", "--callgrind-threshold", "1"))
    assert callgrind[-4:] == ["--compare", str(paths.callgrind_baseline), "--threshold", "1"]


def test_check_without_a_baseline_says_to_save_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_suite(tmp_path)
    assert bench_cli.run_bench(_args("--checkout", str(tmp_path), "--check", "--no-callgrind")) == 2
    assert "make bench-save" in capsys.readouterr().err


def test_a_whole_run_save_and_check(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    write_suite(tmp_path)
    base = ["--checkout", str(tmp_path), "--no-callgrind", "-k", "not wrong_answer"]
    assert bench_cli.run_bench(_args(*base)) == 0
    printed = capfd.readouterr().out
    out = tmp_path / ".benchmarks"
    assert (out / "results.json").is_file()
    assert (out / "report.html").is_file()
    assert "[digest]" in printed
    assert "Engine vs peers" in printed

    assert bench_cli.run_bench(_args(*base, "--save-baseline")) == 0
    paths = bench_cli.BenchPaths(tmp_path, out)
    saved = paths.saved_baseline()
    assert saved is not None
    assert saved.name == "0001_baseline.json"
    first_saved = saved.read_text(encoding="utf-8")
    # saving again replaces the baseline instead of piling up runs
    assert bench_cli.run_bench(_args(*base, "--save-baseline")) == 0
    assert len(list(out.glob("baseline/*/*.json"))) == 1
    again = paths.saved_baseline()
    assert again is not None
    assert again.read_text(encoding="utf-8") != first_saved
    capfd.readouterr()

    # against itself, within a generous threshold: passes
    assert bench_cli.run_bench(_args(*base, "--check", "--threshold", "100000")) == 0
    assert "vs baseline" in capfd.readouterr().out

    # a baseline a thousand times faster than now: every median regressed, the check fails and says so
    document = json.loads(again.read_text(encoding="utf-8"))
    for bench in document["benchmarks"]:
        for field in ("min", "max", "mean", "median", "q1", "q3"):
            bench["stats"][field] /= 1000
    again.write_text(json.dumps(document), encoding="utf-8")
    assert bench_cli.run_bench(_args(*base, "--check", "--threshold", "25")) == 1
    captured = capfd.readouterr()
    assert "Performance has regressed" in captured.out + captured.err
    assert "slower than the baseline beyond the threshold" in captured.out
    assert "Traceback" not in captured.out + captured.err


def test_a_wrong_benchmark_fails_the_run_but_still_reports(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write_suite(tmp_path)
    assert (
        bench_cli.run_bench(_args("--checkout", str(tmp_path), "--no-callgrind", "-k", "wrong_answer")) == 1
    )
    captured = capfd.readouterr()
    assert "WRONG" in captured.out
    assert "failed its correctness check" in captured.err
