"""Client instructions per gateway order over the trading socket, counted by callgrind: the frame paths side
by side.

On a loaded 2-core box a few µs of CPU per order are lost in the noise of `time.process_time`; instruction
counts are not. This starts one simulator (TLS, limits lifted; not under valgrind), then runs a client under

    valgrind --tool=callgrind python benches/callgrind/gateway_order.py --client PATH N CONFIG

placing 20 warm-up orders and N more, at N = ``low`` and N = ``high``, and reports
(I(high) - I(low)) / (high - low): one order's instructions with process start, imports, TLS and the
handshake cancelled out. PATH is ``routed`` (replies resolved from the socket's data callback,
engine.net.ws_fastpath) or ``receive`` (the plain `receive()` loop the session falls back to). The client
checks its orders were accepted and that the path asked for is the one taken. Each count takes minutes.

Usage::

    python benches/callgrind/gateway_order.py                       # both paths, N = 50 and 250
    python benches/callgrind/gateway_order.py --paths routed --low 50 --high 150
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def client(path: str, count: int, config: dict[str, str]) -> None:
    import uvloop

    from benches.bench_derivatives import AMOUNT, BTC, LIFTED_CREDITS
    from engine.auth import CdpKey
    from engine.venues.derivatives import GatewayCredits, SessionConfig, TradingSession, connection

    if path == "receive":
        connection.route_data_frames = lambda *_args, **_kwargs: False  # type: ignore[assignment]
    key = CdpKey.from_json_file(config["key_file"])
    price = Decimal(config["price"])

    async def run() -> None:
        session = TradingSession(
            key,
            config["ws_url"],
            config=SessionConfig(call_timeout_s=300.0),
            credits=GatewayCredits(key.name, LIFTED_CREDITS),
            ssl_context=ssl.create_default_context(cafile=config["ca_file"]),
        )
        async with session:
            assert session.stats.routed_frames is (path == "routed"), "not the frame path asked for"
            for i in range(20 + count):
                label = f"cg-{path}-{count}-{i}"
                result = await session.buy(BTC, AMOUNT, price=price, label=label)
                assert result.order.label == label
            await session.cancel_all_by_instrument(BTC)

    uvloop.run(run())


def count_instructions(path: str, count: int, config: dict[str, str]) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += [__file__, "--client", path, str(count), json.dumps(config)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the client under callgrind failed ({path}, {count}):\n{done.stderr[-3000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default="routed,receive")
    parser.add_argument("--low", type=int, default=50)
    parser.add_argument("--high", type=int, default=250)
    parser.add_argument("--client", nargs=3, metavar=("PATH", "N", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client[0], int(args.client[1]), json.loads(args.client[2]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    import trustme

    from benches.bench_derivatives import GatewaySim, _far_bid
    from tests.support.keys import new_es256_key
    from tests.support.simproc import running_sim

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        cert.cert_chain_pems[0].write_to_path(workdir / "cert.pem")
        cert.private_key_pem.write_to_path(workdir / "cert.key")
        ca.cert_pem.write_to_path(workdir / "ca.pem")
        key = new_es256_key()
        key_file = key.write_portal_file(workdir / "cdp_api_key.json")
        flags = ("--no-rate-limit", "--tick-interval", "0")
        flags += ("--tls-cert", str(workdir / "cert.pem"), "--tls-key", str(workdir / "cert.key"))
        with running_sim(key_file, *flags) as proc:
            ws_url = proc.base_url.replace("https://", "wss://") + "/ws/api/v2"
            sim = GatewaySim(proc.base_url, ws_url, key, workdir / "ca.pem")
            config = {
                "ws_url": ws_url,
                "ca_file": str(sim.ca_file),
                "key_file": str(key_file),
                "price": str(_far_bid(sim)),
            }
            for path in args.paths.split(","):
                low = count_instructions(path, args.low, config)
                high = count_instructions(path, args.high, config)
                per_order = (high - low) / (args.high - args.low)
                print(f"{path:8} {per_order:10,.0f} instructions per order", flush=True)


if __name__ == "__main__":
    main()
