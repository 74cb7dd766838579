"""`gdx acl` against a broker without an authorizer (the local broker started with
GDX_KAFKA_SECURITY=plaintext, as an unsecured external cluster would be): one clear line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients
from streams.acl_admin import ConfluentAclAdmin, acl_admin_config
from tests.support.cli_run import run_gdx
from tests.support.kafka_env import secured_cluster

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def plain_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with secured_cluster(tmp_path_factory.mktemp("kafka-plain"), 1, security="plaintext") as settings:
        yield settings.bootstrap_servers


def test_a_broker_without_an_authorizer_is_one_line(plain_bootstrap: str) -> None:
    admin = ConfluentAclAdmin(acl_admin_config(KafkaClients(plain_bootstrap), timeout_s=15), 15)
    with pytest.raises(GdxError, match="no authorizer"):
        admin.describe()


def test_acl_list_shows_the_table_and_says_why_there_is_no_drift(plain_bootstrap: str) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": plain_bootstrap, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    listed = run_gdx("acl", "list", env=env, timeout=60)
    assert listed.code == 0, listed.err
    assert "gdx-worker" in listed.out and "cluster: drift not shown" in listed.out and "no authorizer" in listed.out
    applied = run_gdx("acl", "apply", env=env, timeout=60)
    assert applied.code == 1 and "no authorizer" in applied.err.splitlines()[-1], applied.err
    assert [line for line in applied.err.splitlines() if "PLAINTEXT" in line], "the plaintext cluster is warned about"
    assert len(applied.err.splitlines()) == 2, applied.err
