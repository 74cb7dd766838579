"""Life events across the four agencies, drawn from their current ground truth.

Each event reads the agencies' stores (never a picture of its own: what the picks remember of a row
is used only while it is provably current), so whatever it references exists at that moment: a land
sale names a living citizen, an inheritance follows a registered death, a new company's directors
are alive and adult. Each agency writes only its own store, one transaction per event, with the
referent before the events that refer to it; cross-agency consequences (a death's estate at the
land and transport offices) are handed over as a queue, as a notification over GDX would be.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import islice
from math import lcm
from typing import Any

from agencies import reference as ref
from agencies.ids import Scrambler, citizen_id, juristic_id
from agencies.population import ADULT_AGE, MAX_NEW_ORDINALS, NEW_ORDINAL_START, Population, age_on, full_name, title
from agencies.sampling import Stored
from agencies.source import ChangeSet, SourceSystem

_TH_TO_EN = {n.th: n.en for n in (*ref.MALE_FIRST_NAMES, *ref.FEMALE_FIRST_NAMES, *ref.SURNAMES)}
_OFFICE_BY_PROVINCE = {s.province_code: s for s in ref.SUB_DISTRICTS}


def today() -> date:
    return datetime.now(UTC).date()


class NoCandidate(Exception):
    """The registries hold nothing this event could apply to right now; another event is drawn."""


class LifeEvents:
    """Draws and applies life events for the agencies it is given (all four stores must exist)."""

    def __init__(
        self, sources: dict[str, SourceSystem], active: tuple[str, ...], population: Population, rng: random.Random
    ) -> None:
        self.sources = sources
        self.population = population
        self.rng = rng
        self.estates: dict[str, deque[str]] = {"dol": deque(), "dlt": deque()}
        seed = population.seed
        self._certificate = Scrambler(10**7, seed, 20)
        catalogue: dict[str, list[tuple[Callable[[], str], int]]] = {
            "dopa": [(self.birth, 10), (self.death, 6), (self.name_added, 6), (self.marriage, 5), (self.move, 15)],
            "dbd": [
                (self.company_registration, 3),
                (self.director_change, 3),
                (self.dissolution, 1),
                (self.commercial_registration, 2),
            ],
            "dol": [(self.land_sale, 8), (self.inheritance, 4), (self.mortgage, 3)],
            "dlt": [
                (self.vehicle_registration, 8),
                (self.vehicle_transfer, 6),
                (self.licence_renewal, 6),
                (self.licence_suspension, 1),
                (self.licence_issue, 3),
            ],
        }
        self.choices = [(fn, weight) for agency in active for fn, weight in catalogue[agency]]

    def step(self) -> str:
        """Apply one life event; returns its name (e.g. "dopa.birth")."""
        for _ in range(50):
            event = self.rng.choices([c[0] for c in self.choices], [c[1] for c in self.choices])[0]
            try:
                return event()
            except NoCandidate:
                continue
        raise NoCandidate("no life event applies to the current registries")

    # --- shared look-ups ---------------------------------------------------------------------
    def _next(self, changes: ChangeSet, name: str) -> int:
        """The next ordinal of a kind of new record, kept in the agency's store with its changes."""
        row = changes.tx.conn.execute("SELECT value FROM meta WHERE name=?", (f"next.{name}",)).fetchone()
        ordinal = int(row[0]) if row else NEW_ORDINAL_START
        if ordinal >= NEW_ORDINAL_START + MAX_NEW_ORDINALS:
            raise NoCandidate(f"{name} numbers exhausted")
        changes.tx.set_meta(f"next.{name}", str(ordinal + 1))
        return ordinal

    def certificate(self, changes: ChangeSet, kind: str, province_code: str) -> str:
        office = _OFFICE_BY_PROVINCE.get(province_code, ref.SUB_DISTRICTS[0]).office_code
        return f"{office}{today().year}{self._certificate(self._next(changes, kind)):07d}"

    def person(self, predicate: Callable[[dict[str, Any]], bool] = lambda s: True, adult: bool = True) -> Stored:
        """A living registered person from the civil registry, optionally matching `predicate`."""
        store = self.sources["dopa"].store
        with store.reading():
            for found in islice(store.random_entities("person", self.rng), 200):
                if found is None:
                    break
                state = found.state
                if state["status"] != "ACTIVE":
                    continue
                if adult and age_on(date.fromisoformat(state["date_of_birth"]), today()) < ADULT_AGE:
                    continue
                if predicate(state):
                    return found
        raise NoCandidate("no living person fits")

    def party(self, person: Stored) -> dict[str, Any]:
        return {"kind": "CITIZEN", "id": person.key, "name": full_name(person.state["name"])}

    def company(self, predicate: Callable[[dict[str, Any]], bool] = lambda s: True) -> Stored:
        store = self.sources["dbd"].store
        with store.reading():
            for found in islice(store.random_entities("juristic-person", self.rng), 100):
                if found is not None and found.state["status"] == "ACTIVE" and predicate(found.state):
                    return found
        raise NoCandidate("no active juristic person fits")

    def company_party(self, company: Stored) -> dict[str, Any]:
        return {"kind": "JURISTIC_PERSON", "id": company.key, "name": company.state["name_th"]}

    def lender(self) -> dict[str, Any]:
        return self.company_party(self.company(lambda s: s["objectives"].endswith(ref.FINANCE_LINE[1])))

    def heirs(self, deceased: str) -> list[Stored]:
        """Living members of the deceased's household, else a living adult relative elsewhere."""
        dopa = self.sources["dopa"].store
        person = dopa.get("person", deceased)
        house = person.state["house_id"] if person else None
        found = (
            [
                p
                for p in (dopa.get("person", r.key) for r in dopa.referencing(house, "residence") if r.key != deceased)
                if p is not None and p.state["status"] == "ACTIVE"
            ]
            if house
            else []
        )
        return found[:3] or [self.person()]

    def alive(self, citizen_id: str) -> bool:
        person = self.sources["dopa"].store.get("person", citizen_id)
        return person is not None and person.state["status"] == "ACTIVE"

    def _parties_alive(self, parties: list[dict[str, Any]]) -> bool:
        return all(p["kind"] != "CITIZEN" or self.alive(p["id"]) for p in parties)

    def _random(self, agency: str, dataset: str, predicate: Callable[[dict[str, Any]], bool]) -> Stored:
        store = self.sources[agency].store
        with store.reading():
            for found in islice(store.random_entities(dataset, self.rng), 50):
                if found is not None and predicate(found.state):
                    return found
        raise NoCandidate(f"no {dataset} fits")

    # --- DOPA ------------------------------------------------------------------------------
    def birth(self) -> str:
        mother = self.person(
            lambda s: s["sex"] == "FEMALE" and 18 <= age_on(date.fromisoformat(s["date_of_birth"]), today()) <= 45
        )
        dopa = self.sources["dopa"]
        spouse = self._spouse(mother.key)
        father = dopa.store.get("person", spouse) if spouse else None
        sex = self.rng.randrange(2)
        first = self.rng.choice(ref.MALE_FIRST_NAMES if sex == 0 else ref.FEMALE_FIRST_NAMES)
        family = (father or mother).state
        born = today() - timedelta(days=self.rng.randrange(0, 14))
        house_id = mother.state["house_id"]
        province = house_id[:2]
        prefix = title(sex, 0, False)
        name = {
            "prefix": prefix.th,
            "first_name": first.th,
            "middle_name": None,
            "last_name": family["name"]["last_name"],
        }
        with dopa.change() as changes:
            cid = citizen_id(f"{self.population.citizen_scrambler(self._next(changes, 'person')):011d}", False)
            changes.put(
                "person",
                cid,
                {
                    "citizen_id": cid,
                    "name": name,
                    "name_en": {
                        "prefix": prefix.en,
                        "first_name": first.en,
                        "middle_name": None,
                        "last_name": (family.get("name_en") or {}).get("last_name")
                        or _TH_TO_EN.get(name["last_name"], ""),
                    },
                    "sex": ("MALE", "FEMALE")[sex],
                    "date_of_birth": born,
                    "nationality": "THA",
                    "house_id": house_id,
                    "card": None,
                    "status": "ACTIVE",
                },
            )
            changes.put(
                "residence", cid, {"citizen_id": cid, "house_id": house_id, "role": "RESIDENT", "moved_in_on": today()}
            )
            number = self.certificate(changes, "birth", province)
            changes.put(
                "birth",
                number,
                {
                    "certificate_number": number,
                    "child_citizen_id": cid,
                    "child_name": name,
                    "sex": ("MALE", "FEMALE")[sex],
                    "date_of_birth": born,
                    "birth_province_code": province,
                    "mother_citizen_id": mother.key,
                    "father_citizen_id": father.key if father else None,
                    "registered_on": today(),
                },
            )
            self._civil_act(changes, cid, "ADD_NAME", house_id)
        return "dopa.birth"

    def _spouse(self, cid: str) -> str | None:
        for record in self.sources["dopa"].store.referencing(cid, "marriage"):
            if record.state["event"] == "MARRIAGE":
                a, b = str(record.state["spouse_a_citizen_id"]), str(record.state["spouse_b_citizen_id"])
                return b if a == cid else a
        return None

    def _civil_act(self, changes: ChangeSet, cid: str, act: str, house_id: str | None) -> None:
        province = house_id[:2] if house_id else "10"
        number = self.certificate(changes, "civil-registration", province)
        office = _OFFICE_BY_PROVINCE.get(province, ref.SUB_DISTRICTS[0])
        changes.put(
            "civil-registration",
            number,
            {
                "registration_number": number,
                "citizen_id": cid,
                "act": act,
                "house_id": house_id,
                "registered_on": today(),
                "registrar_office": f"สำนักทะเบียน{office.district.th}",
            },
        )

    def death(self) -> str:
        candidates = [self.person() for _ in range(3)]
        deceased = min(candidates, key=lambda p: p.state["date_of_birth"])  # the oldest of three
        informant = self._spouse(deceased.key)
        dopa = self.sources["dopa"]
        province = (deceased.state["house_id"] or "10")[:2]
        with dopa.change() as changes:
            changes.put("person", deceased.key, {**deceased.state, "status": "DECEASED"})
            number = self.certificate(changes, "death", province)
            changes.put(
                "death",
                number,
                {
                    "certificate_number": number,
                    "citizen_id": deceased.key,
                    "date_of_death": today() - timedelta(days=1),
                    "death_province_code": province,
                    "cause": self.rng.choice(("ชราภาพ", "โรคหัวใจ", "อุบัติเหตุ", None)),
                    "informant_citizen_id": informant,
                    "registered_on": today(),
                },
            )
            self._civil_act(changes, deceased.key, "REMOVE_NAME", deceased.state["house_id"])
        for queue in self.estates.values():
            queue.append(deceased.key)
        return "dopa.death"

    def name_added(self) -> str:
        """An adult entered in the civil registry (ADD_NAME: a late registration, a naturalisation).

        Why it exists: deaths take adults and births bring only children, who do not grow up while
        the simulation runs; without adults coming in, a long run (at the default scale, about
        20,000 life events) has no adult left and no life event applies any more. Its weight is
        that of deaths, so the adults stay as many as they were, on average.
        """
        dopa = self.sources["dopa"]
        with dopa.change() as changes:
            house = next(dopa.store.random_entities("house", self.rng))
            if house is None:
                raise NoCandidate("no house to add a name to")
            sex = self.rng.randrange(2)
            age = self.rng.randint(ADULT_AGE, 60)
            first = self.rng.choice(ref.MALE_FIRST_NAMES if sex == 0 else ref.FEMALE_FIRST_NAMES)
            last = self.rng.choice(ref.SURNAMES)
            prefix = title(sex, age, False)
            cid = citizen_id(f"{self.population.citizen_scrambler(self._next(changes, 'person')):011d}", False)
            changes.put(
                "person",
                cid,
                {
                    "citizen_id": cid,
                    "name": {"prefix": prefix.th, "first_name": first.th, "middle_name": None, "last_name": last.th},
                    "name_en": {"prefix": prefix.en, "first_name": first.en, "middle_name": None, "last_name": last.en},
                    "sex": ("MALE", "FEMALE")[sex],
                    "date_of_birth": today() - timedelta(days=age * 365 + self.rng.randrange(365)),
                    "nationality": "THA",
                    "house_id": house.key,
                    "card": None,
                    "status": "ACTIVE",
                },
            )
            changes.put(
                "residence", cid, {"citizen_id": cid, "house_id": house.key, "role": "RESIDENT", "moved_in_on": today()}
            )
            self._civil_act(changes, cid, "ADD_NAME", house.key)
        return "dopa.add-name"

    def marriage(self) -> str:
        husband = self.person(lambda s: s["sex"] == "MALE" and self._spouse(s["citizen_id"]) is None)
        wife = self.person(lambda s: s["sex"] == "FEMALE" and self._spouse(s["citizen_id"]) is None)
        dopa = self.sources["dopa"]
        house_id = husband.state["house_id"]
        with dopa.change() as changes:
            number = self.certificate(changes, "marriage", house_id[:2])
            office = _OFFICE_BY_PROVINCE.get(house_id[:2], ref.SUB_DISTRICTS[0])
            changes.put(
                "marriage",
                number,
                {
                    "registration_number": number,
                    "event": "MARRIAGE",
                    "spouse_a_citizen_id": husband.key,
                    "spouse_b_citizen_id": wife.key,
                    "registered_on": today(),
                    "registrar_office": f"สำนักทะเบียน{office.district.th}",
                },
            )
            before = wife.state["name"]
            after = {**before, "prefix": ref.TITLE_MRS.th, "last_name": husband.state["name"]["last_name"]}
            name_en = wife.state.get("name_en")
            if name_en:
                name_en = {**name_en, "prefix": ref.TITLE_MRS.en, "last_name": husband.state["name_en"]["last_name"]}
            changes.put("person", wife.key, {**wife.state, "name": after, "name_en": name_en, "house_id": house_id})
            if after["last_name"] != before["last_name"]:
                certificate = self.certificate(changes, "name-change", house_id[:2])
                changes.put(
                    "name-change",
                    certificate,
                    {
                        "certificate_number": certificate,
                        "citizen_id": wife.key,
                        "kind": "SURNAME",
                        "previous_name": before,
                        "new_name": after,
                        "effective_on": today(),
                    },
                )
            changes.put(
                "residence",
                wife.key,
                {"citizen_id": wife.key, "house_id": house_id, "role": "RESIDENT", "moved_in_on": today()},
            )
            self._civil_act(changes, wife.key, "MOVE_IN", house_id)
        return "dopa.marriage"

    def move(self) -> str:
        mover = self.person()
        dopa = self.sources["dopa"]
        with dopa.change() as changes:
            if self.rng.random() < 0.3:
                sub = self.rng.choices(ref.SUB_DISTRICTS, ref.SUB_DISTRICT_WEIGHTS)[0]
                house_id = sub.office_code + f"{self.population.house_scrambler(self._next(changes, 'house')):07d}"
                changes.put(
                    "house",
                    house_id,
                    {
                        "house_id": house_id,
                        "address": {
                            "house_number": f"{self.rng.randint(1, 999)}/{self.rng.randint(1, 99)}",
                            "village_number": None,
                            "street": None,
                            "subdistrict": sub.sub_district.th,
                            "district": sub.district.th,
                            "province_code": sub.province_code,
                            "postcode": sub.postcode,
                        },
                        "house_type": self.rng.choice(("DETACHED_HOUSE", "TOWNHOUSE", "CONDOMINIUM_UNIT")),
                        "householder_citizen_id": mover.key,
                        "registered_on": today(),
                    },
                )
                role = "HOUSEHOLDER"
            else:
                destination = next(dopa.store.random_entities("house", self.rng))
                if destination is None or destination.key == mover.state["house_id"]:
                    raise NoCandidate("no other house")
                house_id, role = destination.key, "RESIDENT"
            changes.put(
                "residence",
                mover.key,
                {"citizen_id": mover.key, "house_id": house_id, "role": role, "moved_in_on": today()},
            )
            changes.put("person", mover.key, {**mover.state, "house_id": house_id})
            self._civil_act(changes, mover.key, "MOVE_IN", house_id)
        return "dopa.move"

    # --- DBD -------------------------------------------------------------------------------
    def company_registration(self) -> str:
        people = list({p.key: p for p in (self.person() for _ in range(self.rng.randint(1, 3)))}.values())
        dbd = self.sources["dbd"]
        word, (line, tsic) = self.rng.choice(ref.COMPANY_WORDS), self.rng.choice(ref.BUSINESS_LINES)
        head = self.sources["dopa"].store.get("house", people[0].state["house_id"])
        with dbd.change() as changes:
            ordinal = self._next(changes, "juristic")
            jid = juristic_id(f"{self.population.juristic_scrambler(ordinal):08d}")
            brand_th, brand_en = f"{word.th}{line.th} {ordinal % 1000}", f"{word.en} {line.en} {ordinal % 1000}"
            changes.put(
                "juristic-person",
                jid,
                {
                    "juristic_id": jid,
                    "name_th": f"บริษัท {brand_th} จำกัด",
                    "name_en": f"{brand_en} Co., Ltd.",
                    "juristic_type": "LIMITED_COMPANY",
                    "status": "ACTIVE",
                    "registered_on": today(),
                    "registered_capital": Decimal(self.rng.choice((1, 2, 5)) * 1_000_000),
                    "objectives": f"ประกอบกิจการตามรหัสประเภทธุรกิจ {tsic}",
                    "head_office": head.state["address"] if head else _any_address(self.rng),
                    "directors": [
                        {"citizen_id": p.key, "name": p.state["name"], "authorised_signatory": n == 0}
                        for n, p in enumerate(people)
                    ],
                    "partners": [],
                    "shareholders": [
                        {"holder": self.party(p), "shares": self.rng.randint(1, 50) * 1000} for p in people
                    ],
                },
            )
        return "dbd.registration"

    def director_change(self) -> str:
        company = self.company(lambda s: bool(s["directors"]))
        newcomer = self.person(lambda s: s["citizen_id"] not in {d["citizen_id"] for d in company.state["directors"]})
        directors = list(company.state["directors"])
        leaving = self.rng.randrange(len(directors))
        directors[leaving] = {
            "citizen_id": newcomer.key,
            "name": newcomer.state["name"],
            "authorised_signatory": directors[leaving]["authorised_signatory"],
        }
        with self.sources["dbd"].change() as changes:
            changes.put("juristic-person", company.key, {**company.state, "directors": directors})
        return "dbd.director-change"

    def dissolution(self) -> str:
        company = self.company(lambda s: not s["objectives"].endswith(ref.FINANCE_LINE[1]))
        with self.sources["dbd"].change() as changes:
            changes.put("juristic-person", company.key, {**company.state, "status": "DISSOLVED"})
        return "dbd.dissolution"

    def commercial_registration(self) -> str:
        owner = self.person()
        house = self.sources["dopa"].store.get("house", owner.state["house_id"])
        shop, (_, tsic) = self.rng.choice(ref.SHOP_LINES), self.rng.choice(ref.BUSINESS_LINES)
        with self.sources["dbd"].change() as changes:
            number = (owner.state["house_id"] or "1001")[
                :4
            ] + f"{self.population.commercial_scrambler(self._next(changes, 'commercial')):09d}"
            changes.put(
                "commercial-registration",
                number,
                {
                    "registration_number": number,
                    "owner": self.party(owner),
                    "trade_name": f"{shop.th}{owner.state['name']['first_name']}",
                    "business_category": tsic,
                    "business_address": house.state["address"] if house else _any_address(self.rng),
                    "capital": Decimal(self.rng.randint(1, 100) * 10_000),
                    "registered_on": today(),
                    "status": "ACTIVE",
                },
            )
        return "dbd.commercial-registration"

    # --- DOL -------------------------------------------------------------------------------
    def land_sale(self) -> str:
        # The dead do not sell: their titles wait for the inheritance.
        deed = self._random("dol", "title-deed", lambda s: self._parties_alive([o["owner"] for o in s["owners"]]))
        if self.rng.random() < 0.1:
            buyer = self.company_party(self.company())
        else:
            buyer = self.party(self.person(lambda s: s["citizen_id"] not in _owner_ids(deed.state)))
        price = Decimal(self.rng.randint(5, 2000) * 10_000)
        mortgages = []
        if self.rng.random() < 0.4:
            mortgages.append(
                {
                    "mortgagee": self.lender(),
                    "amount": (price * Decimal("0.8")).quantize(Decimal("1")),
                    "registered_on": today(),
                }
            )
        with self.sources["dol"].change() as changes:
            changes.put(
                "title-deed",
                deed.key,
                {
                    **deed.state,
                    "owners": [{"owner": buyer, "share_numerator": 1, "share_denominator": 1}],
                    "mortgages": mortgages,
                    "last_transfer": {"transfer_type": "SALE", "registered_on": today(), "declared_price": price},
                },
            )
        return "dol.sale"

    def inheritance(self) -> str:
        """Settle the next estate: the deceased's shares in every title pass to the heirs."""
        queue = self.estates["dol"]
        while queue:
            deceased = queue.popleft()
            deeds = [
                d
                for d in self.sources["dol"].store.referencing(deceased, "title-deed")
                if deceased in _owner_ids(d.state)
            ]
            if not deeds:
                continue
            heirs = [self.party(h) for h in self.heirs(deceased)]
            with self.sources["dol"].change() as changes:
                for deed in deeds:
                    changes.put(
                        "title-deed",
                        deed.key,
                        {
                            **deed.state,
                            "owners": _inherit(deed.state["owners"], deceased, heirs),
                            "last_transfer": {
                                "transfer_type": "INHERITANCE",
                                "registered_on": today(),
                                "declared_price": None,
                            },
                        },
                    )
            return "dol.inheritance"
        raise NoCandidate("no estate with land to settle")

    def mortgage(self) -> str:
        deed = self._random("dol", "title-deed", lambda s: not s["mortgages"])
        with self.sources["dol"].change() as changes:
            changes.put(
                "title-deed",
                deed.key,
                {
                    **deed.state,
                    "mortgages": [
                        {
                            "mortgagee": self.lender(),
                            "amount": Decimal(self.rng.randint(10, 500) * 10_000),
                            "registered_on": today(),
                        }
                    ],
                },
            )
        return "dol.mortgage"

    # --- DLT -------------------------------------------------------------------------------
    def vehicle_registration(self) -> str:
        owner = self.person()
        with self.sources["dlt"].change() as changes:
            ordinal = self._next(changes, "vehicle")
            entity = self.population.vehicle(self.rng, ordinal, today(), self.party(owner), owner.state["house_id"][:2])
            changes.put("vehicle", entity.key, entity.state)
        return "dlt.vehicle-registration"

    def vehicle_transfer(self) -> str:
        queue = self.estates["dlt"]
        while queue:
            deceased = queue.popleft()
            vehicles = [
                v
                for v in self.sources["dlt"].store.referencing(deceased, "vehicle")
                if deceased in {v.state["owner"]["id"], (v.state["possessor"] or {}).get("id")}
            ]
            if vehicles:
                heir = self.party(self.heirs(deceased)[0])
                with self.sources["dlt"].change() as changes:
                    for vehicle in vehicles:
                        changes.put("vehicle", vehicle.key, _transfer_vehicle(vehicle.state, deceased, heir))
                return "dlt.inheritance"
        vehicle = self._random(
            "dlt", "vehicle", lambda s: s["status"] == "ACTIVE" and self._parties_alive([s["owner"]])
        )
        buyer = self.party(self.person(lambda s: s["citizen_id"] != vehicle.state["owner"]["id"]))
        with self.sources["dlt"].change() as changes:
            changes.put("vehicle", vehicle.key, {**vehicle.state, "owner": buyer, "possessor": None})
        return "dlt.vehicle-transfer"

    def licence_renewal(self) -> str:
        licence = self._random(
            "dlt", "driving-licence", lambda s: s["status"] == "VALID" and self.alive(s["citizen_id"])
        )
        issued = today()
        with self.sources["dlt"].change() as changes:
            changes.put(
                "driving-licence",
                licence.key,
                {
                    **licence.state,
                    "issued_on": issued,
                    "expires_on": issued.replace(year=issued.year + 5, day=min(issued.day, 28)),
                },
            )
        return "dlt.licence-renewal"

    def licence_suspension(self) -> str:
        licence = self._random(
            "dlt", "driving-licence", lambda s: s["status"] == "VALID" and self.alive(s["citizen_id"])
        )
        with self.sources["dlt"].change() as changes:
            changes.put("driving-licence", licence.key, {**licence.state, "status": "SUSPENDED"})
        return "dlt.licence-suspension"

    def licence_issue(self) -> str:
        holder = self.person()
        with self.sources["dlt"].change() as changes:
            entity = self.population.licence(self.rng, self._next(changes, "licence"), holder.key, today())
            changes.put("driving-licence", entity.key, entity.state)
        return "dlt.licence-issue"


