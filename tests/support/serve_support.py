"""`gdx serve` as a separate process, the way an operator runs it, for the tests that need the
real server (uvicorn, signals, several processes) rather than FastAPI's TestClient.

It serves HTTPS with the project CA's certificate under the test's state directory, as by default;
`ca_file(env)` is the CA to verify it with."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from foundation.http_get import http_get
from streams.security.pki import pki_root
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


def ca_file(env: dict[str, str]) -> Path:
    """The project CA of the state directory `env` names, which `gdx serve` makes on its first start."""
    return pki_root(Path(env["GDX_STATE_DIR"]).resolve()) / "ca.pem"


def answers(url: str, cafile: Path | None = None) -> bool:
    try:
        return http_get(url, cafile=cafile)[0] == 200
    except OSError:
        return False


@contextmanager
def lookup_api(
    env: dict[str, str], logs: Path, *args: str, trust: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`gdx serve ARGS` (give GDX_LOOKUP_PORT=0 for a free port); yields its URL and process once
    /healthz answers (over HTTPS verified with the project CA, unless it serves plain HTTP), and
    stops it on exit. `trust`: the CA of an operator's certificate instead."""
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
        while url is None or not answers(f"{url}/healthz", trust or ca_file(env)):
            assert process.poll() is None and time.monotonic() < deadline, (
                f"gdx serve did not start:\n{out.read_text()}\n{err.read_text()[-3000:]}"
            )
            found = re.search(r"lookup API: (https?://\S+)", out.read_text())
            url = found.group(1) if found else None
            time.sleep(0.1)
        yield url, process
    finally:
        stop(process)
