"""The error the simulated agencies raise for input a user can correct: a GdxError, so the
command line says it in one line ("gdx: what — what to do") like every other such failure."""

from __future__ import annotations

from foundation.errors import GdxError


class SimulationError(GdxError):
    """A bad parameter or state of the simulation, with the remedy."""
