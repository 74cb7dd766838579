"""Read views of the index: a person or a business with everything linked to them.

Every record comes with its provenance (agency, dataset, version, source and applied time), and
every party named on a record carries its current status from its own registry — so a death in
the civil registry or a dissolution in the business registry shows on the vehicle, the title deed
or the company that names them, whichever view is read.

The lookup API reads a view on every request, so a view is a fixed handful of statements whatever
the number of linked records (the statuses of all parties named anywhere in it are read together),
run as plain SQL at the driver (see linkage/driver_sql.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Engine

from linkage.driver_sql import placeholder, placeholders
from linkage.link_rules import CITIZEN, JURISTIC, PARTY_DATASETS

UNKNOWN = "UNKNOWN"
DECEASED = "DECEASED"
CHUNK = 500
_COLUMNS = (
    "dataset",
    "entity_key",
    "agency",
    "dataset_code",
    "entity_version",
    "change_type",
    "payload",
    "event_id",
    "source_ms",
    "applied_ms",
    "signed_by",
)
_R = ", ".join(f"r.{c}" for c in _COLUMNS)
_PARTY = "o.dataset, o.entity_key, o.relation, o.party_kind, o.party_id, o.share"

Party = tuple[str, str]  # (kind, id)


class _Statements:
    def __init__(self, mark: str) -> None:
        self.mark = mark
        self.record = f"SELECT {_R} FROM records r WHERE r.dataset = {mark} AND r.entity_key = {mark} AND NOT r.deleted"
        self.linked = (
            f"SELECT {_R}, l.relation, l.share FROM links l JOIN records r "
            f"ON r.dataset = l.dataset AND r.entity_key = l.entity_key "
            f"WHERE l.party_kind = {mark} AND l.party_id = {mark} AND NOT r.deleted "
            f"ORDER BY r.dataset, r.entity_key"
        )
        self.parties_of_linked = (
            f"SELECT DISTINCT o.id, {_PARTY} FROM links l JOIN links o "
            f"ON o.dataset = l.dataset AND o.entity_key = l.entity_key "
            f"WHERE l.party_kind = {mark} AND l.party_id = {mark} ORDER BY o.id"
        )
        self.parties_of_record = (
            f"SELECT o.id, {_PARTY} FROM links o WHERE o.dataset = {mark} AND o.entity_key = {mark} ORDER BY o.id"
        )

    def registry_rows(self, count: int) -> str:
        return (
            f"SELECT entity_key, payload FROM records WHERE dataset = {self.mark} "
            f"AND entity_key IN ({placeholders(self.mark, count)}) AND NOT deleted"
        )

    def deaths(self, count: int) -> str:
        return (
            f"SELECT party_id FROM links WHERE dataset = 'dopa.death' AND relation = 'deceased' "
            f"AND party_kind = '{CITIZEN}' AND party_id IN ({placeholders(self.mark, count)})"
        )


@cache
def _statements(mark: str) -> _Statements:
    return _Statements(mark)


def _record(row: Sequence[Any]) -> dict[str, Any]:
    dataset, entity_key, agency, dataset_code, version, change_type, payload, event_id = row[:8]
    source_ms, applied_ms, signed_by = row[8:11]
    return {
        "dataset": dataset,
        "entity_key": entity_key,
        "payload": json.loads(payload) if payload else None,
        "provenance": {
            "agency": agency,
            "dataset_code": dataset_code,
            "entity_version": version,
            "change_type": change_type,
            "event_id": event_id,
            "source_ms": source_ms,
            "applied_ms": applied_ms,
            "signed_by": signed_by,
        },
    }


class _Reader:
    """One pooled driver connection and the statements in its parameter style."""

    def __init__(self, engine: Engine) -> None:
        self.sql = _statements(placeholder(engine))
        self.connection = engine.raw_connection()
        self.cursor = self.connection.cursor()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.cursor.close()
        self.connection.close()  # back to the pool, which rolls the read transaction back

    def rows(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        self.cursor.execute(sql, tuple(params))
        return list(self.cursor.fetchall())

    def statuses(self, parties: Iterable[Party]) -> dict[Party, str]:
        """Each party's status in its own registry; a citizen with a death record is DECEASED."""
        found: dict[Party, str] = {}
        wanted = set(parties)
        for kind in (CITIZEN, JURISTIC):
            ids = sorted(party_id for k, party_id in wanted if k == kind)
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                for key, payload in self.rows(self.sql.registry_rows(len(chunk)), (PARTY_DATASETS[kind], *chunk)):
                    found[(kind, key)] = str(json.loads(payload).get("status", "ACTIVE"))
                if kind == CITIZEN:
                    for (party_id,) in self.rows(self.sql.deaths(len(chunk)), chunk):
                        if (CITIZEN, party_id) in found:
                            found[(CITIZEN, party_id)] = DECEASED
        return {party: found.get(party, UNKNOWN) for party in wanted}


def _parties_on(rows: list[Sequence[Any]]) -> list[Party]:
    return [(kind, party_id) for *_, kind, party_id, _share in rows if kind in (CITIZEN, JURISTIC)]


def _named(rows: list[Sequence[Any]], statuses: dict[Party, str]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The parties named on each record, with their statuses: {(dataset, entity_key): [party, ...]}."""
    named: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _id, dataset, entity_key, relation, kind, party_id, share in rows:
        named.setdefault((dataset, entity_key), []).append(
            {
                "relation": relation,
                "kind": kind,
                "id": party_id,
                "share": share,
                "status": statuses[(kind, party_id)] if kind in (CITIZEN, JURISTIC) else None,
            }
        )
    return named


def party_status(engine: Engine, kind: str, party_id: str) -> str:
    with _Reader(engine) as reader:
        return reader.statuses([(kind, party_id)])[(kind, party_id)]


def record_view(engine: Engine, dataset: str, key: str) -> dict[str, Any] | None:
    with _Reader(engine) as reader:
        found = reader.rows(reader.sql.record, (dataset, key))
        if not found:
            return None
        view = _record(found[0])
        rows = reader.rows(reader.sql.parties_of_record, (dataset, key))
        view["parties"] = _named(rows, reader.statuses(_parties_on(rows))).get((dataset, key), [])
        return view


def party_view(engine: Engine, kind: str, party_id: str) -> dict[str, Any] | None:
    """A citizen or juristic person: their own record, status, and every live record naming them."""
    with _Reader(engine) as reader:
        own = reader.rows(reader.sql.record, (PARTY_DATASETS[kind], party_id))
        linked = reader.rows(reader.sql.linked, (kind, party_id))
        if not own and not linked:
            return None
        rows = reader.rows(reader.sql.parties_of_linked, (kind, party_id)) if linked else []
        statuses = reader.statuses([(kind, party_id), *_parties_on(rows)])
        named = _named(rows, statuses)
        return {
            "kind": kind,
            "id": party_id,
            "status": statuses[(kind, party_id)],
            "record": _record(own[0]) if own else None,
            "linked": [
                {"relation": row[11], "share": row[12], **_record(row), "parties": named.get((row[0], row[1]), [])}
                for row in linked
            ],
        }
