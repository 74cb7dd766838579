"""`gdx keys list|rotate` and `gdx events verify`: the agencies' signing keys, and the check any
consumer can make of an event it read.

Keys live under `<state_dir>/signing/`, their public halves on the trust list
(`trust-list.json`, or `GDX_TRUST_LIST_FILE` for a verifier given the list by the exchange).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt

from aiokafka import TopicPartition

from foundation.errors import GdxError
from schemas.event_signatures import BadSignature, Headers, TrustList, TrustListError
from streams.kafka_probe import topic_partitions
from streams.security.signing_keys import DEFAULT_OVERLAP_S, SigningKeys
from streams.settings import Settings, load_settings
from streams.topic_catalog import load_catalog


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="the agencies' event-signing keys: list, rotate")
    verbs = keys.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="every key on the trust list: id, agency, valid from, valid until")
    listing.set_defaults(handler=cmd_keys_list)
    rotate = verbs.add_parser("rotate", help="a new key for AGENCY; its older keys stay valid --overlap-hours more")
    rotate.add_argument("agency", metavar="AGENCY", choices=load_catalog().agencies)
    rotate.add_argument("--overlap-hours", type=float, default=DEFAULT_OVERLAP_S / 3600)
    rotate.set_defaults(handler=cmd_keys_rotate)

    events = sub.add_parser("events", help="check an event on a change topic")
    event_verbs = events.add_subparsers(dest="verb", required=True, metavar="VERB")
    verify = event_verbs.add_parser("verify", help="whose signature the event at TOPIC PARTITION OFFSET carries")
    verify.add_argument("topic", metavar="TOPIC", help="the topic as on the cluster, prefix included")
    verify.add_argument("partition", metavar="PARTITION", type=int)
    verify.add_argument("offset", metavar="OFFSET", type=int)
    verify.set_defaults(handler=cmd_events_verify)


def valid_when(ms: int | None) -> str:
    return "open" if ms is None else f"{dt.datetime.fromtimestamp(ms / 1000, dt.UTC):%Y-%m-%d %H:%M:%S}"


def overlap_s(hours: float) -> float:
    """--overlap-hours in seconds, refused when negative."""
    if hours < 0:
        raise GdxError(f"--overlap-hours {hours:g} is negative", "give 0 or more hours")
    return hours * 3600


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = SigningKeys.of(load_settings().state_dir.resolve())
    found = sorted(keys.trust_list().keys.values(), key=lambda k: (k.agency, k.not_before_ms))
    if not found:
        print(f"no signing keys in {keys.root}: each agency's first is made when it first publishes")
        return 0
    width = max(len(key.key_id) for key in found)
    print(f"{'key id':<{width}}  agency  {'valid from (UTC)':<19}  valid until (UTC)")
    for key in found:
        since, until = valid_when(key.not_before_ms), valid_when(key.not_after_ms)
        print(f"{key.key_id:<{width}}  {key.agency:<6}  {since:<19}  {until}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    keys = SigningKeys.of(load_settings().state_dir.resolve())
    new = keys.rotate(args.agency, overlap_s=overlap_s(args.overlap_hours))
    print(
        f"new key {new.key_id} for {args.agency}, valid from {valid_when(new.not_before_ms)}; its earlier keys stay "
        f"valid {args.overlap_hours:g} h more. Restart {args.agency}'s publisher to sign with it."
    )
    return 0


async def _record(settings: Settings, tp: TopicPartition, offset: int) -> tuple[bytes | None, Headers, int]:
    """The record at `offset` of `tp`, read as the operator; a partition or offset it does not hold
    is a GdxError naming what it holds."""
    if tp not in await topic_partitions(settings.kafka, [tp.topic]):
        raise GdxError(f"no partition {tp.partition} of topic {tp.topic}", "check `gdx topics list`")
    consumer = settings.kafka.consumer(enable_auto_commit=False, request_timeout_ms=10_000)
    await consumer.start()
    try:
        consumer.assign([tp])
        start, end = (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
        if start <= offset < end:
            consumer.seek(tp, offset)
            async with asyncio.timeout(settings.kafka_request_timeout_s):
                while True:
                    for message in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                        if message.offset >= offset:
                            return message.value, list(message.headers), message.timestamp
    finally:
        await consumer.stop()
    held = f"{start}..{end - 1}" if end > start else "none"
    raise GdxError(f"{tp.topic}[{tp.partition}] holds offsets {held}, not {offset}", "give one it holds")


def cmd_events_verify(args: argparse.Namespace) -> int:
    settings = load_settings()
    owners = {settings.topic(d.topic): d.agency for d in load_catalog().datasets}
    agency = owners.get(args.topic)
    if agency is None:
        raise GdxError(f"{args.topic} is no change topic of the catalog", "give one `gdx topics list` shows")
    try:
        trust = TrustList.load(settings.trust_list_path)
    except TrustListError as exc:
        raise GdxError(str(exc), "give the exchange's trust list with GDX_TRUST_LIST_FILE") from None
    value, headers, timestamp = asyncio.run(_record(settings, TopicPartition(args.topic, args.partition), args.offset))
    where = f"{args.topic}[{args.partition}]@{args.offset}"
    if value is None:
        print(f"{where}: a tombstone, nothing to verify")
        return 0
    try:
        key_id = trust.verify(agency, value, headers, timestamp)
    except BadSignature as exc:
        print(f"{where}: BAD SIGNATURE — {exc.detail}")
        return 1
    if key_id is None:
        print(f"{where}: UNSIGNED — nothing proves that {agency} published it")
        return 1
    print(f"{where}: signed by {agency} with key {key_id}, valid at its publish time {valid_when(timestamp)}")
    return 0
