"""The declarative topic catalog (`topics.toml`) turned into typed topic specs.

Every topic name in the code comes from here, so the naming convention lives in one place.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from foundation.errors import GdxError

CATALOG_FILE = "topics.toml"
CHANGE_EVENT_MAJOR = 1


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the catalog wants it."""

    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    cleanup_policy: str
    configs: dict[str, str] = field(default_factory=dict)
    description: str = ""
    agency: str | None = None
    dataset: str | None = None
    dataset_codes: tuple[int, ...] = ()

    def desired_configs(self, replication_factor: int) -> dict[str, str]:
        """Topic-level configs, with min.insync.replicas kept below the effective replication."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(min(self.min_insync_replicas, replication_factor)),
            **self.configs,
        }


@dataclass(frozen=True)
class Dataset:
    """A master dataset published by one agency on its own change-event topic."""

    agency: str
    name: str
    codes: tuple[int, ...]
    topic: str


@dataclass(frozen=True)
class Catalog:
    topics: tuple[TopicSpec, ...]
    datasets: tuple[Dataset, ...]
    agencies: dict[str, str]

    def by_name(self) -> dict[str, TopicSpec]:
        return {t.name: t for t in self.topics}

    def dataset(self, agency: str, name: str) -> Dataset:
        for ds in self.datasets:
            if ds.agency == agency and ds.name == name:
                return ds
        raise GdxError(f"unknown dataset {agency}/{name}", f"known agencies: {', '.join(self.agencies)}")


def change_topic(agency: str, dataset: str, major: int = CHANGE_EVENT_MAJOR) -> str:
    return f"gdx.{agency}.{dataset}.v{major}"


INDEX_GROUP = "gdx-index"
"""The stream workers' consumer group (under the topic prefix): the one group that reads the change topics."""


def dead_letter_topic(source_topic: str) -> str:
    return f"gdx.dlq.{source_topic}"


def notify_topic(consumer: str) -> str:
    return f"gdx.notify.{consumer}"


def _spec(name: str, raw: dict[str, Any], defaults: dict[str, Any], **extra: Any) -> TopicSpec:
    merged = {**defaults, **raw, **extra}
    return TopicSpec(
        name=name,
        partitions=int(merged.pop("partitions")),
        replication_factor=int(merged.pop("replication_factor")),
        min_insync_replicas=int(merged.pop("min_insync_replicas")),
        cleanup_policy=str(merged.pop("cleanup_policy")),
        configs={k: str(v) for k, v in merged.pop("configs", {}).items()},
        **merged,
    )


def parse_catalog(raw: dict[str, Any], notify_consumers: Iterable[str] = ()) -> Catalog:
    """Expand the TOML document: one change topic per dataset plus its dead-letter topic, and one
    notify topic per subscribed consumer."""
    defaults = raw["defaults"]
    classes = raw["classes"]
    topics: list[TopicSpec] = []
    datasets: list[Dataset] = []
    for agency, body in raw["agencies"].items():
        for dataset, codes in body["datasets"].items():
            name = change_topic(agency, dataset)
            datasets.append(Dataset(agency, dataset, tuple(codes), name))
            topics.append(
                _spec(
                    name,
                    {k: v for k, v in classes["change"].items() if k != "dead_letters"},
                    defaults,
                    description=f"{body['name']}: {dataset} change events (datasets {codes})",
                    agency=agency,
                    dataset=dataset,
                    dataset_codes=tuple(codes),
                )
            )
            topics.append(
                _spec(
                    dead_letter_topic(name),
                    classes["dead_letter"],
                    defaults,
                    description=f"events of {name} that failed processing, with their reason",
                )
            )
    for consumer in sorted(set(notify_consumers)):
        topics.append(
            _spec(
                notify_topic(consumer),
                classes["notify"],
                defaults,
                description=f"linked-change notifications for {consumer}",
            )
        )
    for body in raw.get("topics", []):
        topics.append(_spec(body["name"], {k: v for k, v in body.items() if k != "name"}, defaults))
    names = [t.name for t in topics]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise GdxError(f"topic catalog declares {sorted(duplicates)} twice", "keep one entry per topic")
    return Catalog(tuple(topics), tuple(datasets), {a: b["name"] for a, b in raw["agencies"].items()})


def load_catalog() -> Catalog:
    from linkage.subscriptions import load_subscriptions

    text = resources.files("streams").joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    return parse_catalog(tomllib.loads(text), (s.consumer for s in load_subscriptions()))
