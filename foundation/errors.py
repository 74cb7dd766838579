"""The one error type the command line turns into a clear message and a non-zero exit.

Every failure a user can act on (a missing tool, a busy port, an unreachable cluster) is raised as
a GdxError carrying what happened and what to do, so the CLI never shows a bare stack trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class GdxError(Exception):
    """A failure with a user-facing reason and, where one exists, the remedy."""

    def __init__(self, what: str, fix: str = "", exit_code: int = 1) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.what} — {self.fix}" if self.fix else self.what


def located(errors: Iterable[Mapping[str, Any]]) -> str:
    """Validation errors (pydantic's, FastAPI's) as one line: `field.path: message; …`."""
    return "; ".join(f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in errors)
