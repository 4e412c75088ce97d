"""The pre-mint pool: fresh tokens only, each handed out once (across threads and across fork), and a refill
thread that stops on close(), on garbage collection and at interpreter exit."""

from __future__ import annotations

import contextlib
import gc
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

from engine.auth import CdpKey
from tests.signer.conftest import decode
from tests.support.keys import TestKey, new_es256_key
from tests.support.leaks import observe

ORDERS = ("POST", "/api/v3/brokerage/orders")
CANCEL = ("POST", "/api/v3/brokerage/orders/batch_cancel")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


def premint_threads() -> int:
    """Live refill threads of this process (Rust threads are invisible to `threading`)."""
    count = 0
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # the thread exited while we looked
            count += (task / "comm").read_text().strip() == "cdp-premint"
    return count


def claims_of(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_pooled_tokens_are_valid_and_for_the_right_uri(cdp_key: CdpKey, test_key: TestKey) -> None:
    with cdp_key:
        cdp_key.premint([ORDERS, CANCEL], depth=8, max_age=30.0)
        wait_for(lambda: cdp_key.pooled(*ORDERS) == 8 and cdp_key.pooled(*CANCEL) == 8)
        assert cdp_key.pooled("GET", "/api/v3/brokerage/accounts") == 0
        for method, path in (ORDERS, CANCEL, ORDERS):
            _, claims = decode(cdp_key.rest_jwt(method, path), test_key)
            assert claims["uri"] == f"{method} api.coinbase.com{path}"
        # a query string does not change the uri, so it is served from the same pool
        _, claims = decode(cdp_key.rest_jwt("post", ORDERS[1] + "?x=1"), test_key)
        assert claims["uri"] == f"POST api.coinbase.com{ORDERS[1]}"


def test_pool_for_a_local_host_port() -> None:
    test_key = new_es256_key()
    with CdpKey(test_key.name, test_key.private_key) as key:
        key.premint([ORDERS], depth=4, host="127.0.0.1:18080")
        wait_for(lambda: key.pooled(*ORDERS, host="127.0.0.1:18080") == 4)
        assert key.pooled(*ORDERS) == 0  # another host is another uri
        assert (
            claims_of(key.rest_jwt(*ORDERS, host="127.0.0.1:18080"))["uri"]
            == f"POST 127.0.0.1:18080{ORDERS[1]}"
        )


def test_never_a_token_older_than_max_age() -> None:
    test_key = new_es256_key()
    max_age = 0.3
    with CdpKey(test_key.name, test_key.private_key) as key:
        key.premint([ORDERS], depth=16, max_age=max_age)
        wait_for(lambda: key.pooled(*ORDERS) == 16)
        time.sleep(1.5)  # every token of the first fill is now stale
        for _ in range(40):
            before = time.time()
            nbf = int(claims_of(key.rest_jwt(*ORDERS))["nbf"])  # type: ignore[call-overload]
            # minted at most max_age before the pop; nbf floors to the second
            assert nbf > before - max_age - 1.0
            time.sleep(0.01)


def test_clock_offset_change_retires_pooled_tokens() -> None:
    test_key = new_es256_key()
    with CdpKey(test_key.name, test_key.private_key) as key:
        key.premint([ORDERS], depth=16)
        wait_for(lambda: key.pooled(*ORDERS) == 16)
        key.clock_offset = 5000.0
        for _ in range(32):
            nbf = int(claims_of(key.rest_jwt(*ORDERS))["nbf"])  # type: ignore[call-overload]
            assert nbf >= int(time.time()) + 4990


def test_100k_tokens_from_several_threads_are_all_distinct() -> None:
    test_key = new_es256_key()
    threads, per_thread = 4, 25_000
    results: list[list[str]] = [[] for _ in range(threads)]
    with CdpKey(test_key.name, test_key.private_key) as key:
        key.premint([ORDERS], depth=512)
        wait_for(lambda: key.pooled(*ORDERS) >= 256)
        start = threading.Barrier(threads)

        def take(out: list[str]) -> None:
            start.wait()
            rest_jwt = key.rest_jwt
            for _ in range(per_thread):
                out.append(rest_jwt(*ORDERS))

        workers = [threading.Thread(target=take, args=(r,)) for r in results]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
            assert not worker.is_alive()
    tokens = [token for r in results for token in r]
    assert len(tokens) == threads * per_thread
    assert len(set(tokens)) == len(tokens)
    nonces = {token.split(".", 1)[0] for token in tokens}  # the header carries the nonce
    assert len(nonces) == len(tokens)


def test_forked_child_never_reuses_the_parents_pool() -> None:
    test_key = new_es256_key()
    depth = 32
    with CdpKey(test_key.name, test_key.private_key) as key:
        key.premint([ORDERS], depth=depth, max_age=60.0)
        wait_for(lambda: key.pooled(*ORDERS) == depth)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: take more tokens than the parent's pool held, report them, exit at once
            try:
                os.close(read_end)
                tokens = [key.rest_jwt(*ORDERS) for _ in range(depth * 2)]
                os.write(write_end, "\n".join(tokens).encode())
                os._exit(0)
            except BaseException:
                os._exit(1)
        os.close(write_end)
        chunks: list[bytes] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_end], [], [], 0.5)
            if ready:
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        else:
            os.kill(pid, 9)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child failed or hung"
        child_tokens = set(b"".join(chunks).decode().split("\n"))
        assert len(child_tokens) == depth * 2
        # the parent's pool still holds exactly the tokens it held at fork time: the child used none of them
        parent_tokens = {key.rest_jwt(*ORDERS) for _ in range(depth)}
        assert not parent_tokens & child_tokens
        for token in list(child_tokens)[:4]:
            decode(token, test_key)


