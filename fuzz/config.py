"""The worker's config loader (engine/ops/config.py): a TOML file through `load_config`.

Files are the fuzzer's bytes, or TOML assembled from the config's own sections and keys (and stray ones),
each with a value of any TOML type. A Redis URL may carry a password, so `redis_url` values are the secret
here. Every refusal is a `ConfigError` naming the file and the key, repeating no 8 characters of a password.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import atheris

from fuzz.harness import Case, Draw, Secret, main

with atheris.instrument_imports(include=["engine.ops.config", "engine.risk.config", "tomllib"]):
    from engine.errors import ConfigError
    from engine.ops.config import load_config

DOCUMENTED = (ConfigError,)
_SHM = "/dev/shm"  # noqa: S108 - a private directory is made below it
CONFIG_FILE = (
    Path(tempfile.mkdtemp(prefix="fuzz-config-", dir=_SHM if os.path.isdir(_SHM) else None)) / "w.toml"
)
SECTIONS: dict[str, dict[str, list[object]]] = {
    "exchange": {"base_url": ["https://api.coinbase.com", "http://127.0.0.1:1", "ftp://x"],
                 "request_timeout_s": [10.0, -1, math.nan]},
    "credentials": {"source": ["env", "file", "keyring", "ENV"], "file": ["key.json", ""],
                    "keyring_service": ["s"], "keyring_username": ["u"]},
    "limits": {"private_rps": [30.0, 0, math.inf], "public_rps": [10], "burst": [1, 0.5],
               "max_retries": [3, 21, -1, 2.5], "redis_url": [], "redis_namespace": ["engine", "a:b"],
               "redis_timeout_s": [0.5], "expected_workers": [1, 0], "fallback_fraction": [0.7, 1.5, 0]},
    "risk": {"products": [["BTC-USD"], "BTC-USD", [5]], "max_order_notional": ["1000", "NaN", 5.5],
             "default_limits": [{}], "product_limits": [{"BTC-USD": {"max_order_size": "1"}}]},
    "signals": {"webhook": [True, False], "host": ["127.0.0.1"], "port": [8787, 0, 70000],
                "secret_env": ["ENGINE_WEBHOOK_SECRET", "1BAD", ""], "window_s": [30.0],
                "queue_size": [1000, 0], "redis_url": [], "redis_group": ["g"], "consumer": ["c"],
                "reclaim_idle_s": [30], "max_attempts": [5, 0]},
    "journal": {"path": ["j.sqlite", ""], "durability": ["os", "full", "none"], "audit_log": ["a.jsonl"]},
    "metrics": {"enabled": [True], "host": ["127.0.0.1"], "port": [9464, -1]},
    "worker": {"dry_run": [False, "yes"], "cancel_open_orders_on_exit": [True], "drain_timeout_s": [10],
               "concurrency": [16, 0, 5000], "client_order_prefix": ["eng", "a-b", ""], "busy_poll": [False]},
    "logging": {"level": ["INFO", "debug", "LOUD"], "json": [True, 1]},
}  # fmt: skip


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string, escapes and all
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    return '""'


def case(data: bytes, secret: Secret) -> Case:
    draw = Draw(data)
    if draw.int(0, 3) == 0:
        raw = draw.bytes(3000)
        return _load(raw), []
    lines: list[str] = []
    passwords: list[str] = []
    for section, keys in SECTIONS.items():
        if not draw.flag():
            continue
        lines.append(f"[{section if draw.int(0, 9) else draw.text(8)}]")
        for name, typical in keys.items():
            if not draw.flag():
                continue
            if name == "redis_url":
                password = secret(draw.ascii(24) or "hunter2hunter2")
                passwords.append(password)
                value: object = draw.pick(
                    [f"redis://:{password}@127.0.0.1:6379/0", f"rediss://user:{password}@h/0",
                     f"http://:{password}@h", password]
                )  # fmt: skip
            else:
                value = draw.pick([*typical, draw.text(20), draw.float(), draw.int(-(2**63), 2**63 - 1), []])
            lines.append(f"{name if draw.int(0, 9) else draw.text(8)} = {_toml(value)}")
    text = "\n".join(lines)
    raw = text.encode("utf-8", "surrogatepass")
    if draw.int(0, 3) == 0:
        at = draw.int(0, len(raw))
        raw = raw[:at] + draw.bytes(4) + raw[at:]
    return _load(raw), passwords


def _load(raw: bytes) -> object:
    def call() -> object:
        CONFIG_FILE.write_bytes(raw)
        return load_config(CONFIG_FILE)

    return call


if __name__ == "__main__":
    main(case, DOCUMENTED)
