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


def refresh(
    conn: Connection, members: Members, records: Iterable[tuple[str, str]], deleted: Iterable[tuple[str, str]]
) -> None:
    """Re-examine the links a batch can have changed, after it wrote its records and links.

    `records`: the (dataset, entity_key) of every record the batch rewrote; `deleted`: those of
    them it deleted. Their own links were replaced; and where a record is a party's (a person, a
    juristic person, a house), the links naming that party are resolved now that it is there, or
    pending again if it was deleted: only a deleted party's are searched for among the links.

    Every row to forget goes before any is found: SQLite hands a deleted link's id to the next link
    inserted, so a pending row of a record's old link would otherwise block (ON CONFLICT) the row of
    another record's new link under the same id, and then be forgotten with its record."""
    rewritten, gone = grouped(records), grouped(deleted)
    record, party = ("dataset", "entity_key"), ("party_kind", "party_id")
    for dataset, keys in rewritten.items():
        _forget(conn, members, record, dataset, keys)
        if (kind := _KIND_OF.get(dataset)) is not None:
            _forget(conn, members, party, kind, keys)
    for dataset, keys in rewritten.items():
        _find(conn, members, record, dataset, keys)
        if (kind := _KIND_OF.get(dataset)) is not None:
            _find(conn, members, party, kind, gone.get(dataset, []))


def _forget(conn: Connection, members: Members, columns: tuple[str, str], value: str, keys: list[str]) -> None:
    first, second = columns
    for chunk in chunks(keys):
        where = f"{first} = {members.mark} AND {members(second, len(chunk))}"
        conn.exec_driver_sql(f"DELETE FROM pending_links WHERE {where}", (value, *members.values(chunk)))


def _find(conn: Connection, members: Members, columns: tuple[str, str], value: str, keys: list[str]) -> None:
    first, second = columns
    for chunk in chunks(keys):
        where = f"l.{first} = {members.mark} AND {members('l.' + second, len(chunk))}"
        conn.exec_driver_sql(_UNRESOLVED.format(where=where), (value, *members.values(chunk)))


def recompute(conn: Connection) -> None:
    """The whole pending set from scratch: once, at the end of a replay that did not track it."""
    conn.exec_driver_sql("DELETE FROM pending_links")
    conn.exec_driver_sql(_UNRESOLVED.format(where="1 = 1"))


def counts(conn: Connection) -> dict[str, tuple[int, int]]:
    """Per dataset of the naming record: pending links, and when the oldest was made (epoch ms)."""
    rows = conn.exec_driver_sql("SELECT dataset, count(*), min(linked_ms) FROM pending_links GROUP BY dataset")
    return {dataset: (int(count), int(oldest)) for dataset, count, oldest in rows}
