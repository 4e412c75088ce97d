"""The callgrind driver: its parser on real callgrind output, the per-operation arithmetic, the baseline
comparison, and the signing binary counted for real (instruction counts must be exactly reproducible)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benches.callgrind import driver

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
needs_cargo = pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed")


@needs_valgrind
def test_parses_the_totals_of_a_real_callgrind_run(tmp_path: Path) -> None:
    out_file = tmp_path / "callgrind.out"
    true = shutil.which("true")
    assert true is not None
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", true],
        capture_output=True,
        text=True,
        check=True,
    )
    totals = driver.parse_callgrind_totals(out_file.read_text(encoding="utf-8"))
    reported = re.search(r"Collected : (\d+)", result.stderr)
    assert reported is not None, result.stderr
    assert totals == {"Ir": int(reported.group(1))}
    assert totals["Ir"] > 10_000


def test_parser_reads_several_events_and_the_older_summary_line() -> None:
    text = "# callgrind format\nversion: 1\nevents: Ir Dr Dw\nsummary: 120 40\nfn=(1) main\n0 120 40\n"
    assert driver.parse_callgrind_totals(text) == {"Ir": 120, "Dr": 40, "Dw": 0}
    text_with_totals = "events: Ir\nsummary: 5\nfn=(1) f\n0 5\ntotals: 7\n"
    assert driver.parse_callgrind_totals(text_with_totals) == {"Ir": 7}


def test_parser_refuses_what_callgrind_did_not_write() -> None:
    with pytest.raises(driver.CallgrindError, match="not a callgrind output file"):
        driver.parse_callgrind_totals("hello\n")


def test_instructions_per_operation_cancels_the_fixed_cost() -> None:
    assert driver.instructions_per_operation(1_000 + 250, 1_000 + 101 * 250, 1, 101) == 250.0
    with pytest.raises(ValueError, match="must exceed"):
        driver.instructions_per_operation(1, 2, 5, 5)
    with pytest.raises(driver.CallgrindError, match="fewer instructions"):
        driver.instructions_per_operation(500, 400, 1, 2)


def test_comparison_flags_growth_beyond_the_threshold_only() -> None:
    comparisons = {
        c.operation: c
        for c in driver.compare(
            {"mint": 1030.0, "hmac": 1010.0, "new": 5.0}, {"mint": 1000.0, "hmac": 1000.0, "gone": 9.0}
        )
    }
    assert comparisons["mint"].change_percent == pytest.approx(3.0)
    assert comparisons["mint"].regressed(2.0)
    assert not comparisons["mint"].regressed(5.0)
    assert not comparisons["hmac"].regressed(2.0)
    assert comparisons["new"].baseline is None
    assert not comparisons["new"].regressed(0.0)
    assert comparisons["gone"].current is None
    assert comparisons["gone"].change_percent is None
    measurements = [driver.Measurement("mint", "mint a token", 1030.0, 1, 101)]
    table = driver.render_table(measurements, list(comparisons.values()), threshold_percent=2.0)
    mint_line = next(line for line in table.splitlines() if line.strip().startswith("mint"))
    assert "+3.00% !" in mint_line
    assert "1,000" in mint_line
    assert "in the baseline only" in table


@pytest.fixture(scope="module")
def signer_binary() -> Path:
    if shutil.which("valgrind") is None or shutil.which("cargo") is None:
        pytest.skip("valgrind and cargo are needed to count the signing binary")
    return driver.build()


@needs_valgrind
@needs_cargo
def test_every_listed_operation_is_correct_natively(signer_binary: Path) -> None:
    operations = driver.list_operations(signer_binary)
    assert {
        "rest-jwt-es256",
        "rest-jwt-eddsa",
        "pooled-jwt-es256",
        "hmac-exchange",
        "parse-es256-sec1",
    } <= set(operations)
    for operation in operations:
        result = subprocess.run(
            [str(signer_binary), operation, "20"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{operation} x20: correct"
    bad = subprocess.run([str(signer_binary), "no-such-op", "1"], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "unknown operation" in bad.stderr


@needs_valgrind
@needs_cargo
def test_counts_are_exactly_reproducible(signer_binary: Path, tmp_path: Path) -> None:
    first = driver.count(signer_binary, "hmac-exchange", 11, tmp_path)
    second = driver.count(signer_binary, "hmac-exchange", 11, tmp_path)
    assert first == second
    (measurement,) = driver.measure(signer_binary, {"hmac-exchange": "hmac"}, low=1, high=11)
    # HMAC-SHA256 over a ~200-byte message plus base64: thousands of instructions, far from millions
    assert 1_000 < measurement.instructions < 200_000


@needs_valgrind
@needs_cargo
def test_driver_saves_a_baseline_and_fails_on_a_regression(
    signer_binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    common = ["--binary", str(signer_binary), "--ops", "hmac-exchange", "--iterations", "10"]
    assert driver.main([*common, "--save-baseline", str(baseline)]) == 0
    assert driver.main([*common, "--compare", str(baseline), "--threshold", "0.5"]) == 0
    assert "no operation costs more" in capsys.readouterr().out

    document = json.loads(baseline.read_text(encoding="utf-8"))
    document["operations"]["hmac-exchange"]["instructions"] *= 0.9  # as if the code had grown 11 %
    baseline.write_text(json.dumps(document), encoding="utf-8")
    assert driver.main([*common, "--compare", str(baseline), "--threshold", "2"]) == 1
    assert "regressed beyond 2.0%: hmac-exchange +11.1" in capsys.readouterr().out

    assert driver.main([*common, "--compare", str(tmp_path / "none.json")]) == 2
    assert driver.main(["--binary", str(signer_binary), "--ops", "no-such-op"]) == 2
