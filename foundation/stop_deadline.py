"""A bound on a graceful stop: once a stop signal arrives, the process ends by a deadline even if
its clean-up hangs.

A faust worker stopping in the middle of a consumer-group rebalance can wait well over a minute
for the group before it exits, and whoever stops it (`gdx up`, a service manager, a test) then
kills it anyway without a word. Ending it ourselves first leaves one log line saying why, and
loses nothing where the caller's work is redelivered until committed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

EXIT_STOP_TIMEOUT = 75  # EX_TEMPFAIL: the stop did not finish; the work left is delivered again

log = logging.getLogger("gdx.stop")


def _exit_now(code: int) -> None:
    logging.shutdown()
    os._exit(code)


class StopDeadline:
    """Armed at the first stop signal; a thread (which runs even when the event loop is stuck)
    ends the process when `timeout_s` passes first."""

    def __init__(self, timeout_s: float, what: str, exit_process: Callable[[int], None] = _exit_now) -> None:
        self.timeout_s = timeout_s
        self.what = what
        self.exit_process = exit_process
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """Start the countdown; a further signal does not restart it."""
        if self._timer is None:
            self._timer = threading.Timer(self.timeout_s, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        log.error(
            "graceful stop did not finish in time; exiting",
            extra={"service": self.what, "timeout_s": self.timeout_s, "exit_code": EXIT_STOP_TIMEOUT},
        )
        self.exit_process(EXIT_STOP_TIMEOUT)
