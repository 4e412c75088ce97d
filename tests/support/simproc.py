"""`engine sim` in a subprocess, for tests and benchmarks whose simulator must not share a process (or a CPU
budget) with the code under test.

The simulator's stderr goes to a file, not a pipe: a pipe nobody reads until shutdown would stall a simulator
that logged more than the pipe holds. Everything it printed is passed to the secret-leak scan.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.support import leaks

READY = "engine sim listening on "


@dataclass(frozen=True)
class SimSubprocess:
    process: subprocess.Popen[str]
    base_url: str  # "http(s)://127.0.0.1:PORT"

    @property
    def host(self) -> str:
        """host:port, as a JWT's uri names it."""
        return self.base_url.split("://", 1)[1]


@contextmanager
def running_sim(key_file: Path, *flags: str) -> Iterator[SimSubprocess]:
    """Start `engine sim --port 0 --key KEY_FILE FLAGS...`, yield once it listens, stop it with SIGTERM."""
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "sim", "--port", "0", "--key", str(key_file), *flags],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # blocks until the simulator is ready, or has died
            leaks.observe(line, "engine sim stdout")
            if not line.startswith(READY):
                process.wait(timeout=10)
                raise AssertionError(f"engine sim did not start: {line!r}; stderr: {_read(errors)[-2000:]}")
            yield SimSubprocess(process, line[len(READY) :].strip())
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                leaks.observe(process.stdout.read(), "engine sim stdout")
                process.stdout.close()
            leaks.observe(_read(errors), "engine sim stderr")


def _read(stream: IO[str]) -> str:
    stream.seek(0)
    return stream.read()
