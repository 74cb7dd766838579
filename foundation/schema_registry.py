"""The one client of a Confluent-compatible schema registry (the project's Apicurio, or any other).

Only the REST calls the backbone needs, under the Confluent API that every Kafka tool speaks:
schemas by id, a subject's versions, registration and look-up, a subject's compatibility level and
the registry's own compatibility check. `RegistryAccess` is a plain value (a URL and paths), so it
crosses process boundaries as `KafkaClients` does; the TLS context and the password are made and
read when a request is sent, never kept in the value or shown in its repr.

A registry that cannot be reached, times out or fails with a 5xx raises `RegistryUnavailable`
(transient: keep the work, try again); an answer that refuses the request raises `RegistryRefused`
with the registry's own message.

Registrations are made one at a time in a process: the project's Apicurio (2.4, on H2) gives two
registrations of new content at once the same content id and fails one with a 500, so the four
agencies of one `gdx simulate`, registering together on a fresh registry and retrying in step,
failed again and again (65 s instead of 7 under load). A registration happens once per subject and
schema in a process, so the queue costs nothing; across processes the callers' jittered retries
part them.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.errors import GdxError
from foundation.http_get import client_context

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
NOT_FOUND_CODES = {40401, 40402, 40403}
"""Confluent's error codes for an unknown subject, version and schema (a 404 either way)."""
_REGISTERING = threading.Lock()


class RegistryUnavailable(GdxError):
    """The registry did not answer (down, unreachable, timed out, TLS refused, or a 5xx)."""


class RegistryRefused(GdxError):
    """The registry answered with a refusal: an incompatible schema, a malformed request, a 401/403."""

    def __init__(self, what: str, status: int, fix: str = "") -> None:
        super().__init__(what, fix)
        self.status = status


@dataclass(frozen=True)
class RegistryAccess:
    """Where the registry is and how to reach it: TLS with a CA (and a client certificate for
    mutual TLS) and, for registries that ask for it, HTTP basic credentials from a file."""

    url: str
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    username: str | None = None
    password_file: Path | None = None

    def context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https:"):
            return None
        context = client_context(self.cafile)
        if self.certfile is not None:
            context.load_cert_chain(str(self.certfile), None if self.keyfile is None else str(self.keyfile))
        return context

    def authorization(self) -> str | None:
        if self.username is None:
            return None
        password = "" if self.password_file is None else self.password_file.read_text(encoding="utf-8").strip()
        return "Basic " + base64.b64encode(f"{self.username}:{password}".encode()).decode("ascii")


class SchemaRegistry:
    """Blocking calls with a timeout each; one SSL context per client, made on first use."""

    def __init__(self, access: RegistryAccess, timeout_s: float = 5.0) -> None:
        self.access = access
        self.timeout_s = timeout_s
        self._base = access.url.rstrip("/")
        self._context: ssl.SSLContext | None = None
        self._context_made = False

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON); the registry's own "not found" (a 404 with one of its error codes)
        is returned, every other refusal raised. A 404 of anything else (a proxy, a wrong path) is
        no answer from a registry, so it cannot mean that a schema does not exist."""
        request = urllib.request.Request(
            self._base + path, data=None if body is None else json.dumps(body).encode(), method=method
        )
        request.add_header("Accept", CONTENT_TYPE)
        if body is not None:
            request.add_header("Content-Type", CONTENT_TYPE)
        try:
            if not self._context_made:
                self._context = self.access.context()
                self._context_made = True
            authorization = self.access.authorization()
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise GdxError(
                f"cannot read the schema registry's TLS files or password: {type(exc).__name__}: {exc}",
                "check GDX_SCHEMA_REGISTRY_CA, _CERTFILE, _KEYFILE and _PASSWORD_FILE",
            ) from None
        if authorization is not None:
            request.add_header("Authorization", authorization)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s, context=self._context) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                text = exc.read().decode("utf-8", "replace")
            except OSError:
                text = ""
        except (OSError, ValueError) as exc:  # refused, reset, timed out, TLS, or a body that is not JSON
            raise RegistryUnavailable(
                f"schema registry {self._base} did not answer: {type(exc).__name__}: {exc}",
                "start it (gdx registry up) or set GDX_SCHEMA_REGISTRY_URL to one that runs",
            ) from None
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {"message": text[:300]}
        if status == 404 and isinstance(answer, dict) and answer.get("error_code") in NOT_FOUND_CODES:
            return status, answer
        message = answer.get("message", text[:300]) if isinstance(answer, dict) else text[:300]
        if status == 404:
            raise RegistryUnavailable(f"{self._base}{path} is not a schema registry's answer: 404 {message}")
        if status >= 500:
            raise RegistryUnavailable(f"schema registry {self._base} failed: {status} {message}")
        raise RegistryRefused(f"schema registry refused {method} {path}: {status} {message}", status)

    @staticmethod
    def _subject(subject: str) -> str:
        return urllib.parse.quote(subject, safe="")

    def ready(self) -> bool:
        """True when the registry answers its global configuration (cheap on every registry); False
        when it does not answer. A refusal (401, 403) or unreadable credentials are raised: they
        are no absence, and waiting would not end them."""
        try:
            status, _ = self._call("GET", "/config")
        except RegistryUnavailable:
            return False
        return status == 200

    def schema_by_id(self, schema_id: int) -> str | None:
        """The schema text registered under `schema_id`, None when the registry has no such id."""
        status, answer = self._call("GET", f"/schemas/ids/{schema_id}")
        if status == 404:
            return None
        if not isinstance(answer, dict) or not isinstance(answer.get("schema"), str):
            raise RegistryUnavailable(f"schema registry {self._base} answered id {schema_id} without a schema")
        return str(answer["schema"])

    def lookup(self, subject: str, schema: str) -> int | None:
        """The id of `schema` under `subject`, None when it is not registered there."""
        status, answer = self._call("POST", f"/subjects/{self._subject(subject)}", {"schema": schema})
        return None if status == 404 else int(answer["id"])

    def register(self, subject: str, schema: str) -> int:
        """Register `schema` as the next version of `subject` (or find it there); its id."""
        with _REGISTERING:
            status, answer = self._call("POST", f"/subjects/{self._subject(subject)}/versions", {"schema": schema})
        if status == 404:
            raise RegistryRefused(f"schema registry has no subject {subject} to register under", status)
        return int(answer["id"])

    def subjects(self) -> list[str]:
        _, answer = self._call("GET", "/subjects")
        return [str(s) for s in answer or []]

    def versions(self, subject: str) -> list[int]:
        status, answer = self._call("GET", f"/subjects/{self._subject(subject)}/versions")
        return [] if status == 404 else [int(v) for v in answer]

    def compatibility(self, subject: str) -> str | None:
        """The subject's own compatibility level, None when it has none (the global level applies)."""
        status, answer = self._call("GET", f"/config/{self._subject(subject)}")
        if status == 404 or not isinstance(answer, dict):
            return None
        level = answer.get("compatibilityLevel") or answer.get("compatibility")
        return None if level is None else str(level)

    def set_compatibility(self, subject: str, level: str) -> None:
        self._call("PUT", f"/config/{self._subject(subject)}", {"compatibility": level})

    def is_compatible(self, subject: str, schema: str) -> bool:
        """The registry's own check of `schema` against `subject` under the subject's level."""
        status, answer = self._call(
            "POST", f"/compatibility/subjects/{self._subject(subject)}/versions/latest", {"schema": schema}
        )
        return status == 404 or bool(answer.get("is_compatible"))
