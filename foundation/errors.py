"""The one error type the command line turns into a clear message and a non-zero exit.

Every failure a user can act on (a missing tool, a busy port, an unreachable cluster) is raised as
a GdxError carrying what happened and what to do, so the CLI never shows a bare stack trace.
"""

from __future__ import annotations


class GdxError(Exception):
    """A failure with a user-facing reason and, where one exists, the remedy."""

    def __init__(self, what: str, fix: str = "", exit_code: int = 1) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.what} — {self.fix}" if self.fix else self.what
