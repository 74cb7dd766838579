"""A private PostgreSQL server for the tests, from the machine's Debian PostgreSQL binaries.

`GDX_TEST_POSTGRES_URL` points the tests at an existing server instead. The server runs as the
`postgres` user when the tests run as root (PostgreSQL refuses root), on a free loopback port,
with its data in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from foundation.ports import free_port_block


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: install them (apt-get install postgresql)")
    return Path(found[-1]).parent


def _run(command: list[str], as_user: str | None) -> None:
    full = ["runuser", "-u", as_user, "--", *command] if as_user else command
    done = subprocess.run(full, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh, empty database on a private server."""
    external = os.environ.get("GDX_TEST_POSTGRES_URL", "").strip()
    if external:
        yield external
        return
    bin_dir = _bin_dir()
    as_user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="gdx-pg-"))
    if as_user:
        account = pwd.getpwnam(as_user)
        os.chown(base, account.pw_uid, account.pw_gid)
    data, port = base / "data", free_port_block(1)
    try:
        _run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "gdx", "--auth=trust", "-E", "UTF8", "--no-sync"], as_user
        )
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ],
            as_user,
        )
        try:
            _run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "gdx", "gdx"], as_user)
            yield f"postgresql://gdx@127.0.0.1:{port}/gdx"
        finally:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], as_user)
    finally:
        shutil.rmtree(base, ignore_errors=True)