def _owner_ids(deed: dict[str, Any]) -> set[str]:
    return {o["owner"]["id"] for o in deed["owners"]}


def _inherit(owners: list[dict[str, Any]], deceased: str, heirs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The owners after the deceased's share is split equally among the heirs; shares still sum to 1."""
    shares: dict[str, Fraction] = {}
    parties: dict[str, dict[str, Any]] = {}
    for item in owners:
        share = Fraction(item["share_numerator"], item["share_denominator"])
        if item["owner"]["id"] == deceased:
            for heir in heirs:
                shares[heir["id"]] = shares.get(heir["id"], Fraction(0)) + share / len(heirs)
                parties[heir["id"]] = heir
        else:
            shares[item["owner"]["id"]] = shares.get(item["owner"]["id"], Fraction(0)) + share
            parties[item["owner"]["id"]] = item["owner"]
    common = lcm(*(s.denominator for s in shares.values()))
    return [
        {"owner": parties[i], "share_numerator": int(s * common), "share_denominator": common}
        for i, s in shares.items()
    ]


def _transfer_vehicle(state: dict[str, Any], deceased: str, heir: dict[str, Any]) -> dict[str, Any]:
    if state["owner"]["id"] == deceased:
        return {
            **state,
            "owner": heir,
            "possessor": None if (state["possessor"] or {}).get("id") == heir["id"] else state["possessor"],
        }
    return {**state, "possessor": heir}


def _any_address(rng: random.Random) -> dict[str, Any]:
    sub = rng.choice(ref.SUB_DISTRICTS)
    return {
        "house_number": str(rng.randint(1, 999)),
        "village_number": None,
        "street": None,
        "subdistrict": sub.sub_district.th,
        "district": sub.district.th,
        "province_code": sub.province_code,
        "postcode": sub.postcode,
    }
