"""`gdx acl apply|list` logic against a fake at the confluent-kafka seam: idempotent, only our
bindings touched, a lagging broker waited for, the admin config built in one place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients
from streams.acl_admin import AclDrift, acl_admin_config, acl_drift, apply_acls, compare, is_ours
from streams.acl_table import DESCRIBE, GROUP, LITERAL, PREFIXED, READ, TOPIC, WRITE, AclRow
from streams.commands.acl import REVOKED_FILE, revoked_principals
from streams.settings import Settings
from tests.support.cli_run import run_gdx

DESIRED = [
    AclRow("agency-dopa", TOPIC, "gdx.dopa.person.v1", LITERAL, WRITE),
    AclRow("agency-dopa", TOPIC, "gdx.dopa.person.v1", LITERAL, DESCRIBE),
    AclRow("gdx-worker", GROUP, "gdx-index", LITERAL, READ),
    AclRow("consumer-revenue", GROUP, "consumer-revenue.", PREFIXED, READ),
]
NAMES = ["agency-dopa", "gdx-worker", "consumer-revenue"]


class FakeAdmin:
    """The cluster's bindings as a set; `lag` describes return the old view before a change shows."""

    def __init__(self, held: Sequence[AclRow] = (), lag: int = 0) -> None:
        self.held = set(held)
        self.shown = set(held)
        self.lag = lag
        self._pending = 0
        self.calls: list[str] = []

    def describe(self) -> list[AclRow]:
        self.calls.append("describe")
        if self._pending:
            self._pending -= 1
        else:
            self.shown = set(self.held)
        return sorted(self.shown)

    def create(self, rows: Sequence[AclRow]) -> None:
        self.calls.append(f"create {len(rows)}")
        self.held |= set(rows)
        self._pending = self.lag

    def delete(self, rows: Sequence[AclRow]) -> None:
        self.calls.append(f"delete {len(rows)}")
        self.held -= set(rows)
        self._pending = self.lag


def ours(row: AclRow) -> bool:
    return is_ours(row, NAMES, "")


def test_apply_creates_what_is_missing_and_a_second_run_changes_nothing() -> None:
    admin = FakeAdmin()
    first = apply_acls(admin, DESIRED, ours, 5.0)
    assert first.missing == sorted(DESIRED) and not first.extra
    assert admin.held == set(DESIRED)
    admin.calls.clear()
    second = apply_acls(admin, DESIRED, ours, 5.0)
    assert second.in_step and second.held == sorted(DESIRED)
    assert admin.calls == ["describe"], "a run against a matching cluster neither creates nor deletes"


def test_apply_deletes_our_extra_bindings_and_leaves_foreign_ones_alone() -> None:
    stray = AclRow("agency-dlt", TOPIC, "gdx.dopa.person.v1", LITERAL, WRITE)  # a dropped or revoked principal
    gone = AclRow("consumer-old", TOPIC, "gdx.notify.old", LITERAL, READ)  # no longer in the registry
    foreign = AclRow("User:alice", TOPIC, "scratch", LITERAL, READ)
    operator = AclRow("gdx-operator", TOPIC, "gdx.audit", LITERAL, "ALTER_CONFIGS")
    admin = FakeAdmin([*DESIRED[:2], stray, gone, foreign, operator])
    found = apply_acls(admin, DESIRED, ours, 5.0)
    assert found.extra == sorted([stray, gone])
    assert found.foreign == sorted([foreign, operator])
    assert admin.held == {*DESIRED, foreign, operator}


def test_apply_waits_until_the_brokers_show_the_change() -> None:
    admin = FakeAdmin(lag=3)
    apply_acls(admin, DESIRED, ours, 5.0, sleep=lambda _s: None)
    assert admin.calls.count("describe") == 1 + 3 + 1


def test_apply_gives_up_in_one_line_when_the_change_never_shows() -> None:
    admin = FakeAdmin(lag=10**6)
    ticks = iter(range(1000))
    with pytest.raises(GdxError, match="still shows 4 missing"):
        apply_acls(admin, DESIRED, ours, 3.0, clock=lambda: float(next(ticks)), sleep=lambda _s: None)


def test_a_prefixed_environment_manages_only_its_own_names() -> None:
    other_env = AclRow("gdx-worker", GROUP, "b.gdx-index", LITERAL, READ)
    mine = AclRow("gdx-worker", GROUP, "a.gdx-index", LITERAL, READ)
    drift = compare([mine], [other_env], lambda row: is_ours(row, NAMES, "a."))
    assert drift.missing == [mine] and not drift.extra and drift.foreign == [other_env]


def test_list_shows_missing_and_extra() -> None:
    extra = AclRow("consumer-revenue", TOPIC, "gdx.notify.bank", LITERAL, READ)
    drift = acl_drift(FakeAdmin([DESIRED[0], extra]), DESIRED, ours)
    assert drift == AclDrift(held=[DESIRED[0]], missing=sorted(DESIRED[1:]), extra=[extra], foreign=[])
    assert not drift.in_step


def test_the_admin_config_takes_its_connection_from_the_client_factory() -> None:
    plain = acl_admin_config(KafkaClients("127.0.0.1:9092"), timeout_s=4)
    assert plain["bootstrap.servers"] == "127.0.0.1:9092"
    assert plain["client.id"] == "gdx"
    assert plain["socket.timeout.ms"] == 4000
    assert "security.protocol" not in plain


def test_revoked_principals_come_from_a_file_one_a_line(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert revoked_principals(settings, None) == frozenset(), "no default file: nobody revoked"
    (tmp_path / REVOKED_FILE).write_text("# revoked 2026-12-01\nagency-dlt\n\nUser:consumer-bank  # lost key\n")
    assert revoked_principals(settings, None) == {"agency-dlt", "consumer-bank"}
    with pytest.raises(GdxError, match="no revocation file"):
        revoked_principals(settings, tmp_path / "missing.txt")


def test_acl_list_offline_prints_the_table_without_the_revoked(tmp_path: Path) -> None:
    (tmp_path / "revoked").write_text("agency-dlt\n")
    listed = run_gdx("acl", "list", "--offline", "--revoked", str(tmp_path / "revoked"))
    assert listed.code == 0, listed.err
    assert "agency-dopa" in listed.out and "agency-dlt " not in listed.out
    assert "revoked, no rights: agency-dlt" in listed.out
