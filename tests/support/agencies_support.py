"""Helpers shared by the agencies tests: routes from the catalog, loaded stores, outbox audits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agencies.events import Route
from agencies.faults import FaultRates
from agencies.schema_ids import SchemaIds
from agencies.simulation import Plan, Simulation, store_path
from agencies.store import AgencyStore
from foundation.schema_registry import RegistryAccess, SchemaRegistry
from schemas.catalog import load_schema_catalog
from schemas.codec import Codec
from streams.kafka_probe import topic_partitions
from streams.topic_catalog import load_catalog
from tests.support.kafka_env import clients

SCHEMAS = load_schema_catalog()
CODEC = Codec(SCHEMAS)


def schema_ids(access: RegistryAccess) -> SchemaIds:
    """What a publisher frames its events with: the ids of the registry at `access`, registering."""
    return SchemaIds(SCHEMAS, SchemaRegistry(access), register=True)


def routes() -> dict[str, dict[str, Route]]:
    catalog = load_catalog()
    return {
        a: {d.name: Route(d.topic, d.codes[0]) for d in catalog.datasets if d.agency == a} for a in catalog.agencies
    }


def simulate(
    store_dir: Path,
    scale: int = 1_000,
    seed: int = 7,
    count: int = 0,
    faults: FaultRates | None = None,
    agencies: tuple[str, ...] = ("dopa", "dbd", "dol", "dlt"),
) -> None:
    """Initial load plus `count` life events, written to the stores only (nothing published)."""
    plan = Plan(
        store_dir, scale=scale, seed=seed, agencies=agencies, rate=1e6, count=count, faults=faults or FaultRates()
    )
    with open("/dev/null", "w") as quiet:
        asyncio.run(Simulation(plan, routes(), SCHEMAS, out=quiet).run(life=count > 0))


def stores(store_dir: Path) -> Iterator[tuple[str, AgencyStore]]:
    for agency in ("dopa", "dbd", "dol", "dlt"):
        store = AgencyStore(store_path(store_dir, agency))
        try:
            yield agency, store
        finally:
            store.close()


def truth(store_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(dataset, key) -> current state, across the four agencies."""
    return {(e.dataset, e.key): e.state for _, store in stores(store_dir) for e in store.entities()}


async def consume(bootstrap: str, topics: list[str], timeout_s: float = 60.0) -> list[Any]:
    """Every record now in `topics`, from the first offset to the end offsets taken at the start."""
    partitions = await topic_partitions(clients(bootstrap), topics)
    consumer = clients(bootstrap).consumer(enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            assert asyncio.get_running_loop().time() < deadline, "records did not arrive in time"
            for batch in (await consumer.getmany(timeout_ms=1_000)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records
