"""The stop deadline ends a stuck stop, once, and only after its timeout."""

from __future__ import annotations

import threading

import pytest

from foundation.stop_deadline import EXIT_STOP_TIMEOUT, StopDeadline


def test_a_stop_that_outlasts_the_deadline_ends_the_process_with_a_line(caplog: pytest.LogCaptureFixture) -> None:
    exits: list[int] = []
    ended = threading.Event()
    deadline = StopDeadline(0.2, "worker", exit_process=lambda code: (exits.append(code), ended.set()))
    deadline.arm()
    deadline.arm()  # a second signal neither restarts the countdown nor adds a second exit
    assert not ended.wait(0.05), "ended before its timeout"
    assert ended.wait(5)
    threading.Event().wait(0.3)
    assert exits == [EXIT_STOP_TIMEOUT]
    assert "graceful stop did not finish in time" in caplog.text


def test_an_unarmed_deadline_never_ends_the_process() -> None:
    exits: list[int] = []
    StopDeadline(0.05, "worker", exit_process=exits.append)
    threading.Event().wait(0.2)
    assert exits == []
