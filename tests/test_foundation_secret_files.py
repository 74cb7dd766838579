"""Secret files are private from their creation, whatever the umask, and never overwritten."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundation.secret_files import create_secret
from linkage.audit import AUDIT_KEY_OWNER
from monitoring.alert_receiver import load_token
from streams.security.signing_keys import SigningKeys


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0: a file made by write_text would be 0666 until someone chmods it."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_a_secret_is_created_0600_in_a_0700_folder(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "a.key"
    assert create_secret(path, "first")
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert not create_secret(path, "second"), "an existing secret is someone's: it is never overwritten"
    assert path.read_text() == "first"


@pytest.mark.usefixtures("permissive_umask")
def test_the_audit_key_and_the_receiver_token_are_born_private(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "state" / "audit-keys")
    signer = keys.signer(AUDIT_KEY_OWNER)
    assert mode(keys.root / f"{signer.key_id}.key") == 0o600 and mode(keys.root) == 0o700
    assert mode(keys.trust_list_path) == 0o644, "the trust list is what an auditor is given"
    assert keys.signer(AUDIT_KEY_OWNER).key_id == signer.key_id
    token = load_token(tmp_path / "alerts" / "receiver.token")
    assert token and mode(tmp_path / "alerts" / "receiver.token") == 0o600
