"""`gdx serve` as a separate process, the way an operator runs it, for the tests that need the
real server (uvicorn, signals, several processes) rather than FastAPI's TestClient."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.cli_run import clean_env


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL after 30 s; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def lookup_api(env: dict[str, str], logs: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`gdx serve ARGS` (give GDX_LOOKUP_PORT=0 for a free port); yields its URL and process once
    /healthz answers, and stops it on exit."""
    out, err = logs / "serve.out", logs / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "serve", *args],
            env=clean_env(env),
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None or not answers(f"{url}/healthz"):
            assert process.poll() is None and time.monotonic() < deadline, (
                f"gdx serve did not start:\n{out.read_text()}\n{err.read_text()[-3000:]}"
            )
            found = re.search(r"lookup API: (http://\S+)", out.read_text())
            url = found.group(1) if found else None
            time.sleep(0.1)
        yield url, process
    finally:
        stop(process)
