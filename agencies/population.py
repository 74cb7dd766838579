"""The deterministic synthetic Thai population every simulated agency draws its records from.

One seed and one scale give the same population anywhere. A compact census (a few bytes per
person, in arrays) is taken first, so that any registry can name an adult, their citizen ID, name
or province without holding full records; each agency's records are then generated lazily, one
entity at a time, which keeps a 1,000,000-person load within a small, flat memory footprint.

Records are shaped exactly like the payloads of the schemas issue (`schemas/avro/<agency>/*.avsc`):
dates are `datetime.date`, money is `Decimal`, enums are their symbol strings.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from agencies import reference as ref
from agencies.ids import Scrambler, citizen_id, juristic_id
from agencies.ratios import CONDOMINIUM_SHARE, Sizes, sizes

# Ages and dates are computed against a fixed day, so a seed gives the same population every year.
REFERENCE_DATE = date(2026, 1, 1)
_EPOCH = date(1970, 1, 1)
_REFERENCE_DAY = (REFERENCE_DATE - _EPOCH).days
_REGISTER_1984 = (date(1984, 1, 1) - _EPOCH).days
ADULT_AGE = 20

HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6)
HOUSEHOLD_WEIGHTS = (18, 25, 24, 18, 10, 5)
SPOUSE_SHARE = 0.75
HOUSE_TYPES = (
    ("DETACHED_HOUSE", 55),
    ("TOWNHOUSE", 25),
    ("SHOPHOUSE", 10),
    ("CONDOMINIUM_UNIT", 8),
    ("OTHER_BUILDING", 2),
)
_CITY_PROVINCES = {"10", "12"}

# Records created after the initial load (births, new vehicles, ...) take ordinals from here on,
# above any ordinal the initial load can use at the largest scale.
NEW_ORDINAL_START = 1_000_000
MAX_NEW_ORDINALS = 9_000_000

MALE = 0  # and 1 is female, as in SEX_SYMBOL
SEX_SYMBOL = ("MALE", "FEMALE")
AGENCIES = ("dopa", "dbd", "dol", "dlt")
ENGINE_NUMBER_SINCE = 2015


@dataclass(frozen=True)
class Entity:
    """One record of an agency's registry: which dataset, its entity key, its payload."""

    dataset: str
    key: str
    state: dict[str, Any]


def day(ordinal: int) -> date:
    return _EPOCH + timedelta(days=ordinal)


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def address(sub: ref.SubDistrict, house_number: str, village: int | None) -> dict[str, Any]:
    return {
        "house_number": house_number,
        "village_number": village,
        "street": None,
        "subdistrict": sub.sub_district.th,
        "district": sub.district.th,
        "province_code": sub.province_code,
        "postcode": sub.postcode,
    }


def full_name(name: dict[str, Any]) -> str:
    """How a name is written on a record: title glued to the first name, then the surname."""
    return f"{name['prefix']}{name['first_name']} {name['last_name']}"


def title(sex: int, age: int, married: bool) -> ref.Name:
    if age < 15:
        return ref.TITLE_BOY if sex == MALE else ref.TITLE_GIRL
    if sex == MALE:
        return ref.TITLE_MR
    return ref.TITLE_MRS if married else ref.TITLE_MISS


class Census:
    """A few bytes per person and per house: enough for every registry to refer to anyone."""

    def __init__(self, persons: int, rng: random.Random) -> None:
        self.birth = array("i")  # days since 1970-01-01
        self.sex = array("b")
        self.first = array("B")  # index into the first-name list of the person's sex
        self.surname = array("B")
        self.married = array("b")  # 1: registered spouse of the next (head) or previous person
        self.house_of = array("I")
        self.house_first = array("I")  # first person of each house
        self.house_sub = array("B")  # sub-district of each house
        sub_weights = ref.SUB_DISTRICT_WEIGHTS
        sub_ids = range(len(ref.SUB_DISTRICTS))
        while len(self.birth) < persons:
            house = len(self.house_first)
            size = min(rng.choices(HOUSEHOLD_SIZES, HOUSEHOLD_WEIGHTS)[0], persons - len(self.birth))
            self.house_first.append(len(self.birth))
            self.house_sub.append(rng.choices(sub_ids, sub_weights)[0])
            family = rng.randrange(len(ref.SURNAMES))
            head_age = rng.randint(25, 82)
            head_sex = rng.randrange(2)
            spouse = size >= 2 and rng.random() < SPOUSE_SHARE
            self._add(rng, house, head_age, head_sex, family, spouse)
            for member in range(1, size):
                if member == 1 and spouse:
                    age = max(ADULT_AGE, head_age + rng.randint(-6, 6))
                    self._add(rng, house, age, 1 - head_sex, family, True)
                elif member == 1:
                    self._add(
                        rng, house, rng.randint(18, 85), rng.randrange(2), rng.randrange(len(ref.SURNAMES)), False
                    )
                else:
                    self._add(rng, house, rng.randint(0, min(head_age - 18, 35)), rng.randrange(2), family, False)

    def _add(self, rng: random.Random, house: int, age: int, sex: int, family: int, married: bool) -> None:
        self.birth.append(_REFERENCE_DAY - age * 365 - rng.randrange(365))
        self.sex.append(sex)
        names = ref.MALE_FIRST_NAMES if sex == MALE else ref.FEMALE_FIRST_NAMES
        self.first.append(rng.randrange(len(names)))
        self.surname.append(family)
        self.married.append(1 if married else 0)
        self.house_of.append(house)

    @property
    def houses(self) -> int:
        return len(self.house_first)

    def members(self, house: int) -> range:
        end = self.house_first[house + 1] if house + 1 < self.houses else len(self.birth)
        return range(self.house_first[house], end)


