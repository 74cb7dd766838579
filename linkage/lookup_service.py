"""The lookup service's request pipeline, independent of HTTP routing.

Every request goes the same way: authenticate, rate-limit, validate the subject's ID, decide under
the policy (purpose, mandate or consent), read the index, cut the answer to the permitted data,
write the audit record and wait for its acknowledgement, then answer. A refusal at any step is
audited the same way before it leaves, and counted with its reason.

Where index reads run depends on the database. A SQLite read (WAL: readers never wait for the
writer) of indexed rows costs a fraction of a millisecond, less than handing it to a worker thread
and back, so it runs on the event loop. A server database's read waits on the network, so it runs
in a worker thread while the loop serves other requests. Writes (using up a one-time consent) may
wait for the index writer's lock and always run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from linkage.audit import AuditUnavailable, AuditWriter
from linkage.consent import ConsentStore
from linkage.consumers import ACCESS_LOG, Consumer, ConsumerRegistry
from linkage.disclosure import access_entry, access_row
from linkage.index_store import now_ms
from linkage.policy import Decision, authorize
from linkage.rate_limit import RateLimiter
from linkage.subject_tokens import REASON as SUBJECT_NOT_PROVEN
from linkage.subject_tokens import SubjectNotProven, SubjectTokens
from linkage.tables import access_log
from monitoring import metrics
from schemas.identifiers import thai_id_problem

log = logging.getLogger("gdx.lookup")

_ids = random.Random()  # request ids need uniqueness, not secrecy: no system call per request as uuid4() makes
UNAUTHENTICATED = "unauthenticated"
UNREGISTERED = "unregistered"
ACCESS_LOG_LIMIT = 500
UNAUTHENTICATED_RATE_PER_S = 5.0
UNAUTHENTICATED_BURST = 20
"""Requests without a valid key, all callers together (the API uses no client address): each
audited refusal costs an acknowledged write to a topic kept forever, so their number is bounded."""
VERIFY_ATTEMPTS_PER_HOUR = 10
"""Verify answers per consumer and subject: enough for a counter's retries, too few to guess a
birth date (or a name) by asking."""


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def provenance(record: dict[str, Any]) -> dict[str, Any]:
    p = record["provenance"]
    return {
        "agency": p["agency"],
        "dataset": record["dataset"],
        "dataset_code": p["dataset_code"],
        "entity_version": p["entity_version"],
        "change_type": p["change_type"],
        "event_id": p["event_id"],
        "signed_by": p["signed_by"],
        "source_time": iso(p["source_ms"]),
        "as_of": iso(p["applied_ms"]),
    }


class AccessLogWriter:
    """Access-log rows, written in batches: one SQLite write transaction per lookup would serialise
    every request on the database's single writer lock. The audit record on Kafka, acknowledged
    before the answer, is the evidence; this table is the subject's queryable copy of it, flushed
    every `interval_s` and before every read of it.

    A flush that fails keeps its rows, in order, for the next one (the subject's copy must not lose
    a row to a locked or full disk), and `error` says so for readiness until a flush succeeds."""

    def __init__(self, engine: Engine, interval_s: float = 0.05, retry_s: float = 1.0) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.error: str | None = None
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # held only to swap the list: the event loop adds without waiting on SQL
        self._writing = threading.Lock()  # a flush waits for one in progress, so a read after it sees every row

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)

    def flush(self) -> int:
        with self._writing:
            with self._lock:
                rows, self._rows = self._rows, []
            if rows:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(insert(access_log), rows)
                except Exception as exc:
                    with self._lock:
                        self._rows[:0] = rows
                    self.error = f"access log cannot be written ({type(exc).__name__}); {len(rows)} rows kept"
                    raise
            self.error = None
        return len(rows)

    async def run(self) -> None:
        """Flush until cancelled, and once more when cancelled; a failing database is retried
        every `retry_s`, logged when it starts and stops failing."""
        try:
            while True:
                await asyncio.sleep(self.interval_s if self.error is None else self.retry_s)
                failing = self.error is not None
                try:
                    await asyncio.to_thread(self.flush)
                except Exception as exc:  # noqa: BLE001 — the writer must outlive the database's outage
                    if not failing:
                        log.error("access log flush failed, retrying", extra={"error": repr(exc)})
                else:
                    if failing:
                        log.info("access log written again")
        finally:
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 — the audit topic still holds these requests
                log.error("access log rows lost at shutdown", extra={"rows": len(self._rows), "error": repr(exc)})


@dataclass
class Outcome:
    """What a request ends with: an HTTP status and body, plus what the audit needs to know."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    operation: str  # lookup, verify, access-log
    dataset: str  # the metrics label: the registry the subject is looked up in
    subject_kind: str
    subject_id: str
    purpose: str
    api_key: str | None
    subject_token: str | None = None  # the data subject's proof, for the access log
    request_id: str = field(default_factory=lambda: str(uuid.UUID(int=_ids.getrandbits(128), version=4)))
    started: float = field(default_factory=time.perf_counter)


