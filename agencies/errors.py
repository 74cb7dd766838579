"""The error the simulated agencies raise for input a user can correct.

It mirrors foundation.errors.GdxError (what + fix) without depending upward on `streams`; the command
layer turns it into a GdxError, so a bad parameter ends as one clear line, not a stack trace.
"""

from __future__ import annotations


class SimulationError(Exception):
    """A bad parameter or state of the simulation, with the remedy."""

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix
