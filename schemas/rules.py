"""The domain rules of the change events, as plain functions on the decoded Avro record.

The pydantic models (`schemas.models`) describe the contract and build events; checking a decoded
event against them cost as much as decoding it, mostly to build and discard model objects and to
re-check what Avro decoding already guarantees: every field present with its type, enum symbols,
UUIDs, time zones, decimal scales, no extra fields. What is left is checked here: check digits,
Gregorian and Buddhist-Era year guards, digit patterns, lengths, ranges, and the rules that tie
fields together. Each problem reads as the model's would (`field.path: reason`, the same words),
and a record's cross-field rules are judged only when its fields passed, as pydantic's are;
tests/test_schemas_rules.py holds both to that on every dataset's events and their mutations.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from schemas.identifiers import EARLIEST_YEAR, gregorian_year_problem, thai_id_problem
from schemas.models.common import ENTITY_KEY_MAX_LENGTH, EXPIRY_HORIZON_YEARS, JURISTIC_ID_PREFIX

Record = dict[str, Any]

_DIGITS = {n: re.compile(rf"^\d{{{n}}}$") for n in (2, 5, 11)}
_KEY_TEXT = re.compile(r"^[^\x00-\x1f\x7f]+$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_NATIONALITY = re.compile(r"^[A-Z]{3}$")
_PLATE_PREFIX = re.compile(r"^[0-9]?[\u0E01-\u0E2E]{1,2}$")
_CHASSIS = re.compile(r"^[0-9A-Z-]{5,30}$")
_LICENCE_NUMBER = re.compile(r"^[0-9]{8}$")
_DEED_NUMBER = re.compile(r"^[0-9A-Za-z/]+$")
_DEED_NUMBER_MAX = ENTITY_KEY_MAX_LENGTH - len("00-")


class _ThisYear:
    """The current year, read again once a minute: date.today() costs more than a rule."""

    def __init__(self) -> None:
        self.year, self.until = 0, 0.0

    def __call__(self) -> int:
        now = time.monotonic()
        if now >= self.until:
            self.year, self.until = date.today().year, now + 60
        return self.year


_this_year = _ThisYear()


class Problems:
    """The problems found so far, each as `field.path: reason`."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.this_year = _this_year()

    def add(self, where: str, message: str) -> None:
        self.found.append(f"{where or '(event)'}: {message}")

    def mark(self) -> int:
        return len(self.found)

    def clean_since(self, mark: int) -> bool:
        return len(self.found) == mark


def _path(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _thai_id(value: str, where: str, out: Problems) -> None:
    problem = thai_id_problem(value)
    if problem:
        out.add(where, problem)


def _juristic_id(value: str, where: str, out: Problems) -> None:
    problem = thai_id_problem(value)
    if problem is None and not value.startswith(JURISTIC_ID_PREFIX):
        problem = f"{value} is not a juristic-person ID: those start with {JURISTIC_ID_PREFIX}"
    if problem:
        out.add(where, problem)


def _year(value: date | datetime, where: str, out: Problems, horizon_years: int = 1) -> None:
    if EARLIEST_YEAR <= value.year <= out.this_year + horizon_years:
        return
    problem = gregorian_year_problem(value.year, horizon_years)
    if problem:
        out.add(where, problem)


def _text(
    value: str,
    where: str,
    out: Problems,
    max_length: int | None = None,
    pattern: re.Pattern[str] | None = None,
    min_length: int = 1,
) -> None:
    """pydantic's string constraints, in its order: length, then pattern; the first broken is told."""
    if not value and min_length:
        out.add(where, "String should have at least 1 character")
    elif max_length is not None and len(value) > max_length:
        out.add(where, f"String should have at most {max_length} characters")
    elif pattern is not None and not pattern.search(value):
        out.add(where, f"String should match pattern '{pattern.pattern}'")


def _match(value: str, pattern: re.Pattern[str], where: str, out: Problems) -> None:
    if not pattern.search(value):
        out.add(where, f"String should match pattern '{pattern.pattern}'")


def _key_text(value: str, where: str, out: Problems) -> None:
    _text(value, where, out, ENTITY_KEY_MAX_LENGTH, _KEY_TEXT)


def _bounds(
    value: int | Decimal,
    where: str,
    out: Problems,
    ge: int | None = None,
    gt: int | None = None,
    le: int | None = None,
    lt: int | None = None,
) -> bool:
    if gt is not None and not value > gt:
        out.add(where, f"Input should be greater than {gt}")
    elif ge is not None and not value >= ge:
        out.add(where, f"Input should be greater than or equal to {ge}")
    elif lt is not None and not value < lt:
        out.add(where, f"Input should be less than {lt}")
    elif le is not None and not value <= le:
        out.add(where, f"Input should be less than or equal to {le}")
    else:
        return True
    return False


def _decimal(value: Decimal, where: str, out: Problems, max_digits: int, places: int, **bounds: int) -> None:
    """Digits counted as pydantic counts them, on the normalised value; the scale is the schema's,
    but the unscaled integer on the wire may be longer than its precision."""
    _, digits, exponent = value.normalize().as_tuple()
    if not isinstance(exponent, int):  # NaN or infinity: not from Avro's decimal, but not a number either
        out.add(where, "Input should be a finite number")
        return
    decimals = max(0, -exponent)
    total = len(digits) + exponent if exponent >= 0 else max(len(digits), decimals)
    if total > max_digits:
        out.add(where, f"Decimal input should have no more than {max_digits} digits in total")
    elif decimals > places:
        out.add(where, f"Decimal input should have no more than {places} decimal places")
    else:
        _bounds(value, where, out, **bounds)


def _baht(value: Decimal, where: str, out: Problems) -> None:
    _decimal(value, where, out, 18, 2, ge=0)


Rules = Iterable[tuple[bool, str]]


def _first_broken(rules: Rules, where: str, out: Problems) -> None:
    """A record's rules across its fields, told up to the first one broken, as a model validator
    stops at its first failed requirement. `rules` is lazy: later rules may assume earlier ones."""
    for holds, message in rules:
        if not holds:
            out.add(where, message)
            return


def _optional(value: Any, check: Callable[[Any, str, Problems], None], where: str, out: Problems) -> None:
    if value is not None:
        check(value, where, out)


def _each(values: Iterable[Any], check: Callable[[Any, str, Problems], None], where: str, out: Problems) -> None:
    for index, value in enumerate(values):
        check(value, f"{where}.{index}", out)


def _fact_date(value: date, where: str, out: Problems) -> None:
    _year(value, where, out)


def _expiry_date(value: date, where: str, out: Problems) -> None:
    _year(value, where, out, EXPIRY_HORIZON_YEARS)


def _person_name(name: Record, where: str, out: Problems) -> None:
    for field in ("prefix", "first_name", "last_name"):
        _text(name[field], _path(where, field), out)


def _address(address: Record, where: str, out: Problems) -> None:
    _text(address["house_number"], _path(where, "house_number"), out)
    village = address["village_number"]
    if village is not None:
        _bounds(village, _path(where, "village_number"), out, ge=1, le=99)
    _text(address["subdistrict"], _path(where, "subdistrict"), out)
    _text(address["district"], _path(where, "district"), out)
    _match(address["province_code"], _DIGITS[2], _path(where, "province_code"), out)
    _match(address["postcode"], _DIGITS[5], _path(where, "postcode"), out)


def _party(party: Record, where: str, out: Problems) -> None:
    mark = out.mark()
    _thai_id(party["id"], _path(where, "id"), out)
    _text(party["name"], _path(where, "name"), out)
    if out.clean_since(mark) and party["kind"] == "JURISTIC_PERSON":
        _juristic_id(party["id"], where, out)


def _party_ids(parties: Iterable[Record | None], kind: str) -> set[str]:
    return {p["id"] for p in parties if p is not None and p["kind"] == kind}


# Each dataset's payload: its fields' rules, then (when they passed) the rules across them.


def _person(p: Record, at: str, out: Problems) -> None:
    _thai_id(p["citizen_id"], _path(at, "citizen_id"), out)
    _person_name(p["name"], _path(at, "name"), out)
    _optional(p["name_en"], _person_name, _path(at, "name_en"), out)
    _fact_date(p["date_of_birth"], _path(at, "date_of_birth"), out)
    _match(p["nationality"], _NATIONALITY, _path(at, "nationality"), out)
    _optional(p["house_id"], lambda v, w, o: _match(v, _DIGITS[11], w, o), _path(at, "house_id"), out)
    card = p["card"]
    if card is not None:
        where, mark = _path(at, "card"), out.mark()
        _text(card["card_request_number"], _path(where, "card_request_number"), out)
        _fact_date(card["issued_on"], _path(where, "issued_on"), out)
        _optional(card["expires_on"], _expiry_date, _path(where, "expires_on"), out)
        if out.clean_since(mark):
            expires = card["expires_on"]
            _first_broken(
                [(expires is None or expires > card["issued_on"], "card expires_on is not after issued_on")], where, out
            )


def _house(p: Record, at: str, out: Problems) -> None:
    _match(p["house_id"], _DIGITS[11], _path(at, "house_id"), out)
    _address(p["address"], _path(at, "address"), out)
    _optional(p["householder_citizen_id"], _thai_id, _path(at, "householder_citizen_id"), out)
    _fact_date(p["registered_on"], _path(at, "registered_on"), out)


def _residence(p: Record, at: str, out: Problems) -> None:
    _thai_id(p["citizen_id"], _path(at, "citizen_id"), out)
    _match(p["house_id"], _DIGITS[11], _path(at, "house_id"), out)
    _fact_date(p["moved_in_on"], _path(at, "moved_in_on"), out)


def _civil_registration(p: Record, at: str, out: Problems) -> None:
    mark = out.mark()
    _key_text(p["registration_number"], _path(at, "registration_number"), out)
    _thai_id(p["citizen_id"], _path(at, "citizen_id"), out)
    _optional(p["house_id"], lambda v, w, o: _match(v, _DIGITS[11], w, o), _path(at, "house_id"), out)
    _fact_date(p["registered_on"], _path(at, "registered_on"), out)
    _text(p["registrar_office"], _path(at, "registrar_office"), out)
    if out.clean_since(mark):
        act = p["act"]
        moves = act not in ("MOVE_IN", "MOVE_OUT") or p["house_id"] is not None
        _first_broken([(moves, f"a {act} names the house")], at, out)


def _birth(p: Record, at: str, out: Problems) -> None:
    mark = out.mark()
    _key_text(p["certificate_number"], _path(at, "certificate_number"), out)
    _thai_id(p["child_citizen_id"], _path(at, "child_citizen_id"), out)
    _person_name(p["child_name"], _path(at, "child_name"), out)
    _fact_date(p["date_of_birth"], _path(at, "date_of_birth"), out)
    _match(p["birth_province_code"], _DIGITS[2], _path(at, "birth_province_code"), out)
    _optional(p["mother_citizen_id"], _thai_id, _path(at, "mother_citizen_id"), out)
    _optional(p["father_citizen_id"], _thai_id, _path(at, "father_citizen_id"), out)
    _fact_date(p["registered_on"], _path(at, "registered_on"), out)
    if out.clean_since(mark):
        _first_broken(_birth_rules(p), at, out)


def _birth_rules(p: Record) -> Rules:
    yield p["registered_on"] >= p["date_of_birth"], "registered_on is before date_of_birth"
    parents = {p["mother_citizen_id"], p["father_citizen_id"]} - {None}
    yield p["child_citizen_id"] not in parents, "the child is listed as its own parent"


def _death(p: Record, at: str, out: Problems) -> None:
    mark = out.mark()
    _key_text(p["certificate_number"], _path(at, "certificate_number"), out)
    _thai_id(p["citizen_id"], _path(at, "citizen_id"), out)
    _fact_date(p["date_of_death"], _path(at, "date_of_death"), out)
    _match(p["death_province_code"], _DIGITS[2], _path(at, "death_province_code"), out)
    _optional(p["informant_citizen_id"], _thai_id, _path(at, "informant_citizen_id"), out)
    _fact_date(p["registered_on"], _path(at, "registered_on"), out)
    if out.clean_since(mark):
        _first_broken([(p["registered_on"] >= p["date_of_death"], "registered_on is before date_of_death")], at, out)


def _marriage(p: Record, at: str, out: Problems) -> None:
    mark = out.mark()
    _key_text(p["registration_number"], _path(at, "registration_number"), out)
    _thai_id(p["spouse_a_citizen_id"], _path(at, "spouse_a_citizen_id"), out)
    _thai_id(p["spouse_b_citizen_id"], _path(at, "spouse_b_citizen_id"), out)
    _fact_date(p["registered_on"], _path(at, "registered_on"), out)
    _text(p["registrar_office"], _path(at, "registrar_office"), out)
    if out.clean_since(mark):
        different = p["spouse_a_citizen_id"] != p["spouse_b_citizen_id"]
        _first_broken([(different, "both spouses have the same citizen ID")], at, out)


_NAME_CHANGE = {(True, False): "FIRST_NAME", (False, True): "SURNAME", (True, True): "BOTH"}


def _name_change(p: Record, at: str, out: Problems) -> None:
    mark = out.mark()
    _key_text(p["certificate_number"], _path(at, "certificate_number"), out)
    _thai_id(p["citizen_id"], _path(at, "citizen_id"), out)
    _person_name(p["previous_name"], _path(at, "previous_name"), out)
    _person_name(p["new_name"], _path(at, "new_name"), out)
    _fact_date(p["effective_on"], _path(at, "effective_on"), out)
    if out.clean_since(mark):
        before, after = p["previous_name"], p["new_name"]
        actual = _NAME_CHANGE.get(
            (before["first_name"] != after["first_name"], before["last_name"] != after["last_name"])
        )
        _first_broken([(actual == p["kind"], f"kind {p['kind']} but the names show {actual or 'no change'}")], at, out)


def _director(d: Record, where: str, out: Problems) -> None:
    _thai_id(d["citizen_id"], _path(where, "citizen_id"), out)
    _person_name(d["name"], _path(where, "name"), out)


def _partner(p: Record, where: str, out: Problems) -> None:
    _thai_id(p["citizen_id"], _path(where, "citizen_id"), out)
    _person_name(p["name"], _path(where, "name"), out)
    _baht(p["contribution"], _path(where, "contribution"), out)


def _shareholder(s: Record, where: str, out: Problems) -> None:
    _party(s["holder"], _path(where, "holder"), out)
    _bounds(s["shares"], _path(where, "shares"), out, gt=0)


def _juristic_person(p: Record, at: str, out: Problems) -> None:
    mark = out.mark()
    _juristic_id(p["juristic_id"], _path(at, "juristic_id"), out)
    _text(p["name_th"], _path(at, "name_th"), out)
    _fact_date(p["registered_on"], _path(at, "registered_on"), out)
    _baht(p["registered_capital"], _path(at, "registered_capital"), out)
    _address(p["head_office"], _path(at, "head_office"), out)
    _each(p["directors"], _director, _path(at, "directors"), out)
    _each(p["partners"], _partner, _path(at, "partners"), out)
    _each(p["shareholders"], _shareholder, _path(at, "shareholders"), out)
    if out.clean_since(mark):
        _first_broken(_juristic_person_rules(p), at, out)


def _juristic_person_rules(p: Record) -> Rules:
    kind, partners = p["juristic_type"], p["partners"]
    if kind in ("LIMITED_COMPANY", "PUBLIC_LIMITED_COMPANY"):
        yield not partners, "a company has no partners"
        yield bool(p["directors"]), "a company has at least one director"
    else:
        yield not p["shareholders"], "a partnership has no shareholders"
        yield len(partners) >= 2, "a partnership has at least two partners"
        if kind == "LIMITED_PARTNERSHIP":
            yield (
                any(partner["liability"] == "UNLIMITED" for partner in partners),
                "a limited partnership has at least one partner with unlimited liability",
            )
    holders = _party_ids([s["holder"] for s in p["shareholders"]], "JURISTIC_PERSON")
    yield p["juristic_id"] not in holders, "the juristic person holds its own shares"


def _juristic_person_ids(p: Record) -> tuple[set[str], set[str]]:
    holders = [s["holder"] for s in p["shareholders"]]
    people = {d["citizen_id"] for d in p["directors"]} | {x["citizen_id"] for x in p["partners"]}
    return people | _party_ids(holders, "CITIZEN"), {p["juristic_id"]} | _party_ids(holders, "JURISTIC_PERSON")


def _commercial_registration(p: Record, at: str, out: Problems) -> None:
    _key_text(p["registration_number"], _path(at, "registration_number"), out)
    _party(p["owner"], _path(at, "owner"), out)
    _text(p["trade_name"], _path(at, "trade_name"), out)
    _match(p["business_category"], _DIGITS[5], _path(at, "business_category"), out)
    _address(p["business_address"], _path(at, "business_address"), out)
    _baht(p["capital"], _path(at, "capital"), out)
    _fact_date(p["registered_on"], _path(at, "registered_on"), out)


def _vehicle(p: Record, at: str, out: Problems) -> None:
    mark = out.mark()
    _match(p["chassis_number"], _CHASSIS, _path(at, "chassis_number"), out)
    plate, where = p["plate"], _path(at, "plate")
    _match(plate["prefix"], _PLATE_PREFIX, _path(where, "prefix"), out)
    _bounds(plate["number"], _path(where, "number"), out, ge=1, le=9999)
    _match(plate["province_code"], _DIGITS[2], _path(where, "province_code"), out)
    for field in ("make", "model", "colour"):
        _text(p[field], _path(at, field), out)
    if p["engine_cc"] is not None:
        _bounds(p["engine_cc"], _path(at, "engine_cc"), out, gt=0)
    _fact_date(p["first_registered_on"], _path(at, "first_registered_on"), out)
    _party(p["owner"], _path(at, "owner"), out)
    _optional(p["possessor"], _party, _path(at, "possessor"), out)
    if out.clean_since(mark):
        possessor = p["possessor"]
        differs = possessor is None or possessor["id"] != p["owner"]["id"]
        _first_broken([(differs, "possessor is the owner; leave it null")], at, out)


def _driving_licence(p: Record, at: str, out: Problems) -> None:
    mark = out.mark()
    _match(p["licence_number"], _LICENCE_NUMBER, _path(at, "licence_number"), out)
    _thai_id(p["citizen_id"], _path(at, "citizen_id"), out)
    _fact_date(p["issued_on"], _path(at, "issued_on"), out)
    _expiry_date(p["expires_on"], _path(at, "expires_on"), out)
    if out.clean_since(mark):
        _first_broken([(p["expires_on"] > p["issued_on"], "expires_on is not after issued_on")], at, out)


def _ownership(o: Record, where: str, out: Problems) -> None:
    mark = out.mark()
    _party(o["owner"], _path(where, "owner"), out)
    _bounds(o["share_numerator"], _path(where, "share_numerator"), out, gt=0)
    _bounds(o["share_denominator"], _path(where, "share_denominator"), out, gt=0)
    if out.clean_since(mark):
        _first_broken([(o["share_numerator"] <= o["share_denominator"], "a share is more than the whole")], where, out)


def _mortgage(m: Record, where: str, out: Problems) -> None:
    _party(m["mortgagee"], _path(where, "mortgagee"), out)
    _baht(m["amount"], _path(where, "amount"), out)
    _fact_date(m["registered_on"], _path(where, "registered_on"), out)


def _title_deed(p: Record, at: str, out: Problems) -> None:
    mark = out.mark()
    _match(p["province_code"], _DIGITS[2], _path(at, "province_code"), out)
    _text(p["deed_number"], _path(at, "deed_number"), out, _DEED_NUMBER_MAX, _DEED_NUMBER, min_length=0)
    parcel, where = p["parcel"], _path(at, "parcel")
    for field in ("parcel_number", "subdistrict", "district"):
        _text(parcel[field], _path(where, field), out)
    area = p["land_area"]
    if area is not None:
        where = _path(at, "land_area")
        _bounds(area["rai"], _path(where, "rai"), out, ge=0)
        _bounds(area["ngan"], _path(where, "ngan"), out, ge=0, le=3)
        _decimal(area["square_wah"], _path(where, "square_wah"), out, 5, 1, ge=0, lt=100)
    if p["unit_area_sqm"] is not None:
        _decimal(p["unit_area_sqm"], _path(at, "unit_area_sqm"), out, 9, 2, gt=0)
    _each(p["owners"], _ownership, _path(at, "owners"), out)
    _each(p["mortgages"], _mortgage, _path(at, "mortgages"), out)
    transfer = p["last_transfer"]
    if transfer is not None:
        where = _path(at, "last_transfer")
        _fact_date(transfer["registered_on"], _path(where, "registered_on"), out)
        _optional(transfer["declared_price"], _baht, _path(where, "declared_price"), out)
    if out.clean_since(mark):
        _first_broken(_title_deed_rules(p), at, out)


def _title_deed_rules(p: Record) -> Rules:
    if p["kind"] == "LAND_TITLE_DEED":
        land = p["land_area"] is not None and p["unit_area_sqm"] is None
        yield land, "a land title has a land_area and no unit_area_sqm"
    else:
        unit = p["unit_area_sqm"] is not None and p["land_area"] is None
        yield unit, "a unit title has a unit_area_sqm and no land_area"
        yield bool(p["parcel"]["condominium_name"]), "a unit title names its condominium"
    owners = p["owners"]
    yield bool(owners), "a title has at least one owner"
    total = sum((Fraction(o["share_numerator"], o["share_denominator"]) for o in owners), Fraction(0))
    yield total == 1, f"owners' shares add up to {total}, not 1"
    ids = [o["owner"]["id"] for o in owners]
    yield len(ids) == len(set(ids)), "an owner is listed twice"


def _title_deed_ids(p: Record) -> tuple[set[str], set[str]]:
    parties = [o["owner"] for o in p["owners"]] + [m["mortgagee"] for m in p["mortgages"]]
    return _party_ids(parties, "CITIZEN"), _party_ids(parties, "JURISTIC_PERSON")


def _citizens(*fields: str) -> Callable[[Record], tuple[set[str], set[str]]]:
    return lambda p: ({p[f] for f in fields if p[f]}, set())


def _parties(*fields: str) -> Callable[[Record], tuple[set[str], set[str]]]:
    def ids(p: Record) -> tuple[set[str], set[str]]:
        parties = [p[f] for f in fields]
        return _party_ids(parties, "CITIZEN"), _party_ids(parties, "JURISTIC_PERSON")

    return ids


def _key(field: str) -> Callable[[Record], str]:
    return lambda p: str(p[field])


class Dataset:
    """What the rules know of one dataset's events: who owns it, its codes, its payload's rules."""

    def __init__(
        self,
        agency: str,
        codes: tuple[int, ...],
        dataset: str,
        check: Callable[[Record, str, Problems], None],
        key: Callable[[Record], str],
        ids: Callable[[Record], tuple[set[str], set[str]]],
    ) -> None:
        self.agency, self.codes, self.dataset = agency, codes, dataset
        self.check, self.key, self.ids = check, key, ids


DATASETS: dict[str, Dataset] = {
    "th.go.gdx.dopa.PersonEvent": Dataset(
        "DOPA", (33,), "person", _person, _key("citizen_id"), _citizens("citizen_id")
    ),
    "th.go.gdx.dopa.HouseEvent": Dataset(
        "DOPA", (34,), "house", _house, _key("house_id"), _citizens("householder_citizen_id")
    ),
    "th.go.gdx.dopa.ResidenceEvent": Dataset(
        "DOPA", (35,), "residence", _residence, _key("citizen_id"), _citizens("citizen_id")
    ),
    "th.go.gdx.dopa.CivilRegistrationEvent": Dataset(
        "DOPA", (36,), "civil-registration", _civil_registration, _key("registration_number"), _citizens("citizen_id")
    ),
    "th.go.gdx.dopa.BirthEvent": Dataset(
        "DOPA",
        (37,),
        "birth",
        _birth,
        _key("certificate_number"),
        _citizens("child_citizen_id", "mother_citizen_id", "father_citizen_id"),
    ),
    "th.go.gdx.dopa.DeathEvent": Dataset(
        "DOPA", (38,), "death", _death, _key("certificate_number"), _citizens("citizen_id", "informant_citizen_id")
    ),
    "th.go.gdx.dopa.MarriageEvent": Dataset(
        "DOPA",
        (40,),
        "marriage",
        _marriage,
        _key("registration_number"),
        _citizens("spouse_a_citizen_id", "spouse_b_citizen_id"),
    ),
    "th.go.gdx.dopa.NameChangeEvent": Dataset(
        "DOPA", (41,), "name-change", _name_change, _key("certificate_number"), _citizens("citizen_id")
    ),
    "th.go.gdx.dbd.JuristicPersonEvent": Dataset(
        "DBD", (15, 16), "juristic-person", _juristic_person, _key("juristic_id"), _juristic_person_ids
    ),
    "th.go.gdx.dbd.CommercialRegistrationEvent": Dataset(
        "DBD",
        (18,),
        "commercial-registration",
        _commercial_registration,
        _key("registration_number"),
        _parties("owner"),
    ),
    "th.go.gdx.dlt.VehicleEvent": Dataset(
        "DLT", (30,), "vehicle", _vehicle, _key("chassis_number"), _parties("owner", "possessor")
    ),
    "th.go.gdx.dlt.DrivingLicenceEvent": Dataset(
        "DLT", (31,), "driving-licence", _driving_licence, _key("licence_number"), _citizens("citizen_id")
    ),
    "th.go.gdx.dol.TitleDeedEvent": Dataset(
        "DOL", (32,), "title-deed", _title_deed, lambda p: f"{p['province_code']}-{p['deed_number']}", _title_deed_ids
    ),
}


def problems(schema_name: str, event: Record) -> list[str]:
    """Every broken rule of a decoded event of `schema_name` (which must be in DATASETS)."""
    dataset = DATASETS[schema_name]
    out = Problems()
    _key_text(event["entity_key"], "entity_key", out)
    _bounds(event["entity_version"], "entity_version", out, ge=1)
    _year(event["source_time"], "source_time", out)
    _year(event["published_time"], "published_time", out)
    trace_id = event["trace_id"]
    if not _TRACE_ID.search(trace_id):
        out.add("trace_id", f"String should match pattern '{_TRACE_ID.pattern}'")
    elif trace_id == "0" * 32:
        out.add("trace_id", "the all-zero trace id is invalid in W3C trace-context")
    payload = event["payload"]
    if payload is not None:
        dataset.check(payload, "payload", out)
    if out.found:
        return out.found
    _consistent(dataset, event, out)
    return out.found


def _consistent(dataset: Dataset, event: Record, out: Problems) -> None:
    """The envelope against its payload: told at the first broken rule, as the model does."""
    message = _envelope_broken(dataset, event)
    if message is not None:
        out.add("", message)


def _envelope_broken(dataset: Dataset, event: Record) -> str | None:
    """The envelope's first broken rule, in the model's order; its message only made when broken."""
    name, code, agency = dataset.dataset, event["dataset_code"], event["source_agency"]
    if code not in dataset.codes:
        return f"dataset_code {code} is not a {name} code {list(dataset.codes)}"
    if agency != dataset.agency:
        return f"{name} is owned by {dataset.agency}, not {agency}"
    if event["published_time"] < event["source_time"]:
        return "published_time is before source_time"
    references = event["references"]
    citizens, juristic = references["citizen_ids"], references["juristic_ids"]
    for field, listed in (("citizen_ids", citizens), ("juristic_ids", juristic)):
        if len(listed) > 1 and len(listed) != len(set(listed)):
            return f"references.{field} lists an ID twice"
    payload = event["payload"]
    if event["change_type"] == "DELETE":
        return None if payload is None else "a DELETE carries no payload"
    if payload is None:
        return f"a {event['change_type']} carries the entity as payload"
    key = dataset.key(payload)
    if event["entity_key"] != key:
        return f"entity_key {event['entity_key']!r} does not match the payload's key {key!r}"
    in_citizens, in_juristic = dataset.ids(payload)
    for field, listed, in_payload in (("citizen_ids", citizens, in_citizens), ("juristic_ids", juristic, in_juristic)):
        if set(listed) != in_payload:
            return f"references.{field} {sorted(listed)} != IDs in the payload {sorted(in_payload)}"
    return None