def problem(
    request: Request, status: int, reason: str, detail: str, consent_reason: str | None = None
) -> dict[str, Any]:
    """The one body of every refusal (`linkage.api_models.Problem`)."""
    return {
        "status": status,
        "reason": reason,
        "detail": detail,
        "request_id": request.request_id,
        "consent_reason": consent_reason,
    }


T = TypeVar("T")
Work = Callable[[Decision], tuple[dict[str, Any], list[str]] | None]
"""Reads the index for an allowed request: (answer body, datasets answered), or None when unknown."""


class LookupService:
    def __init__(
        self,
        engine: Engine,
        registry: ConsumerRegistry,
        consents: ConsentStore,
        audit: AuditWriter,
        consents_current: Callable[[], Awaitable[bool]],
        subject_tokens: SubjectTokens,
        processes: int = 1,
    ) -> None:
        """`processes`: how many lookup processes share the port; each enforces its share of a
        consumer's registered rate, so together they enforce the rate. A consumer whose requests
        all ride one keep-alive connection reaches one process, and so gets that share only."""
        self.consents_current = consents_current
        self.subject_tokens = subject_tokens
        self.processes = processes
        self.engine = engine
        self.registry = registry
        self.consents = consents
        self.audit = audit
        self.limiter = RateLimiter()
        self._unaudited: dict[str, int] = {}  # per caller: 429s not yet counted on an audit record
        self.access_log = AccessLogWriter(engine)
        self._reads_inline = engine.dialect.name == "sqlite"
        # The views read at the driver (linkage.driver_sql): its own errors are the database's too.
        self._database_errors = (SQLAlchemyError, engine.dialect.loaded_dbapi.Error)

    async def handle(
        self, request: Request, work: Work, required: frozenset[str] = frozenset(), writes: bool = False
    ) -> Outcome:
        """`writes`: the work writes to the index (it may wait for the writer's lock), so it runs in
        a worker thread whatever the database."""
        consumer = self.registry.authenticate(request.api_key)
        if consumer is None:
            return await self._unauthorised(request)
        wait = self.limiter.take(
            consumer.id, consumer.rate_per_s / self.processes, math.ceil(consumer.burst / self.processes)
        )
        if wait is not None:
            return self._rate_limited(request, consumer, wait, f"over {consumer.rate_per_s:g} requests/s")
        problem = thai_id_problem(request.subject_id)
        if problem is not None:
            return await self._refuse(request, consumer, 422, "invalid_request", problem)
        if request.operation == "verify":
            wait = self.limiter.take(
                f"verify {consumer.id} {request.subject_id}",
                VERIFY_ATTEMPTS_PER_HOUR / 3600 / self.processes,
                math.ceil(VERIFY_ATTEMPTS_PER_HOUR / self.processes),
            )
            if wait is not None:
                return self._rate_limited(
                    request,
                    consumer,
                    wait,
                    f"over {VERIFY_ATTEMPTS_PER_HOUR} verify requests per hour for this subject",
                )
        purpose = consumer.purposes.get(request.purpose)
        if purpose is not None and purpose.mandate is None and not await self.consents_current():
            return await self._refuse(
                request, consumer, 503, "unavailable", "the consent records cannot be brought up to date; retry shortly"
            )
        try:
            return await self._decide_and_answer(request, consumer, work, required, writes)
        except Exception as exc:  # noqa: BLE001 — every failure inside a request is an answer, audited
            return await self._failed(request, consumer, exc)

    async def _decide_and_answer(
        self, request: Request, consumer: Consumer, work: Work, required: frozenset[str], writes: bool
    ) -> Outcome:
        at = now_ms()
        decision = await self._decide(consumer, request, required, at)
        if not decision.allowed:
            if decision.consent_reason is not None:
                metrics.CONSENT_DENIALS.labels(
                    consumer=consumer.id, purpose=self._purpose_label(consumer, request), reason=decision.consent_reason
                ).inc()
            return await self._refuse(
                request, consumer, decision.status, decision.reason or "no_consent", decision.detail, decision
            )
        if request.operation == ACCESS_LOG:
            try:
                self.subject_tokens.prove(consumer.id, request.subject_id, request.subject_token)
            except SubjectNotProven as exc:
                await self._give_back(decision, at)
                return await self._refuse(request, consumer, exc.status, SUBJECT_NOT_PROVEN, exc.detail)
        try:
            outcome = await self._answer(request, consumer, work, decision, writes)
        except BaseException:
            await self._give_back(decision, at)
            raise
        if outcome.status != 200:
            await self._give_back(decision, at)
        return outcome

    async def refuse_malformed(self, request: Request, detail: str, status: int = 422) -> Outcome:
        """A request the API could not even parse: still authenticated first, audited and counted."""
        consumer = self.registry.authenticate(request.api_key)
        if consumer is None:
            return await self._unauthorised(request)
        return await self._refuse(request, consumer, status, "invalid_request", detail)

    async def _unauthorised(self, request: Request) -> Outcome:
        wait = self.limiter.take(
            UNAUTHENTICATED,
            UNAUTHENTICATED_RATE_PER_S / self.processes,
            math.ceil(UNAUTHENTICATED_BURST / self.processes),
        )
        if wait is not None:
            return self._rate_limited(
                request, None, wait, f"over {UNAUTHENTICATED_RATE_PER_S:g} requests/s without a valid API key"
            )
        return await self._refuse(request, None, 401, "unauthorised", "missing or unknown API key (X-API-Key)")

    def _rate_limited(self, request: Request, consumer: Consumer | None, wait: float, limit: str) -> Outcome:
        """A 429 writes no audit record of its own: the caller's next audited record counts it
        (`rate_limited_since`), so a flood costs the trail one record per token, not one per request."""
        caller = consumer.id if consumer else UNAUTHENTICATED
        self._unaudited[caller] = self._unaudited.get(caller, 0) + 1
        body = problem(request, 429, "rate_limited", f"{limit}; retry in {wait:.2f} s")
        return self._count(
            request, consumer, Outcome(429, body, {"Retry-After": str(max(1, round(wait + 0.5)))}), "rate_limited"
        )

    async def _decide(self, consumer: Consumer, request: Request, required: frozenset[str], at: int) -> Decision:
        """The policy's decision; an allowed one-time consent is used up at `at` here, so that of
        concurrent requests only one is allowed by it."""
        decision = await self._read(
            authorize, consumer, request.purpose, request.operation, request.subject_id, self.consents, at, required
        )
        if (
            decision.allowed
            and decision.one_time_consent is not None
            and not await asyncio.to_thread(self.consents.use_up, decision.one_time_consent, at)
        ):
            decision = Decision(403, "no_consent", "the one-time consent was already used", consent_reason="expired")
        return decision

    async def _answer(
        self, request: Request, consumer: Consumer, work: Work, decision: Decision, writes: bool
    ) -> Outcome:
        found = await asyncio.to_thread(work, decision) if writes else await self._read(work, decision)
        if found is None:
            return await self._refuse(
                request,
                consumer,
                404,
                "not_found",
                f"the index holds no {request.subject_kind} {request.subject_id}",
                decision,
            )
        body, datasets = found
        written = await self._audit(request, consumer, 200, None, decision, datasets)
        if isinstance(written, Outcome):
            return written
        body = {
            "request_id": request.request_id,
            "consumer": consumer.id,
            "purpose": request.purpose,
            "basis": decision.basis,
            "answered_at": iso(now_ms()),
            **body,
        }
        return self._count(request, consumer, Outcome(200, body))

    async def _failed(self, request: Request, consumer: Consumer, exc: Exception) -> Outcome:
        """A database that fails is unavailable, anything else is a bug: either way the caller gets
        the documented body and the audit trail the record, and the log the traceback."""
        log.error("request failed", exc_info=exc, extra={"request_id": request.request_id})
        if isinstance(exc, self._database_errors):
            return await self._refuse(
                request, consumer, 503, "unavailable", f"the index cannot be used ({type(exc).__name__}); retry shortly"
            )
        return await self._refuse(
            request,
            consumer,
            503,
            "internal",
            f"the request failed ({type(exc).__name__}); logged under its request id",
        )

    async def _give_back(self, decision: Decision, used_ms: int) -> None:
        """Only an answer that leaves spends a one-time consent; failing to give it back costs the
        person a new consent, not the request its answer, so it is logged, not raised."""
        if decision.one_time_consent is None:
            return
        try:
            await asyncio.to_thread(self.consents.give_back, decision.one_time_consent, used_ms)
        except Exception as exc:  # noqa: BLE001 — the refusal leaves either way
            log.error(
                "one-time consent not given back", extra={"consent_id": decision.one_time_consent, "error": repr(exc)}
            )

    async def _read(self, read: Callable[..., T], *args: Any) -> T:
        if self._reads_inline:
            return read(*args)
        return await asyncio.to_thread(read, *args)

    async def _refuse(
        self,
        request: Request,
        consumer: Consumer | None,
        status: int,
        reason: str,
        detail: str,
        decision: Decision | None = None,
    ) -> Outcome:
        written = await self._audit(
            request, consumer, status, reason, decision, sorted(decision.fields) if decision else []
        )
        if isinstance(written, Outcome):
            return written
        body = problem(request, status, reason, detail, decision.consent_reason if decision else None)
        return self._count(request, consumer, Outcome(status, body), reason)

    async def _audit(
        self,
        request: Request,
        consumer: Consumer | None,
        status: int,
        reason: str | None,
        decision: Decision | None,
        datasets: list[str],
    ) -> tuple[int, int] | Outcome:
        """Write the audit record (and the subject's access-log row); an Outcome of 503 when it cannot be written."""
        at = now_ms()
        consumer_id = consumer.id if consumer else UNAUTHENTICATED
        rate_limited_since = self._unaudited.pop(consumer_id, 0)
        entry = access_entry(
            at_ms=at,
            request_id=request.request_id,
            consumer=consumer_id,
            purpose=request.purpose,
            operation=request.operation,
            subject=(request.subject_kind, request.subject_id),
            datasets=datasets,
            status=status,
            reason=reason,
            basis=decision.basis if decision and decision.allowed else None,
            rate_limited_since=rate_limited_since,
        )
        try:
            partition, offset = await self.audit.append(entry)
        except AuditUnavailable as exc:
            self._unaudited[consumer_id] = self._unaudited.get(consumer_id, 0) + rate_limited_since
            body = problem(request, 503, "unavailable", f"{exc}: nothing is answered without its audit record")
            return self._count(request, consumer, Outcome(503, body), "unavailable")
        if consumer is not None and thai_id_problem(request.subject_id) is None:
            self.access_log.add(access_row(entry, (partition, offset)))
        return partition, offset

    @staticmethod
    def _purpose_label(consumer: Consumer | None, request: Request) -> str:
        """Only registered purposes become label values: a caller must not grow the series set."""
        return request.purpose if consumer is not None and request.purpose in consumer.purposes else UNREGISTERED

    def _count(
        self, request: Request, consumer: Consumer | None, outcome: Outcome, reason: str | None = None
    ) -> Outcome:
        consumer_id = consumer.id if consumer else UNAUTHENTICATED
        status = str(outcome.status)
        metrics.LOOKUPS.labels(
            consumer=consumer_id, dataset=request.dataset, purpose=self._purpose_label(consumer, request), status=status
        ).inc()
        if reason is not None:
            metrics.LOOKUP_ERRORS.labels(consumer=consumer_id, status=status, reason=reason).inc()
        metrics.LOOKUP_DURATION.labels(consumer=consumer_id, dataset=request.dataset).observe(
            time.perf_counter() - request.started
        )
        log.info(
            "lookup",
            extra={
                "request_id": request.request_id,
                "consumer": consumer_id,
                "operation": request.operation,
                "status": outcome.status,
                "reason": reason,
            },
        )
        return outcome

    def access_entries(self, subject_id: str) -> list[dict[str, Any]]:
        """The subject's view: every lookup and notice about them, newest first. The queued rows are flushed
        first, once the request is allowed: a refused caller must not cost a write."""
        self.access_log.flush()
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(access_log)
                    .where(access_log.c.subject_id == subject_id)
                    .order_by(access_log.c.time_ms.desc(), access_log.c.id.desc())
                    .limit(ACCESS_LOG_LIMIT)
                )
                .mappings()
                .all()
            )
        names = {cid: c.name for cid, c in self.registry.consumers.items()}
        return [
            {
                "time": iso(r["time_ms"]),
                "consumer": r["consumer"],
                "consumer_name": names.get(r["consumer"], r["consumer"]),
                "purpose": r["purpose"],
                "operation": r["operation"],
                "datasets": json.loads(r["datasets"]),
                "decision": r["decision"],
                "reason": r["reason"],
                "request_id": r["request_id"],
            }
            for r in rows
        ]
