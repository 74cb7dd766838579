"""Read views of the index: a person or a business with everything linked to them.

Every record comes with its provenance (agency, dataset, version, source and applied time), and
every party named on a record carries its current status from its own registry — so a death in
the civil registry or a dissolution in the business registry shows on the vehicle, the title deed
or the company that names them, whichever view is read.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, and_, bindparam, select

from linkage.link_rules import CITIZEN, JURISTIC, PARTY_DATASETS
from linkage.tables import links, records

UNKNOWN = "UNKNOWN"

# The statements are built once: the lookup API reads on every request, and building a SQLAlchemy
# expression costs more than executing it against an index held in memory.
_LIVE_RECORD = select(records).where(records.c.dataset == bindparam("dataset"),
                                     records.c.entity_key == bindparam("key"), records.c.deleted.is_(False))
_DEATH = select(links.c.id).where(links.c.dataset == "dopa.death", links.c.relation == "deceased",
                                  links.c.party_kind == CITIZEN, links.c.party_id == bindparam("party_id"))
_PARTIES = (select(links.c.relation, links.c.party_kind, links.c.party_id, links.c.share)
            .where(links.c.dataset == bindparam("dataset"), links.c.entity_key == bindparam("key")).order_by(links.c.id))
_LINKED = (select(records, links.c.relation, links.c.share)
           .join(links, and_(links.c.dataset == records.c.dataset, links.c.entity_key == records.c.entity_key))
           .where(links.c.party_kind == bindparam("kind"), links.c.party_id == bindparam("party_id"),
                  records.c.deleted.is_(False))
           .order_by(records.c.dataset, records.c.entity_key))


def _record(row: RowMapping) -> dict[str, Any]:
    return {
        "dataset": row["dataset"],
        "entity_key": row["entity_key"],
        "payload": json.loads(row["payload"]) if row["payload"] else None,
        "provenance": {
            "agency": row["agency"], "dataset_code": row["dataset_code"], "entity_version": row["entity_version"],
            "change_type": row["change_type"], "event_id": row["event_id"], "source_ms": row["source_ms"],
            "applied_ms": row["applied_ms"],
        },
    }


def _live_record(conn: Connection, dataset: str, key: str) -> RowMapping | None:
    return conn.execute(_LIVE_RECORD, {"dataset": dataset, "key": key}).mappings().first()


def party_status(conn: Connection, kind: str, party_id: str) -> str:
    """The party's status in its own registry; a citizen with a death record is DECEASED."""
    row = _live_record(conn, PARTY_DATASETS[kind], party_id)
    if row is None:
        return UNKNOWN
    if kind == CITIZEN:
        died = conn.execute(_DEATH, {"party_id": party_id}).first()
        if died is not None:
            return "DECEASED"
    payload = json.loads(row["payload"])
    return str(payload.get("status", "ACTIVE"))


def _with_parties(conn: Connection, row: RowMapping) -> dict[str, Any]:
    view = _record(row)
    view["parties"] = [
        {"relation": relation, "kind": kind, "id": party_id, "share": share,
         "status": party_status(conn, kind, party_id) if kind in (CITIZEN, JURISTIC) else None}
        for relation, kind, party_id, share in conn.execute(
            _PARTIES, {"dataset": row["dataset"], "key": row["entity_key"]})
    ]
    return view


def record_view(engine: Engine, dataset: str, key: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = _live_record(conn, dataset, key)
        return None if row is None else _with_parties(conn, row)


def party_view(engine: Engine, kind: str, party_id: str) -> dict[str, Any] | None:
    """A citizen or juristic person: their own record, status, and every live record naming them."""
    with engine.connect() as conn:
        own = _live_record(conn, PARTY_DATASETS[kind], party_id)
        linked_rows = conn.execute(_LINKED, {"kind": kind, "party_id": party_id}).mappings().all()
        if own is None and not linked_rows:
            return None
        return {
            "kind": kind,
            "id": party_id,
            "status": party_status(conn, kind, party_id),
            "record": _record(own) if own is not None else None,
            "linked": [{"relation": row["relation"], "share": row["share"], **_with_parties(conn, row)}
                       for row in linked_rows],
        }
