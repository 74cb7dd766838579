"""Make a cluster's topics match the catalog, idempotently, through the admin client.

Replication factor and min.insync.replicas are clamped to what the cluster can hold (a 1-broker
development cluster gets 1/1); a topic whose live replication differs is reported as drift, since
changing it needs a partition reassignment that this tool does not do behind the operator's back.

The controller accepts a change before every broker knows it, and the admin client sends each read
to a broker picked at random, so a read straight after a create or an alter can come from a broker
that still answers "unknown topic" or shows the old configs. Every admin step therefore goes
through `_settled`, which retries what Kafka documents as retriable, and every read asks all
brokers and waits until they agree — each step within GDX_KAFKA_REQUEST_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.protocol.admin import DescribeConfigsRequest
from aiokafka.protocol.metadata import MetadataRequest

from foundation.errors import GdxError
from streams.kafka_probe import quiet_client_logs, require_cluster
from streams.settings import Settings
from streams.topic_catalog import Catalog, TopicSpec

T = TypeVar("T")
RETRY_PAUSE_S = 0.2
DYNAMIC_TOPIC_CONFIG = 1
"""DescribeConfigs' config source of a value set on the topic itself (not a broker default)."""


@dataclass(frozen=True)
class LiveTopic:
    """One topic as one broker reports it; two brokers agree when these compare equal.

    `configs` holds every effective value (broker defaults included) for display and planning, but
    only the values set on the topic itself take part in the comparison: brokers may legitimately
    differ in their own defaults, and would then never agree.
    """

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(compare=False)
    overrides: dict[str, str]


@dataclass
class TopicChange:
    """What `apply` did (or found) for one topic: created, updated, unchanged, or drift."""

    topic: str
    action: str
    details: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.action:<9} {self.topic}" + (f"  ({'; '.join(self.details)})" if self.details else "")


class _NotYet(Exception):
    """The brokers have not all caught up with a change yet; asking again will tell."""


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = settings.kafka.admin(request_timeout_ms=int(settings.kafka_request_timeout_s * 1000))
    await _settled(
        f"connecting to the cluster at {settings.bootstrap_servers}", admin.start, settings.kafka_request_timeout_s
    )
    try:
        yield admin
    finally:
        await admin.close()


def _error_for(error_code: int, message: str | None = None) -> KafkaError:
    """A broker's per-resource answer as the aiokafka error it stands for, so `_settled` can judge it."""
    return for_code(error_code)(message) if message else for_code(error_code)()


def _one_line(error: BaseException) -> str:
    """A broker's message may span lines; the CLI's error may not."""
    return " ".join(str(error).split()) or type(error).__name__


