"""`gdx acl` against the project's broker as it is today, with no authorizer: one clear line."""

from __future__ import annotations

import pytest

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients
from streams.acl_admin import ConfluentAclAdmin, acl_admin_config
from tests.support.cli_run import run_gdx

pytestmark = pytest.mark.kafka


def test_a_broker_without_an_authorizer_is_one_line(bootstrap_servers: str) -> None:
    admin = ConfluentAclAdmin(acl_admin_config(KafkaClients(bootstrap_servers), timeout_s=15), 15)
    with pytest.raises(GdxError, match="no authorizer"):
        admin.describe()


def test_acl_list_shows_the_table_and_says_why_there_is_no_drift(bootstrap_servers: str) -> None:
    listed = run_gdx("acl", "list", env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers}, timeout=60)
    assert listed.code == 0, listed.err
    assert "gdx-worker" in listed.out and "cluster: drift not shown" in listed.out and "no authorizer" in listed.out
    applied = run_gdx("acl", "apply", env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers}, timeout=60)
    assert applied.code == 1 and applied.err.count("\n") == 1 and "no authorizer" in applied.err
