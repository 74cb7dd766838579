"""Bad input to the lookup commands ends in one clear line, never a traceback."""

from __future__ import annotations

import socket

import pytest

from foundation.errors import GdxError
from schemas.examples import SOMCHAI
from streams.lookup_server import bind
from tests.support.cli_run import run_gdx


def test_a_consent_with_a_wrong_check_digit_is_refused_in_one_line() -> None:
    result = run_gdx(
        "consent",
        "grant",
        "--subject",
        SOMCHAI[:12] + "0",
        "--consumer",
        "dlt",
        "--purpose",
        "licence-application",
        "--datasets",
        "dopa.person",
        "--auth-event-id",
        "thaid-4711",
    )
    assert result.code == 1 and "Traceback" not in result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith("gdx: invalid consent: subject_id:") and "check digit" in line


def test_a_busy_port_names_the_setting() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        with pytest.raises(GdxError, match="GDX_LOOKUP_PORT") as raised:
            bind("127.0.0.1", holder.getsockname()[1])
        assert "already in use" in str(raised.value)
    finally:
        holder.close()


def test_a_number_of_lookup_processes_out_of_range_is_one_line() -> None:
    from_env = run_gdx("serve", env={"GDX_LOOKUP_WORKERS": "17"})
    assert from_env.code == 1 and "Traceback" not in from_env.err
    assert from_env.err.strip() == (
        "gdx: invalid settings: lookup_workers: Input should be less than or equal to 16 "
        "— fix the environment variable or settings file"
    )
    from_flag = run_gdx("serve", "--workers", "0")
    assert from_flag.code == 2 and "Traceback" not in from_flag.err
    assert from_flag.err.strip().startswith("gdx serve: argument --workers: invalid choice: 0")
    assert "\n" not in from_flag.err.strip()
