"""`gdx topics apply|list`: the catalog made real on the cluster, and the live view of it."""

from __future__ import annotations

import argparse

from streams.schema_publish import publish_repository
from streams.settings import load_settings
from streams.topic_admin import apply_topics, list_topics
from streams.topic_catalog import load_catalog


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = sub.add_parser("topics", help="the topic catalog on the cluster")
    verbs = topics.add_subparsers(dest="verb", required=True, metavar="VERB")
    apply = verbs.add_parser(
        "apply", help="create or update every catalog topic, then register the schemas (idempotent)"
    )
    apply.set_defaults(handler=cmd_apply)
    listing = verbs.add_parser("list", help="catalog topics with their live partitions, replication and configs")
    listing.set_defaults(handler=cmd_list)


def cmd_apply(args: argparse.Namespace) -> int:
    settings = load_settings()
    changes = apply_topics(settings, load_catalog())
    for change in changes:
        print(change)
    counts = {action: sum(1 for c in changes if c.action == action) for action in ("create", "update", "drift")}
    print(
        f"{len(changes)} topics: {counts['create']} created, {counts['update']} updated, "
        f"{len(changes) - counts['create'] - counts['update']} unchanged ({counts['drift']} with drift)"
    )
    held, url = publish_repository(settings)
    print(f"registered the released schemas: {held} versions in the subjects of {url}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = list_topics(load_settings(), load_catalog())
    header = f"{'topic':<52} {'parts':>5} {'repl':>4} {'cleanup':<8} {'min.isr':>7} {'retention.ms':>13}  state"
    print(header)
    for _spec, name, live, change in rows:
        if live is None:
            print(f"{name:<52} {'-':>5} {'-':>4} {'-':<8} {'-':>7} {'-':>13}  missing (run `gdx topics apply`)")
            continue
        state = "ok" if change.action == "unchanged" else f"{change.action}: {'; '.join(change.details)}"
        print(
            f"{name:<52} {live.partitions:>5} {live.replication_factor:>4} "
            f"{live.configs.get('cleanup.policy', '?'):<8} {live.configs.get('min.insync.replicas', '?'):>7} "
            f"{live.configs.get('retention.ms', '?'):>13}  {state}"
        )
    return 0
