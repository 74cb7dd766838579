"""A deterministic digest of the index's content, to show that a rebuild equals the live index.

It covers what a consumer can see — every live record with its provenance and every link — and
the state a rebuild keeps because no topic holds it (`KEPT_TABLES`: consents as used, the access
log, unsent notifications, who was told), so a rebuild that lost any of it differs. It leaves out
what depends on when the worker ran (applied times) or what a replay re-derives (version gaps).
Deleted records are left out too: compaction removes them from the topics, so a replay may never
meet them.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, select

from linkage.tables import KEPT_TABLES, links, records

RECORD_COLUMNS = (
    "dataset",
    "entity_key",
    "entity_version",
    "change_type",
    "agency",
    "dataset_code",
    "event_id",
    "trace_id",
    "source_ms",
    "published_ms",
    "payload",
)
LINK_COLUMNS = ("dataset", "entity_key", "relation", "party_kind", "party_id", "share")


def index_digest(engine: Engine) -> tuple[str, int, int]:
    """(sha-256 hex, live records, links) of the index behind `engine`."""
    digest = hashlib.sha256()
    record_count = link_count = 0
    with engine.connect() as conn:
        live = select(*(records.c[name] for name in RECORD_COLUMNS)).where(records.c.deleted.is_(False))
        for row in conn.execute(live.order_by(records.c.dataset, records.c.entity_key)):
            digest.update(("R\x1f" + "\x1f".join(str(v) for v in row) + "\x1e").encode())
            record_count += 1
        columns = [links.c[name] for name in LINK_COLUMNS]
        for row in conn.execute(select(*columns).order_by(*columns)):
            digest.update(("L\x1f" + "\x1f".join(str(v) for v in row) + "\x1e").encode())
            link_count += 1
        for table in KEPT_TABLES:
            for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                digest.update((f"{table.name}\x1f" + "\x1f".join(str(v) for v in row) + "\x1e").encode())
    return digest.hexdigest(), record_count, link_count
