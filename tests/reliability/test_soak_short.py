"""The soak (`make soak`, soak/run.py) in short: thousands of orders through the Engine against `engine sim`
in its own process, faults on and rate limits on, then every journal against the simulator's ledger.

Judged here: nothing lost, nothing duplicated, every state agreed, every order placed journalled, no 429
within the budget, and every descriptor the engines opened closed again. Not judged: timings, and RSS drift
(a short run is all warm-up); the long run judges drift. `SOAK_TEST_ORDERS` makes this run longer.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soak.run import SoakOptions, soak, summary

ORDERS = int(os.environ.get("SOAK_TEST_ORDERS", "6000"))


@pytest.mark.soak
@pytest.mark.timeout(240)
def test_a_short_soak_loses_nothing_duplicates_nothing_and_gives_back_its_descriptors(tmp_path: Path) -> None:
    options = SoakOptions(
        orders=ORDERS,
        duration_s=180.0,  # a bound, not a target: the run ends at ORDERS long before on this machine
        keys=1,
        in_flight=6,
        fault_rate=0.005,  # higher than the long run's, so a short run meets every fault
        slow_response_s=0.1,
        sample_s=1.0,
        out=tmp_path,
    )
    report = soak(options)
    print(summary(report))
    verdict = report.verdict
    assert report.tally["placed"] == ORDERS
    # the faults were there to survive: 5xx answers, orders accepted then their connection dropped, slow
    # answers, WebSocket messages lost
    assert report.injected["error_5xx"] > 0, report.injected
    assert report.injected["drop_after_accept"] > 0, report.injected
    assert report.injected["slow_response"] > 0, report.injected
    assert report.ws["gaps_injected"] > 0, report.ws
    assert verdict["ledger_orders"] > 0.9 * ORDERS, verdict
    assert verdict["lost"] == 0, verdict["examples"]
    assert verdict["duplicated"] == 0, verdict["examples"]
    assert verdict["mismatched"] == 0, verdict["examples"]
    assert verdict["unresolved"] == 0, verdict
    assert verdict["journal_orders"] == ORDERS
    assert report.rate_limited == 0
    assert report.fds_after == report.fds_before, (report.fds_before, report.fds_after)
    assert (tmp_path / "soak.svg").read_text().startswith("<svg")
    # and nothing else failed the run but, maybe, the RSS drift a run this short cannot judge
    assert [f for f in report.failures if not f.startswith("RSS drifted")] == []
