"""Which parties a record names, and how: the linking rules of the index, per dataset.

The envelope's `references` already lists every citizen and juristic ID an event mentions; these
rules add the relation (director, shareholder, owner, possessor, ...) and shares by reading the
payload where the relation lives. Any referenced ID no rule names is still linked as `mentions`,
so nothing the agency referenced is ever dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

Payload = dict[str, Any]

CITIZEN = "citizen"
JURISTIC = "juristic"
HOUSE = "house"

# The dataset holding the record of each kind of party: a link to a party without one is pending.
PARTY_DATASETS = {CITIZEN: "dopa.person", JURISTIC: "dbd.juristic-person", HOUSE: "dopa.house"}


class Link(NamedTuple):
    """A tuple, as a batch builds and hashes a few of them for every event it applies."""

    relation: str
    party_kind: str
    party_id: str
    share: str | None = None


def _party(relation: str, party: Payload | None, share: str | None = None) -> Iterator[Link]:
    if party:
        kind = CITIZEN if party["kind"] == "CITIZEN" else JURISTIC
        yield Link(relation, kind, party["id"], share)


def _citizen(relation: str, citizen_id: str | None) -> Iterator[Link]:
    if citizen_id:
        yield Link(relation, CITIZEN, citizen_id)


def _house(relation: str, house_id: str | None) -> Iterator[Link]:
    if house_id:
        yield Link(relation, HOUSE, house_id)


def _person(p: Payload) -> Iterator[Link]:
    yield from _house("lives-at", p.get("house_id"))


def _house_record(p: Payload) -> Iterator[Link]:
    yield from _citizen("householder", p.get("householder_citizen_id"))


def _residence(p: Payload) -> Iterator[Link]:
    yield from _citizen("resident", p["citizen_id"])
    yield from _house("lives-at", p["house_id"])


def _civil_registration(p: Payload) -> Iterator[Link]:
    yield from _citizen("registrant", p["citizen_id"])
    yield from _house("registered-at", p.get("house_id"))


def _birth(p: Payload) -> Iterator[Link]:
    yield from _citizen("child", p["child_citizen_id"])
    yield from _citizen("mother", p.get("mother_citizen_id"))
    yield from _citizen("father", p.get("father_citizen_id"))


def _death(p: Payload) -> Iterator[Link]:
    yield from _citizen("deceased", p["citizen_id"])
    yield from _citizen("informant", p.get("informant_citizen_id"))


def _marriage(p: Payload) -> Iterator[Link]:
    yield from _citizen("spouse", p["spouse_a_citizen_id"])
    yield from _citizen("spouse", p["spouse_b_citizen_id"])


def _name_change(p: Payload) -> Iterator[Link]:
    yield from _citizen("renamed", p["citizen_id"])


def _juristic_person(p: Payload) -> Iterator[Link]:
    for director in p["directors"]:
        yield from _citizen("director-of", director["citizen_id"])
    for partner in p["partners"]:
        yield Link("partner-of", CITIZEN, partner["citizen_id"], str(partner["contribution"]))
    for holder in p["shareholders"]:
        yield from _party("shareholder-of", holder["holder"], str(holder["shares"]))


def _commercial_registration(p: Payload) -> Iterator[Link]:
    yield from _party("trader", p["owner"])


def _title_deed(p: Payload) -> Iterator[Link]:
    for owner in p["owners"]:
        yield from _party("owns-share-of", owner["owner"], f"{owner['share_numerator']}/{owner['share_denominator']}")
    for mortgage in p["mortgages"]:
        yield from _party("mortgagee-of", mortgage["mortgagee"])


def _vehicle(p: Payload) -> Iterator[Link]:
    yield from _party("owns", p["owner"])
    yield from _party("possesses", p.get("possessor"))


def _driving_licence(p: Payload) -> Iterator[Link]:
    yield from _citizen("holds", p["citizen_id"])


RULES: dict[str, Callable[[Payload], Iterator[Link]]] = {
    "dopa.person": _person,
    "dopa.house": _house_record,
    "dopa.residence": _residence,
    "dopa.civil-registration": _civil_registration,
    "dopa.birth": _birth,
    "dopa.death": _death,
    "dopa.marriage": _marriage,
    "dopa.name-change": _name_change,
    "dbd.juristic-person": _juristic_person,
    "dbd.commercial-registration": _commercial_registration,
    "dol.title-deed": _title_deed,
    "dlt.vehicle": _vehicle,
    "dlt.driving-licence": _driving_licence,
}


def links_of(
    dataset: str, entity_key: str, payload: Payload | None, citizen_ids: list[str], juristic_ids: list[str]
) -> list[Link]:
    """Every link a record version states; a deleted record (no payload) states none."""
    if payload is None:
        return []
    found = list(dict.fromkeys(RULES[dataset](payload)))
    named = {(link.party_kind, link.party_id) for link in found}
    own = (
        {(CITIZEN, entity_key)}
        if dataset == "dopa.person"
        else {(JURISTIC, entity_key)}
        if dataset == "dbd.juristic-person"
        else set()
    )
    for kind, ids in ((CITIZEN, citizen_ids), (JURISTIC, juristic_ids)):
        found.extend(Link("mentions", kind, i) for i in ids if (kind, i) not in named and (kind, i) not in own)
    return found
