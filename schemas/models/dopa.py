"""Civil registry (DOPA) datasets 33-38, 40, 41."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from schemas.models.common import (
    Address,
    CitizenId,
    ExpiryDate,
    FactDate,
    HouseId,
    KeyText,
    Payload,
    PersonName,
    ProvinceCode,
    Record,
    Sex,
    Text,
    require,
)
from schemas.models.envelope import event_model


class PersonStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DECEASED = "DECEASED"
    EMIGRATED = "EMIGRATED"


class IdCard(Record):
    card_request_number: Text
    issued_on: FactDate
    expires_on: ExpiryDate | None = None

    @model_validator(mode="after")
    def _expires_after_issue(self) -> IdCard:
        require(self.expires_on is None or self.expires_on > self.issued_on, "card expires_on is not after issued_on")
        return self


class Person(Payload):
    AVRO_NAME = "th.go.gdx.dopa.Person"
    AGENCY, DATASET, CODES = "dopa", "person", (33,)

    citizen_id: CitizenId
    name: PersonName
    name_en: PersonName | None = None
    sex: Sex
    date_of_birth: FactDate
    nationality: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    house_id: HouseId | None = None
    card: IdCard | None = None
    status: PersonStatus

    def entity_key(self) -> str:
        return self.citizen_id

    def citizen_ids(self) -> set[str]:
        return {self.citizen_id}


class HouseType(StrEnum):
    DETACHED_HOUSE = "DETACHED_HOUSE"
    TOWNHOUSE = "TOWNHOUSE"
    SHOPHOUSE = "SHOPHOUSE"
    CONDOMINIUM_UNIT = "CONDOMINIUM_UNIT"
    OTHER_BUILDING = "OTHER_BUILDING"


class House(Payload):
    AVRO_NAME = "th.go.gdx.dopa.House"
    AGENCY, DATASET, CODES = "dopa", "house", (34,)

    house_id: HouseId
    address: Address
    house_type: HouseType
    householder_citizen_id: CitizenId | None = None
    registered_on: FactDate

    def entity_key(self) -> str:
        return self.house_id

    def citizen_ids(self) -> set[str]:
        return {self.householder_citizen_id} if self.householder_citizen_id else set()


class ResidentRole(StrEnum):
    HOUSEHOLDER = "HOUSEHOLDER"
    RESIDENT = "RESIDENT"


class Residence(Payload):
    AVRO_NAME = "th.go.gdx.dopa.Residence"
    AGENCY, DATASET, CODES = "dopa", "residence", (35,)

    citizen_id: CitizenId
    house_id: HouseId
    role: ResidentRole
    moved_in_on: FactDate

    def entity_key(self) -> str:
        return self.citizen_id

    def citizen_ids(self) -> set[str]:
        return {self.citizen_id}


class RegistrationAct(StrEnum):
    MOVE_IN = "MOVE_IN"
    MOVE_OUT = "MOVE_OUT"
    ADD_NAME = "ADD_NAME"
    REMOVE_NAME = "REMOVE_NAME"
    CORRECTION = "CORRECTION"


class CivilRegistration(Payload):
    AVRO_NAME = "th.go.gdx.dopa.CivilRegistration"
    AGENCY, DATASET, CODES = "dopa", "civil-registration", (36,)

    registration_number: KeyText
    citizen_id: CitizenId
    act: RegistrationAct
    house_id: HouseId | None = None
    registered_on: FactDate
    registrar_office: Text

    @model_validator(mode="after")
    def _moves_name_a_house(self) -> CivilRegistration:
        moves = (RegistrationAct.MOVE_IN, RegistrationAct.MOVE_OUT)
        require(self.act not in moves or self.house_id is not None, f"a {self.act} names the house")
        return self

    def entity_key(self) -> str:
        return self.registration_number

    def citizen_ids(self) -> set[str]:
        return {self.citizen_id}


class Birth(Payload):
    AVRO_NAME = "th.go.gdx.dopa.Birth"
    AGENCY, DATASET, CODES = "dopa", "birth", (37,)

    certificate_number: KeyText
    child_citizen_id: CitizenId
    child_name: PersonName
    sex: Sex
    date_of_birth: FactDate
    birth_province_code: ProvinceCode
    mother_citizen_id: CitizenId | None = None
    father_citizen_id: CitizenId | None = None
    registered_on: FactDate

    @model_validator(mode="after")
    def _registered_after_birth(self) -> Birth:
        require(self.registered_on >= self.date_of_birth, "registered_on is before date_of_birth")
        parents = {self.mother_citizen_id, self.father_citizen_id} - {None}
        require(self.child_citizen_id not in parents, "the child is listed as its own parent")
        return self

    def entity_key(self) -> str:
        return self.certificate_number

    def citizen_ids(self) -> set[str]:
        return {i for i in (self.child_citizen_id, self.mother_citizen_id, self.father_citizen_id) if i}


class Death(Payload):
    AVRO_NAME = "th.go.gdx.dopa.Death"
    AGENCY, DATASET, CODES = "dopa", "death", (38,)

    certificate_number: KeyText
    citizen_id: CitizenId
    date_of_death: FactDate
    death_province_code: ProvinceCode
    cause: str | None = None
    informant_citizen_id: CitizenId | None = None
    registered_on: FactDate

    @model_validator(mode="after")
    def _registered_after_death(self) -> Death:
        require(self.registered_on >= self.date_of_death, "registered_on is before date_of_death")
        return self

    def entity_key(self) -> str:
        return self.certificate_number

    def citizen_ids(self) -> set[str]:
        return {i for i in (self.citizen_id, self.informant_citizen_id) if i}


class MaritalEvent(StrEnum):
    MARRIAGE = "MARRIAGE"
    DIVORCE = "DIVORCE"


class Marriage(Payload):
    AVRO_NAME = "th.go.gdx.dopa.Marriage"
    AGENCY, DATASET, CODES = "dopa", "marriage", (40,)

    registration_number: KeyText
    event: MaritalEvent
    spouse_a_citizen_id: CitizenId
    spouse_b_citizen_id: CitizenId
    registered_on: FactDate
    registrar_office: Text

    @model_validator(mode="after")
    def _two_people(self) -> Marriage:
        require(self.spouse_a_citizen_id != self.spouse_b_citizen_id, "both spouses have the same citizen ID")
        return self

    def entity_key(self) -> str:
        return self.registration_number

    def citizen_ids(self) -> set[str]:
        return {self.spouse_a_citizen_id, self.spouse_b_citizen_id}


class NameChangeKind(StrEnum):
    FIRST_NAME = "FIRST_NAME"
    SURNAME = "SURNAME"
    BOTH = "BOTH"


class NameChange(Payload):
    AVRO_NAME = "th.go.gdx.dopa.NameChange"
    AGENCY, DATASET, CODES = "dopa", "name-change", (41,)

    certificate_number: KeyText
    citizen_id: CitizenId
    kind: NameChangeKind
    previous_name: PersonName
    new_name: PersonName
    effective_on: FactDate

    @model_validator(mode="after")
    def _kind_matches_names(self) -> NameChange:
        first = self.previous_name.first_name != self.new_name.first_name
        last = self.previous_name.last_name != self.new_name.last_name
        actual = {(True, False): "FIRST_NAME", (False, True): "SURNAME", (True, True): "BOTH"}.get((first, last))
        require(actual == self.kind, f"kind {self.kind} but the names show {actual or 'no change'}")
        return self

    def entity_key(self) -> str:
        return self.certificate_number

    def citizen_ids(self) -> set[str]:
        return {self.citizen_id}


PersonEvent = event_model(Person)
HouseEvent = event_model(House)
ResidenceEvent = event_model(Residence)
CivilRegistrationEvent = event_model(CivilRegistration)
BirthEvent = event_model(Birth)
DeathEvent = event_model(Death)
MarriageEvent = event_model(Marriage)
NameChangeEvent = event_model(NameChange)
