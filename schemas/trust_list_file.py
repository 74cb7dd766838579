"""A trust list that follows its file: a key added by a rotation, or by a party's first start
after the reader's, is trusted without a restart.

The file is looked at no more than once a second, and only when a caller meets a key it does not
hold; a file caught mid-replace or broken keeps what was trusted until it reads well again.
"""

from __future__ import annotations

import time
from pathlib import Path

from schemas.event_signatures import TrustedKey, TrustList, TrustListError

RELOAD_EVERY_S = 1.0


class TrustListFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = TrustList([])
        self._stamp: tuple[int, int] | None = None
        self._looked_at = float("-inf")
        self.reload()

    def reload(self, force: bool = False) -> bool:
        """Read the trust list again if its file changed since the last look; True when it did.
        `force`: look now, however recent the last look (for a reader that cannot skip a record)."""
        now = time.monotonic()
        if not force and now - self._looked_at < RELOAD_EVERY_S:
            return False
        self._looked_at = now
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return False
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == self._stamp:
            return False
        try:
            self.current = TrustList.load(self.path)
        except TrustListError:
            return False
        self._stamp = stamp
        return True

    def key(self, key_id: str, force: bool = False) -> TrustedKey | None:
        """The key, looking at the file again when the list read so far lacks it (`force`: however
        recent the last look)."""
        key = self.current.keys.get(key_id)
        if key is None and self.reload(force):
            key = self.current.keys.get(key_id)
        return key
