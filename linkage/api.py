"""The once-only lookup API (FastAPI): persons and businesses with their linked records, verify,
and the data subject's own access view — under consent, purpose and least data, every request
audited on `gdx.audit` before its answer leaves. `/status` is the exchange's health, per agency, for
a person to read (`linkage.status_page`): aggregates only, so it needs no key and is not audited.

`create_app(parts)` builds the app from parts the runtime made (`streams.lookup_app`), which also
serves it (`streams.lookup_server`) and supervises its processes (`streams.lookup_processes`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
from fastapi import Body, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from prometheus_client import REGISTRY
from starlette.exceptions import HTTPException as StarletteHTTPException

from foundation.errors import located
from linkage.api_models import AccessLogAnswer, PartyAnswer, Problem, VerifyAnswer, VerifyRequest
from linkage.body_limit import BodyLimit
from linkage.catalog_html import render as render_catalog
from linkage.consent import ConsentFollower
from linkage.consumers import ACCESS_LOG
from linkage.data_catalog import CatalogPage, DataCatalog
from linkage.link_rules import CITIZEN, JURISTIC, PARTY_DATASETS
from linkage.lookup_service import LookupService, Outcome, provenance
from linkage.lookup_service import Request as Lookup
from linkage.negotiation import representation
from linkage.policy import PERSON_DATASET, Decision, least_data
from linkage.status_html import render as render_status
from linkage.status_page import StatusPage
from linkage.views import party_status, party_view, record_view
from monitoring.health_server import MULTIPROCESS_DIR, Readiness, metrics_payload, multiprocess_registry

log = logging.getLogger("gdx.lookup")

PROCESS = "lookup-api"
CONSENTS_CURRENT_TIMEOUT_S = 2.0
STARTUP_GATE_S = 30.0
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="the consumer agency's API key")
SUBJECT_TOKEN = APIKeyHeader(
    name="X-Subject-Token",
    auto_error=False,
    description="the data subject's proof for their access log: a short-lived JWT (EdDSA) the consumer signed, "
    "`sub` = the citizen ID, audience `gdx-lookup`",
)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text}
    for status, text in (
        (401, "missing or unknown API key"),
        (403, "purpose not allowed, or no valid consent or mandate"),
        (404, "the index holds no such person or business"),
        (411, "a request body without Content-Length"),
        (413, "a request body over 16 KiB"),
        (422, "malformed request or ID (wrong check digit)"),
        (429, "over the consumer's rate limit, the limit without a key, or a subject's verify attempts"),
        (503, "the audit trail, the consents or the index cannot be used: nothing is answered"),
    )
}
PURPOSE = Query(min_length=1, max_length=64, description="the declared purpose (registered for the consumer)")
CATALOG_FORMATS = {"html": "text/html", "json": "application/json"}
CATALOG_FORMAT = Query(
    None,
    description="html or json; without it the Accept header decides (HTML by default)",
    json_schema_extra={"enum": list(CATALOG_FORMATS)},
)
CATALOG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/html": {"schema": {"type": "string"}}},
        "description": "the catalog: JSON for `Accept: application/json` or `?format=json`, else an HTML page",
    },
    406: {"model": Problem, "description": "the Accept header takes neither HTML nor JSON"},
    422: {"model": Problem, "description": "an unknown ?format"},
}


def _names_match(given_first: str | None, given_last: str | None, payload: dict[str, Any]) -> bool | None:
    if given_first is None and given_last is None:
        return None

    def same(given: str | None, registered: str | None) -> bool:
        return given is None or (registered is not None and given.strip().casefold() == registered.strip().casefold())

    names = [n for n in (payload.get("name"), payload.get("name_en")) if n]
    return any(same(given_first, n.get("first_name")) and same(given_last, n.get("last_name")) for n in names)


class LookupApp:
    """The app's parts and the index reads behind its routes; the runtime builds the parts
    (`streams.lookup_app`), so this room never reads the settings or builds a Kafka client."""

    def __init__(
        self,
        service: LookupService,
        follower: ConsentFollower,
        status: StatusPage,
        catalog: CatalogPage,
        *,
        checkpoint_interval_s: float,
    ) -> None:
        self.service = service
        self.engine = service.engine
        self.consents = service.consents
        self.audit = service.audit
        self.follower = follower
        self.status = status
        self.catalog = catalog
        self.checkpoint_interval_s = checkpoint_interval_s
        self.processes = service.processes
        self.readiness = Readiness()
        self.readiness.add_check(
            "audit",
            lambda: (
                self.audit.error
                or self.audit.seal_problem()
                or (
                    None
                    if self.audit.started and self.audit.last_checkpoint_ms
                    else "audit chain not yet recovered and sealed on Kafka"
                )
            ),
        )
        self.readiness.add_check("consents", self.follower.problem)
        self.readiness.add_check("access-log", lambda: self.service.access_log.error)

    async def ready_within(self, timeout_s: float) -> None:
        """Wait until ready, or `timeout_s`. One of several processes on a shared port holds its
        start-up here, before uvicorn accepts on the port: any process takes the next connection,
        and a starting one would refuse lookups (no audit chain yet) that its siblings could answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (failing := self.readiness.failing()) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if failing:
            log.warning("serving before ready", extra={"failing": failing})

    async def keep_audit_started(self) -> None:
        """Connect the audit writer, retrying while Kafka is away; then seal the chain periodically."""
        while not self.audit.started:
            try:
                await self.audit.start()
            except Exception as exc:  # noqa: BLE001 — an unreadable chain head too: retry, never die
                log.warning("audit writer cannot connect, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
        await self.audit.checkpoint_every(self.checkpoint_interval_s)

    def party(self, kind: str, party_id: str, decision: Decision) -> tuple[dict[str, Any], list[str]] | None:
        view = party_view(self.engine, kind, party_id)
        if view is None:
            return None
        answer = least_data(view, decision.fields)
        for record in [answer["record"], *answer["linked"]]:
            if record is not None:
                record["provenance"] = provenance(record)
        datasets = sorted({r["dataset"] for r in [answer["record"], *answer["linked"]] if r is not None})
        return answer, datasets

    def verify(self, query: VerifyRequest) -> tuple[dict[str, Any], list[str]]:
        record = record_view(self.engine, PERSON_DATASET, query.citizen_id)
        if record is None:
            return {
                "citizen_id": query.citizen_id,
                "exists": False,
                "alive": None,
                "name_matches": None,
                "date_of_birth_matches": None,
                "provenance": None,
            }, [PERSON_DATASET]
        status = party_status(self.engine, CITIZEN, query.citizen_id)
        payload = record["payload"]
        return {
            "citizen_id": query.citizen_id,
            "exists": True,
            "alive": status == "ACTIVE",
            "name_matches": _names_match(query.first_name, query.last_name, payload),
            "date_of_birth_matches": None
            if query.date_of_birth is None
            else query.date_of_birth.isoformat() == payload.get("date_of_birth"),
            "provenance": provenance(record),
        }, [PERSON_DATASET]


class AnswerResponse(JSONResponse):
    """A lookup's answer, encoded by orjson: the standard library's encoder was about 6% of a
    lookup's CPU time. The bodies hold only JSON's own types (read from the index's JSON)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _respond(outcome: Outcome, request_id: str) -> JSONResponse:
    return AnswerResponse(
        outcome.body, status_code=outcome.status, headers={"X-Request-Id": request_id, **outcome.headers}
    )


def create_app(parts: LookupApp) -> FastAPI:
    """The API over the parts' index, audit writer and consent follower."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(parts.keep_audit_started()),
            asyncio.create_task(parts.follower.run()),
            asyncio.create_task(parts.service.access_log.run()),
        ]
        try:
            if parts.processes > 1:
                await parts.ready_within(STARTUP_GATE_S)
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task
            await parts.audit.stop()
            parts.engine.dispose()

    app = FastAPI(
        title="GDX lookup API",
        version="1",
        lifespan=lifespan,
        description=(
            "Once-only lookups for consumer agencies: a person or a business with their linked records, identity "
            "verification without personal data, and the data subject's view of who used their data. Every request "
            "needs an API key and a declared purpose; a consent of the person or a legal mandate; answers hold only "
            "the fields the purpose may see, with provenance and freshness. Every request is audited."
        ),
    )
    app.state.lookup = parts
    # Several processes on one port write their metrics to files (`streams.lookup_processes`):
    # whichever answers the scrape reports them all.
    metrics_registry = multiprocess_registry() if os.environ.get(MULTIPROCESS_DIR) else REGISTRY
    service = parts.service

    async def run(lookup: Lookup, work: Any, required: frozenset[str] = frozenset()) -> JSONResponse:
        return _respond(await service.handle(lookup, work, required), lookup.request_id)

    async def refuse_malformed(request: Request, detail: str, status: int = 422) -> JSONResponse:
        lookup = Lookup(
            "malformed",
            "request",
            "unknown",
            str(request.path_params.get("citizen_id", "")),
            request.query_params.get("purpose", ""),
            request.headers.get("X-API-Key"),
        )
        return _respond(await service.refuse_malformed(lookup, detail, status), lookup.request_id)

    app.add_middleware(BodyLimit, refuse=refuse_malformed)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await refuse_malformed(request, located(exc.errors())[:500])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """A body that cannot even be decoded is malformed input like any other (422); unknown paths keep theirs."""
        if exc.status_code == 400:
            return await refuse_malformed(request, str(exc.detail))
        return JSONResponse(
            {
                "status": exc.status_code,
                "reason": "invalid_request",
                "detail": str(exc.detail),
                "request_id": "",
                "consent_reason": None,
            },
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.get(
        "/v1/citizens/{citizen_id}",
        response_model=PartyAnswer,
        responses=ERRORS,
        tags=["lookup"],
        summary="A person by citizen ID, with every linked record the purpose may see",
    )
    async def citizen(citizen_id: str, purpose: str = PURPOSE, api_key: str | None = Security(API_KEY)) -> JSONResponse:
        return await run(
            Lookup("lookup", PERSON_DATASET, CITIZEN, citizen_id, purpose, api_key),
            lambda decision: parts.party(CITIZEN, citizen_id, decision),
            frozenset({PERSON_DATASET}),
        )

    @app.get(
        "/v1/juristic-persons/{juristic_id}",
        response_model=PartyAnswer,
        responses=ERRORS,
        tags=["lookup"],
        summary="A juristic person by its ID, with every linked record the purpose may see",
    )
    async def juristic(
        juristic_id: str, purpose: str = PURPOSE, api_key: str | None = Security(API_KEY)
    ) -> JSONResponse:
        return await run(
            Lookup("lookup", PARTY_DATASETS[JURISTIC], JURISTIC, juristic_id, purpose, api_key),
            lambda decision: parts.party(JURISTIC, juristic_id, decision),
            frozenset({PARTY_DATASETS[JURISTIC]}),
        )

    @app.post(
        "/v1/verify",
        response_model=VerifyAnswer,
        responses=ERRORS,
        tags=["verify"],
        summary="Does this citizen ID exist, is the person alive, do name and birth date match — no personal data",
    )
    async def verify(
        query: VerifyRequest = Body(), purpose: str = PURPOSE, api_key: str | None = Security(API_KEY)
    ) -> JSONResponse:
        return await run(
            Lookup("verify", PERSON_DATASET, CITIZEN, query.citizen_id, purpose, api_key),
            lambda _decision: parts.verify(query),
            frozenset({PERSON_DATASET}),
        )

    @app.get(
        "/v1/citizens/{citizen_id}/access-log",
        response_model=AccessLogAnswer,
        responses=ERRORS,
        tags=["data subject"],
        summary="The data subject's view: every lookup and notice about them — who, when, why, what",
    )
    async def access(
        citizen_id: str,
        purpose: str = PURPOSE,
        api_key: str | None = Security(API_KEY),
        subject_token: str | None = Security(SUBJECT_TOKEN),
    ) -> JSONResponse:
        lookup = Lookup(ACCESS_LOG, ACCESS_LOG, CITIZEN, citizen_id, purpose, api_key, subject_token)
        return _respond(
            await service.handle(
                lookup,
                lambda _decision: ({"citizen_id": citizen_id, "accesses": service.access_entries(citizen_id)}, []),
                writes=True,
            ),
            lookup.request_id,
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "alive", "process": PROCESS})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        status, body = parts.readiness.probe()
        return JSONResponse(body, status_code=status)

    @app.get("/status", include_in_schema=False, response_class=HTMLResponse)
    def status_page() -> HTMLResponse:
        """Plain `def`: FastAPI runs it in its thread pool, so the index scan and the wait for
        Prometheus never hold up the lookups on the event loop. No key: it shows only aggregates."""
        return HTMLResponse(render_status(parts.status.report()))

    @app.get(
        "/catalog",
        response_model=DataCatalog,
        responses=CATALOG_RESPONSES,
        tags=["catalog"],
        summary="Every dataset: owner, plan numbers, topic, schema versions, fields, who may see them, freshness",
        description="Generated from the topic catalog, the schemas, the consumer registry, the notify "
        "subscriptions and the index. An HTML page for a person, JSON for `Accept: application/json` "
        "or `?format=json`. No API key, not audited: it describes datasets, never a person's data.",
    )
    def data_catalog(request: Request, format: str | None = CATALOG_FORMAT) -> DataCatalog | HTMLResponse:
        """Plain `def` like `/status`: the index read, once per few seconds, runs in the thread pool."""
        media = representation(format, request.headers.get("accept"), CATALOG_FORMATS)
        catalog = parts.catalog.catalog()
        return HTMLResponse(render_catalog(catalog)) if media == CATALOG_FORMATS["html"] else catalog

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics_payload(metrics_registry)
        return Response(body, media_type=content_type)

    return app