def settled_premint_threads() -> int:
    """The thread count once keys of earlier tests that only await a collection (a client that failed a
    request sits in a reference cycle until then) have been collected and their threads have exited."""
    gc.collect()
    count = premint_threads()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = premint_threads()
        if now == count:
            return count
        count = now
    return count


def test_refill_thread_stops_on_close_and_on_garbage_collection() -> None:
    test_key = new_es256_key()
    baseline = settled_premint_threads()
    key = CdpKey(test_key.name, test_key.private_key)
    key.premint([ORDERS], depth=4)
    wait_for(lambda: premint_threads() == baseline + 1)  # the thread names itself once it runs
    key.premint([ORDERS, CANCEL], depth=4)  # reconfiguring replaces the thread
    wait_for(lambda: key.pooled(*CANCEL) == 4)
    assert premint_threads() == baseline + 1
    key.close()
    assert premint_threads() == baseline  # close() joins the thread
    key.close()
    assert key.rest_jwt(*ORDERS)  # a closed key still mints on demand

    def premint_and_drop() -> None:
        dropped = CdpKey(test_key.name, test_key.private_key)
        dropped.premint([ORDERS], depth=4)
        wait_for(lambda: premint_threads() == baseline + 1)

    premint_and_drop()
    gc.collect()
    assert premint_threads() == baseline


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="scheduling classes are Linux's")
def test_refill_thread_mints_on_spare_cpu_only(cdp_key: CdpKey) -> None:
    """The refill thread is in the idle class: waking it can never preempt the thread placing an order."""
    cdp_key.premint([ORDERS], depth=4)
    wait_for(lambda: cdp_key.pooled(*ORDERS) == 4)
    policies = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # a thread (another test's) exited while we looked
            if (task / "comm").read_text().strip() == "cdp-premint":
                policies.add(os.sched_getscheduler(int(task.name)))
    assert policies == {os.SCHED_IDLE}
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the caller's own thread is left as it was


def test_refill_thread_stops_at_interpreter_exit() -> None:
    """A process that never closes its key exits promptly and cleanly; the thread is stopped by atexit."""
    test_key = new_es256_key()
    script = f"""
import atexit, os, time
from pathlib import Path

def count():
    n = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            n += (task / "comm").read_text().strip() == "cdp-premint"
        except OSError:  # the thread exited while we looked
            pass
    return n

def report():  # registered before engine is imported, so it runs after the engine's own atexit hook
    deadline = time.monotonic() + 10
    while count() and time.monotonic() < deadline:
        time.sleep(0.01)
    print("threads at exit:", count())

atexit.register(report)
from engine.auth import CdpKey
key = CdpKey(os.environ["KEY_NAME"], os.environ["KEY_SECRET"])
key.premint([{ORDERS!r}], depth=64)
while key.pooled(*{ORDERS!r}) < 8:
    time.sleep(0.005)
print("threads running:", count())
"""
    env = {**os.environ, "KEY_NAME": test_key.name, "KEY_SECRET": test_key.private_key}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    observe(result.stdout + result.stderr, "premint exit subprocess")
    assert result.returncode == 0, result.stderr
    assert "threads running: 1" in result.stdout
    assert "threads at exit: 0" in result.stdout


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 0}, "depth"),
        ({"max_age": 0.0}, "max_age"),
        ({"max_age": 115.0}, "max_age"),
        ({"host": "https://api.coinbase.com"}, "host"),
    ],
)
def test_premint_arguments_are_checked(cdp_key: CdpKey, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cdp_key.premint([ORDERS], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        cdp_key.premint([])
