"""Pending links, kept as they change rather than searched for.

A link is pending while the index holds no live record of the party it names (a vehicle naming a
citizen whose civil-registry record has not arrived yet). Operators watch their count and the age
of the oldest; answering that by an anti-join over every link costs time proportional to the whole
index (seconds, at a million persons), so the index keeps the pending set in `pending_links`, and a
batch re-examines only the links it can have changed: the links of the records it rewrote, and the
links naming the parties it rewrote.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from linkage.driver_sql import Members, chunks, grouped
from linkage.link_rules import PARTY_DATASETS

_PARTY_DATASET = (
    "CASE l.party_kind "
    + " ".join(f"WHEN '{kind}' THEN '{dataset}'" for kind, dataset in sorted(PARTY_DATASETS.items()))
    + " END"
)
_KIND_OF = {dataset: kind for kind, dataset in PARTY_DATASETS.items()}
_UNRESOLVED = (
    "INSERT INTO pending_links (link_id, dataset, entity_key, party_kind, party_id, linked_ms) "
    "SELECT l.id, l.dataset, l.entity_key, l.party_kind, l.party_id, l.linked_ms FROM links l "
    "WHERE {where} AND NOT EXISTS (SELECT 1 FROM records r WHERE r.dataset = "
    + _PARTY_DATASET
    + " AND r.entity_key = l.party_id AND NOT r.deleted) ON CONFLICT (link_id) DO NOTHING"
)


def refresh(conn: Connection, members: Members, records: Iterable[tuple[str, str]]) -> None:
    """Re-examine the links a batch can have changed, after it wrote its records and links.

    `records`: the (dataset, entity_key) of every record the batch rewrote. Their own links were
    replaced; and where a record is a party's (a person, a juristic person, a house), the links
    naming that party may have become resolved (it arrived) or pending again (it was deleted)."""
    rewritten = grouped(records)
    parties = {_KIND_OF[dataset]: keys for dataset, keys in rewritten.items() if dataset in _KIND_OF}
    for columns, groups in ((("dataset", "entity_key"), rewritten), (("party_kind", "party_id"), parties)):
        first, second = columns
        for value, keys in groups.items():
            for chunk in chunks(keys):
                params = (value, *members.values(chunk))
                where = f"{first} = {members.mark} AND {members(second, len(chunk))}"
                conn.exec_driver_sql(f"DELETE FROM pending_links WHERE {where}", params)
                conn.exec_driver_sql(
                    _UNRESOLVED.format(where=f"l.{first} = {members.mark} AND {members('l.' + second, len(chunk))}"),
                    params,
                )


def recompute(conn: Connection) -> None:
    """The whole pending set from scratch: once, at the end of a replay that did not track it."""
    conn.exec_driver_sql("DELETE FROM pending_links")
    conn.exec_driver_sql(_UNRESOLVED.format(where="1 = 1"))


def counts(conn: Connection) -> dict[str, tuple[int, int]]:
    """Per dataset of the naming record: pending links, and when the oldest was made (epoch ms)."""
    rows = conn.exec_driver_sql("SELECT dataset, count(*), min(linked_ms) FROM pending_links GROUP BY dataset")
    return {dataset: (int(count), int(oldest)) for dataset, count, oldest in rows}