class Population:
    """Seeded generator of every agency's registry; `records(agency)` streams its entities."""

    def __init__(self, persons: int, seed: int) -> None:
        self.sizes: Sizes = sizes(persons)
        self.seed = seed
        self.citizen_scrambler = Scrambler(10**11, seed, 1)
        self.house_scrambler = Scrambler(10**7, seed, 2)
        self.juristic_scrambler = Scrambler(10**8, seed, 3)
        self._deed = Scrambler(10**7, seed, 4)
        self._plate = Scrambler(10 * len(ref.PLATE_LETTERS) ** 2 * 9999, seed, 5)
        self._chassis = Scrambler(10**8, seed, 6)
        self._licence = Scrambler(10**8, seed, 7)
        self.commercial_scrambler = Scrambler(10**9, seed, 8)
        self._marriage = Scrambler(10**9, seed, 9)
        self._adult_before = _REFERENCE_DAY - ADULT_AGE * 366
        self._juristic_names = self._name_companies(random.Random(f"{seed}/company-names"))

    @cached_property
    def census(self) -> Census:
        """Taken on first use: life events only need the ID scramblers, not the census."""
        return Census(self.sizes.persons, random.Random(f"{self.seed}/census"))

    # --- identities anyone may refer to ------------------------------------------------------
    def citizen_id(self, person: int) -> str:
        return citizen_id(f"{self.citizen_scrambler(person):011d}", self.census.birth[person] < _REGISTER_1984)

    def house_id(self, house: int) -> str:
        return ref.SUB_DISTRICTS[self.census.house_sub[house]].office_code + f"{self.house_scrambler(house):07d}"

    def juristic_id(self, company: int) -> str:
        return juristic_id(f"{self.juristic_scrambler(company):08d}")

    def person_name(self, person: int, english: bool = False) -> dict[str, Any]:
        c = self.census
        sex = c.sex[person]
        names = ref.MALE_FIRST_NAMES if sex == MALE else ref.FEMALE_FIRST_NAMES
        first, last = names[c.first[person]], ref.SURNAMES[c.surname[person]]
        prefix = title(sex, age_on(day(c.birth[person]), REFERENCE_DATE), bool(c.married[person]))
        language = "en" if english else "th"
        return {
            "prefix": getattr(prefix, language),
            "first_name": getattr(first, language),
            "middle_name": None,
            "last_name": getattr(last, language),
        }

    def citizen_party(self, person: int) -> dict[str, Any]:
        return {"kind": "CITIZEN", "id": self.citizen_id(person), "name": full_name(self.person_name(person))}

    def juristic_party(self, company: int) -> dict[str, Any]:
        return {"kind": "JURISTIC_PERSON", "id": self.juristic_id(company), "name": self._juristic_names[company][1]}

    def province_of(self, person: int) -> ref.SubDistrict:
        return ref.SUB_DISTRICTS[self.census.house_sub[self.census.house_of[person]]]

    def adult(self, rng: random.Random) -> int:
        """A uniformly drawn person old enough to own, direct or drive."""
        while True:
            person = rng.randrange(self.sizes.persons)
            if self.census.birth[person] <= self._adult_before:
                return person

    def finance_company(self, rng: random.Random) -> int:
        return rng.randrange(self.sizes.finance_companies)

    def records(self, agency: str) -> Iterator[Entity]:
        """Every entity of one agency's registry, generated lazily in a fixed order."""
        return {"dopa": self._dopa, "dbd": self._dbd, "dol": self._dol, "dlt": self._dlt}[agency]()

    def counts(self) -> dict[str, int]:
        """Entities per agency, without generating them (for progress totals)."""
        c = self.census
        marriages = sum(1 for h in range(c.houses) if len(c.members(h)) > 1 and c.married[c.house_first[h]])
        s = self.sizes
        return {
            "dopa": c.houses + 2 * s.persons + marriages,
            "dbd": s.juristic_persons + s.commercial_registrations,
            "dol": s.title_deeds,
            "dlt": s.vehicles + s.driving_licences,
        }

    # --- DOPA: houses, persons, residences, marriages -------------------------------------------
    def _dopa(self) -> Iterator[Entity]:
        rng = random.Random(f"{self.seed}/dopa")
        c = self.census
        for house in range(c.houses):
            sub = ref.SUB_DISTRICTS[c.house_sub[house]]
            members = c.members(house)
            head = members[0]
            house_id = self.house_id(house)
            registered = day(min(c.birth[head] + 20 * 365, _REFERENCE_DAY - 30) - rng.randrange(3650))
            village = None if sub.province_code in _CITY_PROVINCES else rng.randint(1, 15)
            yield Entity(
                "house",
                house_id,
                {
                    "house_id": house_id,
                    "address": address(sub, f"{rng.randint(1, 999)}/{rng.randint(1, 99)}", village),
                    "house_type": _weighted(rng, HOUSE_TYPES),
                    "householder_citizen_id": self.citizen_id(head),
                    "registered_on": registered,
                },
            )
            for person in members:
                cid = self.citizen_id(person)
                born = day(c.birth[person])
                yield Entity("person", cid, self._person(rng, person, cid, born, house_id, sub))
                yield Entity(
                    "residence",
                    cid,
                    {
                        "citizen_id": cid,
                        "house_id": house_id,
                        "role": "HOUSEHOLDER" if person == head else "RESIDENT",
                        "moved_in_on": max(registered, born),
                    },
                )
            if len(members) > 1 and c.married[head]:
                number = f"{sub.office_code}{self._marriage(house):09d}"
                married_on = day(max(c.birth[head], c.birth[head + 1]) + ADULT_AGE * 365 + rng.randrange(3650))
                yield Entity(
                    "marriage",
                    number,
                    {
                        "registration_number": number,
                        "event": "MARRIAGE",
                        "spouse_a_citizen_id": self.citizen_id(head),
                        "spouse_b_citizen_id": self.citizen_id(head + 1),
                        "registered_on": min(married_on, REFERENCE_DATE - timedelta(days=1)),
                        "registrar_office": f"สำนักทะเบียน{sub.district.th}",
                    },
                )

    def _person(
        self, rng: random.Random, person: int, cid: str, born: date, house_id: str, sub: ref.SubDistrict
    ) -> dict[str, Any]:
        age = age_on(born, REFERENCE_DATE)
        card = None
        if age >= 7:
            issued = REFERENCE_DATE - timedelta(days=rng.randrange(1, 8 * 365))
            card = {
                "card_request_number": f"{sub.office_code}-{rng.randrange(10**4):04d}-{rng.randrange(10**8):08d}",
                "issued_on": issued,
                "expires_on": None if age >= 70 else issued.replace(year=issued.year + 8, day=min(issued.day, 28)),
            }
        return {
            "citizen_id": cid,
            "name": self.person_name(person),
            "name_en": self.person_name(person, english=True),
            "sex": SEX_SYMBOL[self.census.sex[person]],
            "date_of_birth": born,
            "nationality": "THA",
            "house_id": house_id,
            "card": card,
            "status": "ACTIVE",
        }

    # --- DBD: juristic persons, commercial registrations ---------------------------------------
    def _name_companies(self, rng: random.Random) -> list[tuple[str, str, str, str]]:
        """(type, Thai name, English name, TSIC) per juristic person; the first ones lend money."""
        names = []
        for company in range(self.sizes.juristic_persons):
            finance = company < self.sizes.finance_companies
            kind, th_pattern, en_pattern = "LIMITED_COMPANY", "บริษัท {} จำกัด", "{} Co., Ltd."
            if not finance:
                kind, th_pattern, en_pattern = _weighted(rng, tuple((t[:3], t[3]) for t in ref.JURISTIC_TYPES))
            word = rng.choice(ref.COMPANY_WORDS)
            line, tsic = ref.FINANCE_LINE if finance else rng.choice(ref.BUSINESS_LINES)
            serial = f" {company // 100 + 1}" if company >= 100 else ""
            names.append(
                (
                    kind,
                    th_pattern.format(f"{word.th}{line.th}{serial}"),
                    en_pattern.format(f"{word.en} {line.en}{serial}"),
                    tsic,
                )
            )
        return names

    def _dbd(self) -> Iterator[Entity]:
        rng = random.Random(f"{self.seed}/dbd")
        for company, (kind, name_th, name_en, tsic) in enumerate(self._juristic_names):
            jid = self.juristic_id(company)
            people = [
                self.adult(rng)
                for _ in range(rng.randint(1, 3) if kind != "LIMITED_PARTNERSHIP" else rng.randint(2, 3))
            ]
            people = list(dict.fromkeys(people))
            capital = Decimal(
                rng.choice((1, 2, 5, 10, 50, 100, 1000)) * 1_000_000
                if company >= self.sizes.finance_companies
                else 5_000_000_000
            )
            state = {
                "juristic_id": jid,
                "name_th": name_th,
                "name_en": name_en,
                "juristic_type": kind,
                "status": "ACTIVE",
                "registered_on": REFERENCE_DATE - timedelta(days=rng.randrange(30, 40 * 365)),
                "registered_capital": capital,
                "objectives": f"ประกอบกิจการตามรหัสประเภทธุรกิจ {tsic}",
                "head_office": address(self.province_of(people[0]), f"{rng.randint(1, 999)}", None),
                "directors": [],
                "partners": [],
                "shareholders": [],
            }
            if kind == "LIMITED_PARTNERSHIP":
                state["partners"] = [
                    {
                        "citizen_id": self.citizen_id(p),
                        "name": self.person_name(p),
                        "liability": "UNLIMITED" if n == 0 else "LIMITED",
                        "contribution": (capital / len(people)).quantize(Decimal("0.01")),
                    }
                    for n, p in enumerate(people)
                ]
            else:
                state["directors"] = [
                    {"citizen_id": self.citizen_id(p), "name": self.person_name(p), "authorised_signatory": n == 0}
                    for n, p in enumerate(people)
                ]
                shareholders = [{"holder": self.citizen_party(p), "shares": rng.randint(1, 50) * 1000} for p in people]
                if company > 0 and rng.random() < 0.2:
                    shareholders.append(
                        {"holder": self.juristic_party(rng.randrange(company)), "shares": rng.randint(1, 50) * 1000}
                    )
                state["shareholders"] = shareholders
            yield Entity("juristic-person", jid, state)
        for registration in range(self.sizes.commercial_registrations):
            owner = self.adult(rng)
            sub = self.province_of(owner)
            number = f"{sub.office_code}{self.commercial_scrambler(registration):09d}"
            shop = rng.choice(ref.SHOP_LINES)
            yield Entity(
                "commercial-registration",
                number,
                {
                    "registration_number": number,
                    "owner": self.citizen_party(owner),
                    "trade_name": f"{shop.th}{self.person_name(owner)['first_name']}",
                    "business_category": rng.choice(ref.BUSINESS_LINES)[1],
                    "business_address": address(sub, f"{rng.randint(1, 999)}", None),
                    "capital": Decimal(rng.randint(1, 100) * 10_000),
                    "registered_on": REFERENCE_DATE - timedelta(days=rng.randrange(30, 30 * 365)),
                    "status": "ACTIVE",
                },
            )

    # --- DOL: title deeds and condominium unit titles ------------------------------------------
    def owners(self, rng: random.Random) -> list[dict[str, Any]]:
        """One to three owners with equal undivided shares; some titles belong to companies."""
        if rng.random() < 0.08 and self.sizes.juristic_persons > self.sizes.finance_companies:
            parties = [self.juristic_party(rng.randrange(self.sizes.finance_companies, self.sizes.juristic_persons))]
        else:
            count = rng.choices((1, 2, 3), (70, 25, 5))[0]
            parties = list({p["id"]: p for p in (self.citizen_party(self.adult(rng)) for _ in range(count))}.values())
        return [{"owner": p, "share_numerator": 1, "share_denominator": len(parties)} for p in parties]

    def _dol(self) -> Iterator[Entity]:
        rng = random.Random(f"{self.seed}/dol")
        for deed in range(self.sizes.title_deeds):
            sub = ref.SUB_DISTRICTS[rng.choices(range(len(ref.SUB_DISTRICTS)), ref.SUB_DISTRICT_WEIGHTS)[0]]
            condo = rng.random() < CONDOMINIUM_SHARE
            number = f"{self._deed(deed):07d}"
            key = f"{sub.province_code}-{number}"
            mortgages = []
            if rng.random() < 0.2:
                mortgages.append(
                    {
                        "mortgagee": self.juristic_party(self.finance_company(rng)),
                        "amount": Decimal(rng.randint(5, 500) * 10_000),
                        "registered_on": REFERENCE_DATE - timedelta(days=rng.randrange(30, 20 * 365)),
                    }
                )
            yield Entity(
                "title-deed",
                key,
                {
                    "kind": "CONDOMINIUM_UNIT_TITLE" if condo else "LAND_TITLE_DEED",
                    "province_code": sub.province_code,
                    "deed_number": number,
                    "parcel": {
                        "parcel_number": f"{rng.randint(1, 40)}/{rng.randint(1, 999)}"
                        if condo
                        else str(rng.randint(1, 9999)),
                        "survey_page": None if condo else str(rng.randint(1, 9999)),
                        "condominium_name": rng.choice(ref.CONDOMINIUMS).th if condo else None,
                        "subdistrict": sub.sub_district.th,
                        "district": sub.district.th,
                    },
                    "land_area": None
                    if condo
                    else {
                        "rai": rng.choices((0, rng.randint(1, 5), rng.randint(5, 50)), (50, 35, 15))[0],
                        "ngan": rng.randint(0, 3),
                        "square_wah": Decimal(rng.randrange(0, 1000)) / 10,
                    },
                    "unit_area_sqm": Decimal(rng.randrange(2200, 15000)) / 100 if condo else None,
                    "owners": self.owners(rng),
                    "mortgages": mortgages,
                    "last_transfer": None,
                },
            )

    # --- DLT: vehicles and driving licences -----------------------------------------------------
    def plate(self, vehicle: int, province_code: str) -> dict[str, Any]:
        code = self._plate(vehicle)
        number, code = code % 9999 + 1, code // 9999
        letters = ref.PLATE_LETTERS
        second, code = letters[code % len(letters)], code // len(letters)
        first, lead = letters[code % len(letters)], code // len(letters)
        return {"prefix": f"{lead or ''}{first}{second}", "number": number, "province_code": province_code}

    def chassis(self, vehicle: int, wmi: str) -> str:
        """World manufacturer ID, a model/plant section, then a scrambled serial: 17 characters."""
        return f"{wmi}{'ABCDEF'[vehicle % 6]}{vehicle % 10}TH0{vehicle % 7}{self._chassis(vehicle):08d}"

    def vehicle(
        self, rng: random.Random, vehicle: int, registered: date, owner: dict[str, Any], province_code: str
    ) -> Entity:
        """A vehicle registered to `owner`; a citizen buying on hire purchase is only its possessor."""
        klass = _weighted(rng, ref.VEHICLE_CLASSES)
        wmi, make, models = rng.choice([m for m in ref.MAKERS if klass in m[2]])
        model, cc = models[klass]
        possessor = None
        if owner["kind"] == "CITIZEN" and rng.random() < 0.15:
            owner, possessor = self.juristic_party(self.finance_company(rng)), owner
        chassis = self.chassis(vehicle, wmi)
        return Entity(
            "vehicle",
            chassis,
            {
                "chassis_number": chassis,
                "plate": self.plate(vehicle, province_code),
                "vehicle_class": klass,
                "make": make,
                "model": model,
                "colour": rng.choice(ref.COLOURS).th,
                "engine_cc": cc,
                "first_registered_on": registered,
                "owner": owner,
                "possessor": possessor,
                "status": "ACTIVE",
                # Engine numbers were recorded from 2015 on; older registrations never carried one.
                "engine_number": f"{wmi[1:]}{self._chassis(vehicle):08d}"
                if registered.year >= ENGINE_NUMBER_SINCE
                else None,
            },
        )

    def licence(self, rng: random.Random, licence: int, holder: str, issued: date) -> Entity:
        number = f"{self._licence(licence):08d}"
        return Entity(
            "driving-licence",
            number,
            {
                "licence_number": number,
                "citizen_id": holder,
                "licence_class": _weighted(rng, ref.LICENCE_CLASSES),
                "issued_on": issued,
                "expires_on": issued.replace(year=issued.year + 5, day=min(issued.day, 28)),
                "status": "SUSPENDED" if rng.random() < 0.02 else "VALID",
            },
        )

    def _dlt(self) -> Iterator[Entity]:
        rng = random.Random(f"{self.seed}/dlt")
        companies = range(self.sizes.finance_companies, self.sizes.juristic_persons)
        for vehicle in range(self.sizes.vehicles):
            registered = REFERENCE_DATE - timedelta(days=rng.randrange(30, 25 * 365))
            if companies and rng.random() < 0.12:
                yield self.vehicle(rng, vehicle, registered, self.juristic_party(rng.choice(companies)), "10")
            else:
                person = self.adult(rng)
                yield self.vehicle(
                    rng, vehicle, registered, self.citizen_party(person), self.province_of(person).province_code
                )
        for licence in range(self.sizes.driving_licences):
            holder = self.citizen_id(self.adult(rng))
            yield self.licence(rng, licence, holder, REFERENCE_DATE - timedelta(days=rng.randrange(1, 5 * 365)))
