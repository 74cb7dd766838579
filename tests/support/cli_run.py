"""Run `gdx` as a user would: a separate process, its own environment, a bounded time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

REGISTRY_PREFIX = "GDX_SCHEMA_REGISTRY_"


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str
    seconds: float


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The test's settings on top of an environment without any GDX ones of the caller but the
    session's schema registry, which the session reaches as an external one (as it does the broker,
    whose KAFKA_SSL_* are kept alike)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(REGISTRY_PREFIX) or not k.startswith("GDX_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    return {**base, **(env or {})}


def run_gdx(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> CliResult:
    """`python -m streams.cli ARGS` with the test's environment on top of a clean GDX one."""
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr, time.monotonic() - began)
