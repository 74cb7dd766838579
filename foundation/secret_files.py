"""Files that hold a secret (a signing key, a token, a private key) are born private: created with
mode 0600 in one call, in a folder made 0700, so there is no moment in which another user could
read them, as there is between a write and a later chmod."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644


def create_secret(path: Path, content: str | bytes) -> bool:
    """Write `content` to a new file at `path`, mode 0600 from its creation; False when the file
    already exists (another process made it first: read that one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as out:
        out.write(content.encode() if isinstance(content, str) else content)
    return True


def write_private(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Write `data` to `path` through a file created with `mode` from the start, then renamed into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