async def _settled(what: str, attempt: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """`attempt`'s result, retried while the cluster is still taking in a change, for `timeout_s`.

    Right after a create or an alter a broker may answer unknown topic, not controller or leader
    not available, or not agree with the others yet (`_NotYet`): Kafka documents these as
    retriable, so they are asked again until the bound. A refusal (a bad config, a missing ACL) is
    final at once, with the broker's own reason, or a pointer to its log when it gave none. Either
    way the GdxError is one line.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await asyncio.wait_for(attempt(), max(0.1, deadline - time.monotonic()))
        except KafkaError as exc:
            # aiokafka does not flag its own client-side timeout retriable, but it is one.
            if not (exc.retriable or isinstance(exc, KafkaTimeoutError)):
                fix = (
                    "correct what the broker names, in streams/topics.toml or on the cluster"
                    if exc.args
                    else "the broker's log says why (`gdx kafka logs` for the local cluster)"
                )
                raise GdxError(f"{what} was refused: {_one_line(exc)}", fix) from None
            last = _one_line(exc)
        except _NotYet as exc:
            last = str(exc)
        except TimeoutError:
            last = "no answer in time"
        if time.monotonic() >= deadline:
            raise GdxError(
                f"{what} did not complete within {timeout_s:g} s ({last})",
                "check that every broker is up (`gdx kafka status`), or raise GDX_KAFKA_REQUEST_TIMEOUT_S",
            )
        await asyncio.sleep(RETRY_PAUSE_S)


class _Cluster:
    """The admin client with the bound every step gets, and reads that every broker agrees on."""

    def __init__(self, admin: AIOKafkaAdminClient, timeout_s: float) -> None:
        self.admin = admin
        self.timeout_s = timeout_s

    async def settled(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        return await _settled(what, attempt, self.timeout_s)

    async def view(self, names: list[str]) -> tuple[int, dict[str, LiveTopic]]:
        """The broker count and the topics among `names` as every broker reports them alike.

        Raises `_NotYet` while brokers differ, so through `settled` a read never returns what
        only some brokers know.
        """
        brokers = [b["node_id"] for b in (await self.admin.describe_cluster())["brokers"]]
        if not brokers:
            raise _NotYet("no broker is registered")
        views = dict(zip(brokers, await asyncio.gather(*(self._broker_view(b, names) for b in brokers)), strict=True))
        (first_id, first), *others = views.items()
        for node_id, other in others:
            for name in sorted(set(first) | set(other)):
                if first.get(name) != other.get(name):
                    raise _NotYet(f"brokers {first_id} and {node_id} do not report {name} alike yet")
        return len(brokers), first

    async def _on_broker(self, node_id: int, request: Any) -> Any:
        """The admin client offers topic reads only from a random broker; agreement needs each one."""
        return await self.admin._client.send(node_id, request)

    async def _broker_view(self, node_id: int, names: list[str]) -> dict[str, LiveTopic]:
        if not names:
            return {}
        metadata = (await self._on_broker(node_id, MetadataRequest(names))).to_object()
        partitions: dict[str, list[dict[str, Any]]] = {}
        for topic in metadata["topics"]:
            if topic["error_code"] != UnknownTopicOrPartitionError.errno:
                if topic["error_code"]:
                    raise _error_for(topic["error_code"])
                partitions[topic["topic"]] = topic["partitions"]
        if not partitions:
            return {}
        resources = [(ConfigResourceType.TOPIC, name, None) for name in partitions]
        response = await self._on_broker(node_id, DescribeConfigsRequest(resources, False))
        live: dict[str, LiveTopic] = {}
        for error_code, message, _type, name, entries, *_ in response.resources:
            if error_code:
                raise _error_for(error_code, message)
            live[name] = LiveTopic(
                name=name,
                partitions=len(partitions[name]),
                replication_factor=max((len(p["replicas"]) for p in partitions[name]), default=0),
                configs={entry[0]: entry[1] for entry in entries},
                overrides={entry[0]: entry[1] for entry in entries if entry[3] == DYNAMIC_TOPIC_CONFIG},
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
        cluster = _Cluster(admin, settings.kafka_request_timeout_s)
        names = {settings.topic(spec.name): spec for spec in catalog.topics}
        brokers, live = await cluster.settled(
            "reading the catalog topics' live state", lambda: cluster.view(list(names))
        )
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
                await _update(cluster, name, spec, live[name], desired)
        if to_create:
            raced = await _create(cluster, to_create)
            if raced:
                changes = await _update_raced(cluster, names, raced, changes)
        touched = {c.topic: names[c.topic] for c in changes if c.action in ("create", "update")}
        if touched:
            await cluster.settled(
                f"every broker reporting {_names(touched)} as the catalog says", lambda: _converged(cluster, touched)
            )
        return changes


def _names(topics: dict[str, Any] | list[str]) -> str:
    listed = sorted(topics)
    return ", ".join(listed) if len(listed) <= 3 else f"{len(listed)} topics ({', '.join(listed[:3])}, …)"


async def _create(cluster: _Cluster, topics: list[NewTopic]) -> list[str]:
    """Create `topics`; returns those someone else created first (the controller says they exist)."""
    pending = {topic.name: topic for topic in topics}
    raced: list[str] = []

    async def attempt() -> None:
        response = await cluster.admin.create_topics(list(pending.values()))
        refused: list[KafkaError] = []
        for name, error_code, *message in response.topic_errors:
            if error_code in (0, TopicAlreadyExistsError.errno):
                del pending[name]
                if error_code:
                    raced.append(name)
            else:
                refused.append(_error_for(error_code, *message[:1]))
        if refused:  # a final refusal outranks a retriable one: retrying cannot mend it
            raise min(refused, key=lambda error: error.retriable)

    await cluster.settled(f"creating {_names(list(pending))}", attempt)
    return raced


async def _update_raced(
    cluster: _Cluster, names: dict[str, TopicSpec], raced: list[str], changes: list[TopicChange]
) -> list[TopicChange]:
    """Topics that no broker listed yet but the controller already had: update them instead.

    Metadata reaches brokers a moment after the controller accepts it, so a topic created just now
    by someone else can be missing from every broker's answer and then refused as already existing.
    """
    brokers, live = await cluster.settled(
        f"reading {_names(raced)}, created meanwhile by someone else", lambda: _listed(cluster, raced)
    )
    replanned = {}
    for name in raced:
        change, desired = _plan(names[name], name, live[name], brokers)
        if change.action == "update":
            await _update(cluster, name, names[name], live[name], desired)
        replanned[name] = change
    return [replanned.get(c.topic, c) for c in changes]


async def _listed(cluster: _Cluster, names: list[str]) -> tuple[int, dict[str, LiveTopic]]:
    """`view`, raising `_NotYet` until every one of `names` is listed."""
    brokers, live = await cluster.view(names)
    if missing := [name for name in names if name not in live]:
        raise _NotYet(f"no broker lists {_names(missing)} yet")
    return brokers, live


async def _converged(cluster: _Cluster, specs: dict[str, TopicSpec]) -> None:
    """Raise `_NotYet` until every touched topic reads back, on every broker, as the catalog wants.

    Waiting here keeps a second `apply` (or any reader right after this one, such as the workers
    `gdx up` starts next) from missing a change that is already made.
    """
    brokers, live = await _listed(cluster, list(specs))
    for name, spec in specs.items():
        change, _ = _plan(spec, name, live[name], brokers)
        if change.action in ("create", "update"):
            raise _NotYet(f"{name} still reads back as {change.action}: {'; '.join(change.details)}")


async def _update(cluster: _Cluster, name: str, spec: TopicSpec, live: LiveTopic, desired: dict[str, str]) -> None:
    if live.partitions < spec.partitions:
        await cluster.settled(
            f"adding partitions to {name}",
            lambda: cluster.admin.create_partitions({name: NewPartitions(spec.partitions)}),
        )
    if any(live.configs.get(k) != v for k, v in desired.items()):

        async def alter() -> None:
            # AlterConfigs replaces the topic's dynamic config set as a whole; `desired` is that whole set.
            resource = ConfigResource(ConfigResourceType.TOPIC, name, configs=desired)
            for response in await cluster.admin.alter_configs([resource]):
                for error_code, message, *_ in response.resources:
                    if error_code:
                        raise _error_for(error_code, message)

        await cluster.settled(f"altering the configs of {name}", alter)


def apply_topics(settings: Settings, catalog: Catalog) -> list[TopicChange]:
    """Create or update every catalog topic; safe to run any number of times."""
    require_cluster(settings.kafka, settings.kafka_request_timeout_s)
    with quiet_client_logs():
        return asyncio.run(_apply(settings, catalog))


async def _describe(settings: Settings, catalog: Catalog) -> tuple[int, dict[str, LiveTopic]]:
    async with admin_client(settings) as admin:
        cluster = _Cluster(admin, settings.kafka_request_timeout_s)
        names = [settings.topic(s.name) for s in catalog.topics]
        return await cluster.settled("reading the catalog topics' live state", lambda: cluster.view(names))


def list_topics(settings: Settings, catalog: Catalog) -> list[tuple[TopicSpec, str, LiveTopic | None, TopicChange]]:
    """Each catalog topic with its physical name, its live state and how it differs from the catalog."""
    require_cluster(settings.kafka, settings.kafka_request_timeout_s)
    with quiet_client_logs():
        brokers, live = asyncio.run(_describe(settings, catalog))
    rows = []
    for spec in catalog.topics:
        name = settings.topic(spec.name)
        change, _ = _plan(spec, name, live.get(name), brokers)
        rows.append((spec, name, live.get(name), change))
    return rows
