"""The writers of `gdx.audit`: each lookup process and each stream worker writes a hash chain of its
own, in a partition of its own, signed with its own kind of key, and starts only from a head that
verifies. Said in one line before anything starts: a tampered head is for an auditor to examine,
and a writer that chained from it would seal it as its own."""

from __future__ import annotations

import asyncio

from foundation.errors import GdxError
from foundation.kafka_clients import KafkaClients
from linkage.audit import AUDIT_KEY_OWNER, AUDIT_TOPIC, AuditKeys, chain_head, partitions
from streams.security.signing_keys import SigningKeys
from streams.settings import Settings


def audit_keys(settings: Settings, owner: str = AUDIT_KEY_OWNER) -> AuditKeys:
    """`owner`'s current audit key (made on first use) and the trust list chains are checked against."""
    keys = SigningKeys(settings.audit_keys_path)
    return AuditKeys(keys.signer(owner), keys.trust_list())


def check_chains(settings: Settings, kafka: KafkaClients, chains: range, writers: str, fix: str) -> None:
    """The topic has partitions `chains`, and the record each of them would chain from verifies."""
    topic = settings.topic(AUDIT_TOPIC)
    trust = SigningKeys(settings.audit_keys_path).trust_list()

    async def check() -> None:
        found = len(await partitions(kafka, topic))
        if found < chains.stop:
            raise GdxError(f"{writers} need {chains.stop} partitions of {topic}; it has {found}", fix)
        for partition in chains:
            await chain_head(kafka, topic, partition, trust)

    asyncio.run(check())
