"""`gdx worker`: the faust-streaming app — the thin seam between Kafka and the pipeline.

faust runs the group (membership, rebalances, commits); its consumer hands each fetched batch of
the agency change topics to WorkerCore whole (streams.batch_consumer), and commits a batch's offsets
only after WorkerCore returned. Workers in the same consumer group share the topics' partitions, so
scaling out is starting another worker (`gdx up --workers N`, or another `gdx worker` with its own
`--audit-partition`). Correctness does not rest on faust's exactly-once mode (whose recovery users
report problems with): it rests on the index's idempotent, version-guarded writes.

A record the index refuses is dead-lettered and a transient index error is retried until it
passes (WorkerCore); if a batch's dead letters or notifications cannot be sent, the worker exits
without committing it, so the batch is delivered again after restart instead of being skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import faust
from aiokafka import AIOKafkaProducer

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients
from foundation.schema_registry import SchemaRegistry
from foundation.stop_deadline import StopDeadline
from linkage.audit import ANCHOR_TOPIC, AUDIT_TOPIC, NOTICE_KEY_OWNER, AuditWriter
from linkage.consent import ConsentStore
from linkage.consumers import load_consumers
from linkage.database import checkpoint, defer_checkpoints, index_engine
from linkage.index_store import IndexStore, Retention, now_ms
from linkage.migrate import upgrade
from linkage.notices import NoticePolicy, check_subscriptions
from linkage.subscriptions import load_subscriptions
from monitoring import scrape_targets
from monitoring.health_server import HealthServer, Readiness
from schemas.catalog import load_schema_catalog
from streams.audit_chains import audit_keys, check_chains
from streams.batch_consumer import BatchApp
from streams.pipeline import Pipeline, Prepared, SourceRecord
from streams.registry_schemas import RegistrySchemas, StoppedWaiting
from streams.security.principals import WORKER
from streams.settings import Settings
from streams.signature_check import signature_check
from streams.topic_catalog import INDEX_GROUP, dead_letter_topic, load_catalog, notify_topic
from streams.worker_core import AuditLog, Notifier, WorkerCore

log = logging.getLogger("gdx.worker")
EXIT_BATCH_FAILED = 70
PRUNE_EVERY_S = 60.0
CHECKPOINT_EVERY_S = 2.0
REGISTRY_PROBE_EVERY_S = 5.0


class KafkaSink:
    """Dead letters and notifications: an idempotent producer with acks=all, awaited per record."""

    def __init__(self, kafka: KafkaClients) -> None:
        self.kafka = kafka
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Create the producer inside the worker's event loop, which aiokafka binds it to."""
        self.producer = self.kafka.producer(enable_idempotence=True, acks="all", linger_ms=5)
        await self.producer.start()

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes | None]]) -> None:
        if self.producer is None:
            raise RuntimeError("the sink is not started")
        await self.producer.send_and_wait(topic, value, key=key, headers=headers)


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}{INDEX_GROUP}"


def notice_audit(settings: Settings) -> AuditWriter:
    """The worker's own chain of gdx.audit, in which every notice it sends is entered first."""
    return AuditWriter(
        settings.kafka_for(WORKER),
        settings.topic(AUDIT_TOPIC),
        settings.notice_audit_partition,
        audit_keys(settings, NOTICE_KEY_OWNER),
        anchor_topic=settings.topic(ANCHOR_TOPIC),
        max_unsealed_s=settings.audit_max_unsealed_s,
    )


def check_notice_chain(settings: Settings) -> None:
    """One line before faust starts: a partition the lookup API writes, one the topic lacks, or a
    head that does not verify."""
    partition = settings.notice_audit_partition
    api = range(settings.audit_partition, settings.audit_partition + settings.lookup_workers)
    fix = "give each worker a partition of its own (gdx worker --audit-partition N, or GDX_WORKER_AUDIT_PARTITION)"
    if partition in api:
        raise GdxError(f"audit partition {partition} is the lookup API's (from {api.start}, {len(api)} processes)", fix)
    writers = f"notices chained in audit partition {partition}"
    check_chains(settings, settings.kafka_for(WORKER), range(partition, partition + 1), writers, fix)


def build_core(
    settings: Settings, sink: KafkaSink, audit: AuditLog, readiness: Readiness, schemas: RegistrySchemas
) -> WorkerCore:
    catalog = load_catalog()
    engine = index_engine(settings.index_database_url)
    defer_checkpoints(engine)  # build_app's timer checkpoints
    upgrade(engine)
    subscriptions = load_subscriptions()
    registry = load_consumers(settings.consumers_file)
    check_subscriptions(subscriptions, registry)
    store = IndexStore(engine, subscriptions, retention=Retention(), max_version_jump=settings.max_version_jump)
    topic_datasets = {settings.topic(d.topic): f"{d.agency}.{d.name}" for d in catalog.datasets}
    return WorkerCore(
        Pipeline(load_schema_catalog(), store, topic_datasets, signature_check(settings), schemas),
        sink,
        dead_letter_topics={
            settings.topic(d.topic): settings.topic(dead_letter_topic(d.topic)) for d in catalog.datasets
        },
        notifier=Notifier(
            topics={s.consumer: settings.topic(notify_topic(s.consumer)) for s in subscriptions},
            policy=NoticePolicy(registry, ConsentStore(engine), subscriptions),
            audit=audit,
        ),
        readiness=readiness,
    )


