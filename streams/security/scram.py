"""SCRAM-SHA-512 credentials of the local broker's SASL_SSL listener (`GDX_KAFKA_SECURITY=scram`).

Each principal's password is generated once and kept in `<state_dir>/scram/<name>.password`
(mode 0600 from creation, in a 0700 folder); clients read it from there when they are built, and
the launcher hands the broker the credentials at storage format through a 0600 argument file, so
no password is ever on a command line that another user could read in /proc.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from foundation.secret_files import write_private
from streams.security.pki import check_principal, private_dir

SCRAM_DIR = "scram"
MECHANISM = "SCRAM-SHA-512"


class ScramStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, state_dir: Path) -> ScramStore:
        return cls(state_dir / SCRAM_DIR)

    def password_file(self, name: str) -> Path:
        """The principal's password file, made with a new random password when missing."""
        path = self.root / f"{check_principal(name)}.password"
        if not path.is_file():
            private_dir(self.root)
            # Hex only: the storage tool's `[name=…,password=…]` syntax then needs no quoting.
            write_private(path, secrets.token_hex(32).encode())
        return path

    def password(self, name: str) -> str:
        return self.password_file(name).read_text().strip()


def storage_tool_argument(name: str, password: str) -> str:
    """One `--add-scram` value of Kafka's storage tool (KIP-900)."""
    return f"{MECHANISM}=[name={name},password={password}]"
