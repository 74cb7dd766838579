"""The project's own certificate authority: every principal on the exchange is named by a certificate.

Everything lives under one folder (`<state_dir>/pki/`, mode 0700): the CA (`ca.pem`, `ca.key`),
one `<name>.pem` / `<name>.key` per principal (subject CN=<name>, signed by the CA), a
`<name>.keystore.pem` (key + chain, the form Kafka's PEM keystore reads) for server principals,
and `revoked.json`, the principals whose certificates are revoked (the ACL derivation gives a
revoked principal nothing). Private keys are created with their final mode (0600, `os.open`
with `O_EXCL`, then renamed into place): there is no moment in which one is readable by others.

The CA is made on first use; a lock file serialises processes that make it (or a certificate) at
the same moment.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from foundation.errors import GdxError
from foundation.secret_files import PRIVATE_FILE, PUBLIC_FILE, write_private
from streams.security.principals import BROKER, LOOKUP, REGISTRY

PKI_DIR = "pki"
CA_NAME = "ca"
CA_COMMON_NAME = "GDX Backbone CA"
CA_DAYS = 3650
CERT_DAYS = 730
PRINCIPAL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SERVER_PRINCIPALS = frozenset({BROKER, LOOKUP, REGISTRY})
"""Principals that also serve TLS: their certificates carry serverAuth and the loopback names."""
RESERVED = frozenset({CA_NAME, "revoked"})
PRIVATE_DIR = 0o700


@dataclass(frozen=True)
class Issued:
    """Where a principal's key material is."""

    name: str
    cert: Path
    key: Path
    ca: Path

    @property
    def keystore(self) -> Path:
        """Key + certificate chain in one PEM file (Kafka's `ssl.keystore.type=PEM` location)."""
        return self.cert.with_name(f"{self.name}.keystore.pem")


@dataclass(frozen=True)
class CertInfo:
    name: str
    serial: str
    not_after: dt.datetime
    revoked: bool
    server: bool


def pki_root(state_dir: Path) -> Path:
    return state_dir / PKI_DIR


def private_dir(path: Path) -> Path:
    """A folder only its owner may enter: made 0700, or refused when it exists open to others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise GdxError(
                f"{path} holds private keys but is open to others (mode {mode:04o})",
                f"restrict it with `chmod 700 {path}` and check who could read it",
            ) from None
    return path


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """`root` made private, and held exclusively: processes making key material at the same
    moment (children of `gdx up` starting together) take turns."""
    private_dir(root)
    fd = os.open(root / ".lock", os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def check_principal(name: str) -> str:
    if not PRINCIPAL_RE.match(name) or name in RESERVED:
        raise GdxError(
            f"{name!r} is not a principal name",
            "use lower-case letters, digits, '.', '_' or '-' (at most 64), not 'ca' or 'revoked'",
        )
    return name


class Pki:
    """The CA and the certificates under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, state_dir: Path) -> Pki:
        return cls(pki_root(state_dir))

    @property
    def ca_cert(self) -> Path:
        return self.root / f"{CA_NAME}.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / f"{CA_NAME}.key"

    @property
    def revoked_file(self) -> Path:
        return self.root / "revoked.json"

    def paths(self, name: str) -> Issued:
        check_principal(name)
        return Issued(name, self.root / f"{name}.pem", self.root / f"{name}.key", self.ca_cert)

    def _locked(self) -> AbstractContextManager[None]:
        return locked(self.root)

    # --- the CA -------------------------------------------------------------------------------

    def ensure_ca(self) -> Path:
        """The CA certificate, made (with its key) on first use."""
        with self._locked():
            self._ensure_ca_locked()
        return self.ca_cert

    def _ensure_ca_locked(self) -> None:
        if self.ca_cert.is_file() and self.ca_key.is_file():
            return
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        write_private(self.ca_key, _key_pem(key))
        write_private(self.ca_cert, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_FILE)

    def _load_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise GdxError(f"{self.ca_key} is not the project CA's key", "remove the pki folder to make a new CA")
        return cert, key

    # --- certificates -------------------------------------------------------------------------

    def ensure(self, name: str, server: bool | None = None) -> Issued:
        """The principal's certificate: issued when missing, refused when revoked."""
        paths = self.paths(name)
        with self._locked():
            self._refuse_revoked(name)
            if not (paths.cert.is_file() and paths.key.is_file()):
                self._issue_locked(name, server)
        return paths

    def issue(self, name: str, server: bool | None = None) -> Issued:
        """A new certificate (and key) for `name`, replacing any it had."""
        paths = self.paths(name)
        with self._locked():
            self._refuse_revoked(name)
            self._issue_locked(name, server)
        return paths

    def _refuse_revoked(self, name: str) -> None:
        if name in self.revoked():
            raise GdxError(
                f"principal {name} is revoked; no certificate is issued for it",
                "choose another name for a new member",
            )

    def _issue_locked(self, name: str, server: bool | None) -> None:
        self._ensure_ca_locked()
        ca_cert, ca_key = self._load_ca()
        paths = self.paths(name)
        is_server = name in SERVER_PRINCIPALS if server is None else server
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if is_server else [])
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if is_server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        key_pem = _key_pem(key)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
        write_private(paths.key, key_pem)
        write_private(paths.cert, cert_pem + ca_pem, PUBLIC_FILE)
        if is_server:
            write_private(paths.keystore, key_pem + cert_pem + ca_pem)

    # --- list and revoke ----------------------------------------------------------------------

    def revoked(self) -> dict[str, dict[str, str]]:
        """Revoked principals: name → {serial, revoked_at}."""
        if not self.revoked_file.is_file():
            return {}
        loaded: dict[str, dict[str, str]] = json.loads(self.revoked_file.read_text())
        return loaded

    def revoke(self, name: str) -> CertInfo:
        paths = self.paths(name)
        with self._locked():
            if not paths.cert.is_file():
                raise GdxError(f"no certificate for {name} in {self.root}", "`gdx pki list` shows the issued ones")
            info = _cert_info(name, paths.cert, set())
            revoked = self.revoked()
            revoked[name] = {"serial": info.serial, "revoked_at": dt.datetime.now(dt.UTC).isoformat()}
            write_private(self.revoked_file, (json.dumps(revoked, indent=2, sort_keys=True) + "\n").encode())
        return _cert_info(name, paths.cert, set(revoked))

    def list(self) -> list[CertInfo]:
        if not self.root.is_dir():
            return []
        revoked = set(self.revoked())
        found = []
        for path in sorted(self.root.glob("*.pem")):
            name = path.name.removesuffix(".pem")
            if name == CA_NAME or name.endswith(".keystore") or name.startswith("."):
                continue
            found.append(_cert_info(name, path, revoked))
        return found


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8, unencrypted: what Kafka's PEM keystore and Python's ssl module both read.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_info(name: str, path: Path, revoked: set[str]) -> CertInfo:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        server = ExtendedKeyUsageOID.SERVER_AUTH in usages
    except x509.ExtensionNotFound:
        server = False
    return CertInfo(name, f"{cert.serial_number:x}", cert.not_valid_after_utc, name in revoked, server)