def prune_run_dirs(parent: Path) -> None:
    """Remove the faust data directories (`worker/<pid>`) of workers that are no longer running:
    one is made per run, and a killed worker cannot remove its own."""
    for run in parent.iterdir() if parent.is_dir() else ():
        if run.is_dir() and run.name.isdigit() and not _running(int(run.name)):
            shutil.rmtree(run, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, as another user
        pass
    return True


def build_app(settings: Settings, batch_size: int = 2000) -> BatchApp:
    datadir = settings.state_dir / "worker" / str(os.getpid())
    datadir.parent.mkdir(parents=True, exist_ok=True)
    prune_run_dirs(datadir.parent)
    kafka = settings.kafka_for(WORKER)  # the app's consumer and the sink's producer alike
    app = BatchApp(
        group_id(settings),
        broker=kafka.faust_brokers(),
        broker_credentials=kafka.faust_credentials(),
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=batch_size,
        broker_max_poll_records=batch_size,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.worker_session_timeout_s,
        datadir=str(datadir),
    )
    sink = KafkaSink(kafka)
    audit = notice_audit(settings)
    readiness = Readiness()
    schemas = RegistrySchemas(SchemaRegistry(settings.registry_for(WORKER)), readiness)
    core = build_core(settings, sink, audit, readiness, schemas)
    readiness.set_not_ready("producer", "the dead-letter and notify producer is not started yet")
    readiness.add_check("audit", lambda: audit.error or audit.seal_problem())
    # Bound before faust starts, so a busy port is one clear error line instead of a crashed app.
    health = HealthServer(
        f"worker-{os.getpid()}",
        "worker",
        port=settings.worker_metrics_port,
        readiness=readiness,
        targets_dir=scrape_targets.targets_dir(settings.state_dir),
        port_setting="GDX_WORKER_METRICS_PORT",
    ).start()
    # Read now: a stop during start-up stops the health server before the task below logs, and a
    # stopped server has no URL (the task crashed, and faust hung a minute over the crash).
    metrics_url = f"{health.url}/metrics"
    sink_started = asyncio.Event()

    @app.task
    async def _start_sink() -> None:
        await sink.start()
        await audit.start()
        await core.send_notifications()  # left queued by a worker that died after its commit
        sink_started.set()
        readiness.set_ready("producer")
        log.info("worker started", extra={"metrics": metrics_url, "group": group_id(settings)})
        await audit.checkpoint_every(settings.audit_checkpoint_interval_s)

    @app.timer(5.0)
    async def _pending_links() -> None:
        await asyncio.to_thread(core.publish_pending_links)

    @app.timer(5.0)
    async def _held_notices() -> None:
        if audit.started:  # notices the audit could not take while it was failing
            await _or_exit(core.send_notifications, "held notices could not be sent")

    @app.timer(REGISTRY_PROBE_EVERY_S)
    async def _registry() -> None:
        await asyncio.to_thread(schemas.probe)

    @app.timer(CHECKPOINT_EVERY_S)
    async def _checkpoint() -> None:
        await asyncio.to_thread(checkpoint, core.pipeline.store.engine)

    @app.timer(PRUNE_EVERY_S)
    async def _prune() -> None:
        await asyncio.to_thread(core.pipeline.store.prune, now_ms())

    @app.on_before_shutdown.connect
    def _stop_health(*_: Any, **__: Any) -> None:
        health.stop()

    # Every change topic in one consumer: each batch is one index transaction whatever topics it
    # spans, so no two batches wait on each other's write lock; order per partition is kept.
    async def apply(records: Sequence[SourceRecord], prepared: Awaitable[Prepared]) -> None:
        await core.handle(records, await prepared)

    async def handle(records: Sequence[SourceRecord], prepared: Awaitable[Prepared]) -> None:
        await sink_started.wait()  # the first assignment may come before the producer is up
        await _or_exit(apply, "batch failed", records, prepared)

    app.consume(list(core.pipeline.topic_datasets), core.pipeline.prepare, handle)
    schemas.stopping = app.stopping
    return app


async def _or_exit(work: Callable[..., Awaitable[object]], what: str, *args: object) -> None:
    """Exit at once when `work` fails: an agent that raised would be restarted by faust's
    supervisor, which acks the events it had buffered (a record it choked on would be skipped),
    and a crashed timer makes faust stop with no bound on how long that takes. What is left is
    delivered again (the batch) or still queued (the notices) when the worker starts again."""
    try:
        await work(*args)
    except StoppedWaiting:
        log.warning("stopped while the schema registry was away; the batch is delivered again on restart")
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)
    except Exception:
        log.critical(f"{what}; exiting so the work is done again on restart", exc_info=True)
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)


class _Worker(faust.Worker):
    """faust's worker without its terminal spinner, and with a bounded stop.

    To spin on every log record, the spinner sets the root logger to DEBUG, so every debug call of
    aiokafka's fetcher (one per partition per fetch) built a log record: about 8% of a worker's time
    at a steady 700 events/s. A stop signal arms the deadline: a stop during a rebalance once took
    over a minute, longer than `gdx up` waits before SIGKILL."""

    def __init__(self, app: faust.App, deadline: StopDeadline, **options: Any) -> None:
        super().__init__(app, **options)
        self.deadline = deadline

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None

    def _on_sigterm(self) -> None:
        self._stopping()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._stopping()
        super()._on_sigint()

    def _stopping(self) -> None:
        self.deadline.arm()
        if isinstance(self.app, BatchApp):
            self.app.stopping.set()


def run_worker(settings: Settings, log_level: str = "warning") -> NoReturn:
    app = build_app(settings)
    deadline = StopDeadline(settings.worker_stop_timeout_s, "worker")
    worker = _Worker(app, deadline, loglevel=log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
