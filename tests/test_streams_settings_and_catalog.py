"""Unit tests (no broker): settings precedence, the catalog's naming, and the apply planner."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundation.errors import GdxError
from streams.local.kafka_launcher import Node, render_properties
from streams.settings import Settings, load_settings
from streams.topic_admin import LiveTopic, _plan
from streams.topic_catalog import load_catalog, parse_catalog


def test_environment_beats_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "site.toml"
    file.write_text('kafka_bootstrap_servers = "file-host:9092"\ntopic_prefix = "site."\nkafka_port = 19092\n')
    monkeypatch.setenv("GDX_SETTINGS_FILE", str(file))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    from_file = load_settings()
    assert from_file.bootstrap_servers == "file-host:9092" and from_file.external_kafka
    assert from_file.topic("gdx.audit") == "site.gdx.audit"

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env-host:9092")
    assert load_settings().bootstrap_servers == "env-host:9092"


def test_missing_named_settings_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GDX_SETTINGS_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(GdxError, match="does not exist"):
        load_settings()


def test_local_bootstrap_lists_every_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    settings = Settings(kafka_port=30000, kafka_brokers=3)
    assert not settings.external_kafka
    assert settings.bootstrap_servers == "127.0.0.1:30000,127.0.0.1:30002,127.0.0.1:30004"
    assert settings.controller_port(3) == 30005


def test_three_node_properties_share_one_voter_set(tmp_path: Path) -> None:
    settings = Settings(kafka_port=30000, kafka_brokers=3, state_dir=tmp_path)
    text = render_properties(settings, Node(2, tmp_path / "node-2"), brokers=3)
    assert "node.id=2\n" in text
    assert "controller.quorum.voters=1@127.0.0.1:30001,2@127.0.0.1:30003,3@127.0.0.1:30005" in text
    assert "listeners=CLIENT://127.0.0.1:30002,CONTROLLER://127.0.0.1:30003" in text
    assert "listener.security.protocol.map=CLIENT:SSL,CONTROLLER:SSL" in text, "secured by default"
    assert "ssl.client.auth=required" in text and "allow.everyone.if.no.acl.found=false" in text
    assert "min.insync.replicas=2" in text and "default.replication.factor=3" in text


def test_catalog_follows_the_naming_convention() -> None:
    catalog = load_catalog()
    names = set(catalog.by_name())
    assert "gdx.audit" in names and "gdx.schemas" not in names
    assert len(catalog.datasets) == 13
    for dataset in catalog.datasets:
        assert dataset.topic == f"gdx.{dataset.agency}.{dataset.name}.v1"
        assert f"gdx.dlq.{dataset.topic}" in names
        assert catalog.by_name()[dataset.topic].cleanup_policy == "compact"
    assert catalog.dataset("dlt", "vehicle").codes == (30,)
    with pytest.raises(GdxError, match="unknown dataset"):
        catalog.dataset("dlt", "boat")


def test_catalog_rejects_a_topic_declared_twice() -> None:
    raw = {
        "defaults": {"partitions": 1, "replication_factor": 1, "min_insync_replicas": 1},
        "classes": {"change": {"cleanup_policy": "compact"}, "dead_letter": {"cleanup_policy": "delete"}},
        "agencies": {"x": {"name": "X", "datasets": {"a": [1]}}},
        "topics": [{"name": "gdx.x.a.v1", "cleanup_policy": "delete"}],
    }
    with pytest.raises(GdxError, match="twice"):
        parse_catalog(raw)


def test_plan_clamps_replication_and_reports_each_difference() -> None:
    spec = load_catalog().by_name()["gdx.dopa.person.v1"]
    create, desired = _plan(spec, "gdx.dopa.person.v1", None, brokers=1)
    assert create.action == "create" and desired["min.insync.replicas"] == "1"

    matching = LiveTopic("p", spec.partitions, 1, dict(desired), dict(desired))
    assert _plan(spec, "p", matching, brokers=1)[0].action == "unchanged"

    drifted = LiveTopic(
        "p", spec.partitions, 1, {**desired, "cleanup.policy": "delete"}, {**desired, "cleanup.policy": "delete"}
    )
    update = _plan(spec, "p", drifted, brokers=1)[0]
    assert update.action == "update" and update.details == ["cleanup.policy delete → compact"]

    wider = LiveTopic("p", spec.partitions + 2, 1, dict(desired), dict(desired))
    drift = _plan(spec, "p", wider, brokers=1)[0]
    assert drift.action == "drift" and "cannot shrink" in drift.details[0]

    under_replicated = LiveTopic("p", spec.partitions, 1, spec.desired_configs(3), spec.desired_configs(3))
    assert "reassign by hand" in _plan(spec, "p", under_replicated, brokers=3)[0].details[0]


def test_cluster_ids_never_look_like_an_option() -> None:
    from streams.local.kafka_launcher import new_cluster_id

    ids = [new_cluster_id() for _ in range(3000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
