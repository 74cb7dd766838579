"""Make a cluster's topics match the catalog, idempotently, through the admin client.

Replication factor and min.insync.replicas are clamped to what the cluster can hold (a 1-broker
development cluster gets 1/1); a topic whose live replication differs is reported as drift, since
changing it needs a partition reassignment that this tool does not do behind the operator's back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from streams.errors import GdxError
from streams.kafka_probe import quiet_client_logs, require_cluster
from streams.settings import Settings
from streams.topic_catalog import Catalog, TopicSpec


@dataclass(frozen=True)
class LiveTopic:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass
class TopicChange:
    """What `apply` did (or found) for one topic: created, updated, unchanged, or drift."""

    topic: str
    action: str
    details: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.action:<9} {self.topic}" + (f"  ({'; '.join(self.details)})" if self.details else "")


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=int(settings.kafka_request_timeout_s * 1000),
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


def _raise_for(error_code: int, what: str) -> None:
    if error_code:
        error = for_code(error_code)
        raise GdxError(f"{what} failed: {error.__name__}", "see the broker log; `gdx kafka status` checks the cluster")


async def _live_topics(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, LiveTopic]:
    existing = set(await admin.list_topics())
    wanted = [n for n in names if n in existing]
    if not wanted:
        return {}
    described = await admin.describe_topics(wanted)
    configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in wanted])
    by_name: dict[str, dict[str, str]] = {}
    for response in configs:
        for error_code, _message, _type, name, entries, *_ in response.resources:
            _raise_for(error_code, f"describing the configs of {name}")
            by_name[name] = {entry[0]: entry[1] for entry in entries}
    live: dict[str, LiveTopic] = {}
    for topic in described:
        partitions = topic["partitions"]
        live[topic["topic"]] = LiveTopic(
            name=topic["topic"],
            partitions=len(partitions),
            replication_factor=max((len(p["replicas"]) for p in partitions), default=0),
            configs=by_name.get(topic["topic"], {}),
        )
    return live


def _plan(spec: TopicSpec, name: str, live: LiveTopic | None, brokers: int) -> tuple[TopicChange, dict[str, str]]:
    """What must change for one topic, and the full config set it should end with."""
    replication = min(spec.replication_factor, brokers)
    desired = spec.desired_configs(replication)
    if live is None:
        return TopicChange(name, "create", [f"{spec.partitions} partitions, replication {replication}"]), desired
    change = TopicChange(name, "unchanged")
    for key, value in desired.items():
        if live.configs.get(key) != value:
            change.action = "update"
            change.details.append(f"{key} {live.configs.get(key)} → {value}")
    if live.partitions < spec.partitions:
        change.action = "update"
        change.details.append(f"partitions {live.partitions} → {spec.partitions}")
    elif live.partitions > spec.partitions:
        change.details.append(f"has {live.partitions} partitions, catalog says {spec.partitions} (cannot shrink)")
    if live.replication_factor != replication:
        change.details.append(f"replication {live.replication_factor}, catalog wants {replication} (reassign by hand)")
    if change.action == "unchanged" and change.details:
        change.action = "drift"
    return change, desired


async def _apply(settings: Settings, catalog: Catalog) -> list[TopicChange]:
    async with admin_client(settings) as admin:
        brokers = len((await admin.describe_cluster())["brokers"])
        names = {settings.topic(spec.name): spec for spec in catalog.topics}
        live = await _live_topics(admin, list(names))
        changes: list[TopicChange] = []
        to_create: list[NewTopic] = []
        for name, spec in names.items():
            change, desired = _plan(spec, name, live.get(name), brokers)
            changes.append(change)
            if change.action == "create":
                to_create.append(
                    NewTopic(name, spec.partitions, min(spec.replication_factor, brokers), topic_configs=desired)
                )
            elif change.action == "update":
                await _update(admin, name, spec, live[name], desired)
        if to_create:
            response = await admin.create_topics(to_create)
            raced = []
            for topic_name, error_code, *_ in response.topic_errors:
                if error_code == TopicAlreadyExistsError.errno:
                    raced.append(topic_name)
                else:
                    _raise_for(error_code, f"creating {topic_name}")
            if raced:
                changes = await _update_raced(admin, names, raced, changes, brokers, settings.kafka_request_timeout_s)
        touched = {c.topic: names[c.topic] for c in changes if c.action in ("create", "update")}
        await _await_converged(admin, touched, brokers, settings.kafka_request_timeout_s)
        return changes


async def _update_raced(
    admin: AIOKafkaAdminClient, names: dict[str, TopicSpec], raced: list[str],
    changes: list[TopicChange], brokers: int, timeout_s: float,
) -> list[TopicChange]:
    """Topics that metadata did not list yet but the controller already had: update them instead.

    Metadata reaches brokers a moment after the controller accepts it, so a topic created just now
    by someone else can be missing from `list_topics` and then refused as already existing.
    """
    deadline = time.monotonic() + timeout_s
    live = await _live_topics(admin, raced)
    while len(live) < len(raced) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        live = await _live_topics(admin, raced)
    replanned = {}
    for name in raced:
        if name not in live:
            raise GdxError(f"{name} exists on the controller but no broker reports it", "retry `gdx topics apply`")
        change, desired = _plan(names[name], name, live[name], brokers)
        if change.action == "update":
            await _update(admin, name, names[name], live[name], desired)
        replanned[name] = change
    return [replanned.get(c.topic, c) for c in changes]


async def _await_converged(
    admin: AIOKafkaAdminClient, specs: dict[str, TopicSpec], brokers: int, timeout_s: float
) -> None:
    """Return once every touched topic reads back as the catalog wants it.

    A broker applies config records from the controller a moment after they are accepted, so a
    describe straight after an alter can still show the old values; waiting here keeps a second
    `apply` (or any reader right after this one) from seeing a change that is already made.
    """
    deadline = time.monotonic() + timeout_s
    pending = dict(specs)
    while pending:
        live = await _live_topics(admin, list(pending))
        pending = {
            name: spec for name, spec in pending.items()
            if _plan(spec, name, live.get(name), brokers)[0].action in ("create", "update")
        }
        if pending and time.monotonic() > deadline:
            raise GdxError(
                f"topics {sorted(pending)} did not reach their catalog state within {timeout_s:g} s",
                "run `gdx topics list` to see their live state, then `gdx topics apply` again",
            )
        if pending:
            await asyncio.sleep(0.2)


async def _update(
    admin: AIOKafkaAdminClient, name: str, spec: TopicSpec, live: LiveTopic, desired: dict[str, str]
) -> None:
    if live.partitions < spec.partitions:
        response = await admin.create_partitions({name: NewPartitions(spec.partitions)})
        for topic_name, error_code, *_ in response.topic_errors:
            _raise_for(error_code, f"adding partitions to {topic_name}")
    if any(live.configs.get(k) != v for k, v in desired.items()):
        # AlterConfigs replaces the topic's dynamic config set as a whole; `desired` is that whole set.
        for response in await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=desired)]):
            for error_code, _message, _type, topic_name, *_ in response.resources:
                _raise_for(error_code, f"altering the configs of {topic_name}")


def apply_topics(settings: Settings, catalog: Catalog) -> list[TopicChange]:
    """Create or update every catalog topic; safe to run any number of times."""
    require_cluster(settings.bootstrap_servers, settings.kafka_request_timeout_s)
    with quiet_client_logs():
        try:
            return asyncio.run(_apply(settings, catalog))
        except KafkaError as exc:
            raise GdxError(f"topic apply failed: {exc!r}", "check the cluster with `gdx kafka status`") from None


async def _describe(settings: Settings, catalog: Catalog) -> tuple[int, dict[str, LiveTopic]]:
    async with admin_client(settings) as admin:
        brokers = len((await admin.describe_cluster())["brokers"])
        return brokers, await _live_topics(admin, [settings.topic(s.name) for s in catalog.topics])


def list_topics(settings: Settings, catalog: Catalog) -> list[tuple[TopicSpec, str, LiveTopic | None, TopicChange]]:
    """Each catalog topic with its physical name, its live state and how it differs from the catalog."""
    require_cluster(settings.bootstrap_servers, settings.kafka_request_timeout_s)
    with quiet_client_logs():
        brokers, live = asyncio.run(_describe(settings, catalog))
    rows = []
    for spec in catalog.topics:
        name = settings.topic(spec.name)
        change, _ = _plan(spec, name, live.get(name), brokers)
        rows.append((spec, name, live.get(name), change))
    return rows
