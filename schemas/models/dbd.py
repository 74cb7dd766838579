"""Business registry (DBD) datasets 15, 16 and 18."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from schemas.models.common import (
    Address,
    Baht,
    CitizenId,
    FactDate,
    JuristicId,
    KeyText,
    Party,
    PartyKind,
    Payload,
    PersonName,
    Record,
    Text,
    party_ids,
    require,
)
from schemas.models.envelope import event_model


class JuristicType(StrEnum):
    LIMITED_COMPANY = "LIMITED_COMPANY"
    PUBLIC_LIMITED_COMPANY = "PUBLIC_LIMITED_COMPANY"
    REGISTERED_ORDINARY_PARTNERSHIP = "REGISTERED_ORDINARY_PARTNERSHIP"
    LIMITED_PARTNERSHIP = "LIMITED_PARTNERSHIP"

    @property
    def is_company(self) -> bool:
        return self in (JuristicType.LIMITED_COMPANY, JuristicType.PUBLIC_LIMITED_COMPANY)


class JuristicStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISSOLVED = "DISSOLVED"
    LIQUIDATED = "LIQUIDATED"
    STRUCK_OFF = "STRUCK_OFF"


class Director(Record):
    citizen_id: CitizenId
    name: PersonName
    authorised_signatory: bool


class PartnerLiability(StrEnum):
    LIMITED = "LIMITED"
    UNLIMITED = "UNLIMITED"


class Partner(Record):
    citizen_id: CitizenId
    name: PersonName
    liability: PartnerLiability
    contribution: Baht


class Shareholder(Record):
    holder: Party
    shares: Annotated[int, Field(gt=0)]


class JuristicPerson(Payload):
    AVRO_NAME = "th.go.gdx.dbd.JuristicPerson"
    AGENCY, DATASET, CODES = "dbd", "juristic-person", (15, 16)

    juristic_id: JuristicId
    name_th: Text
    name_en: str | None = None
    juristic_type: JuristicType
    status: JuristicStatus
    registered_on: FactDate
    registered_capital: Baht
    objectives: str
    head_office: Address
    directors: list[Director]
    partners: list[Partner]
    shareholders: list[Shareholder]

    @model_validator(mode="after")
    def _members_fit_the_form(self) -> JuristicPerson:
        if self.juristic_type.is_company:
            require(not self.partners, "a company has no partners")
            require(bool(self.directors), "a company has at least one director")
        else:
            require(not self.shareholders, "a partnership has no shareholders")
            require(len(self.partners) >= 2, "a partnership has at least two partners")
            if self.juristic_type is JuristicType.LIMITED_PARTNERSHIP:
                require(
                    any(p.liability is PartnerLiability.UNLIMITED for p in self.partners),
                    "a limited partnership has at least one partner with unlimited liability",
                )
        require(
            self.juristic_id not in party_ids([s.holder for s in self.shareholders], PartyKind.JURISTIC_PERSON),
            "the juristic person holds its own shares",
        )
        return self

    def entity_key(self) -> str:
        return self.juristic_id

    def citizen_ids(self) -> set[str]:
        people = {d.citizen_id for d in self.directors} | {p.citizen_id for p in self.partners}
        return people | party_ids([s.holder for s in self.shareholders], PartyKind.CITIZEN)

    def juristic_ids(self) -> set[str]:
        return {self.juristic_id} | party_ids([s.holder for s in self.shareholders], PartyKind.JURISTIC_PERSON)


class CommercialStatus(StrEnum):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"


class CommercialRegistration(Payload):
    AVRO_NAME = "th.go.gdx.dbd.CommercialRegistration"
    AGENCY, DATASET, CODES = "dbd", "commercial-registration", (18,)

    registration_number: KeyText
    owner: Party
    trade_name: Text
    business_category: Annotated[str, Field(pattern=r"^\d{5}$")]
    business_address: Address
    capital: Baht
    registered_on: FactDate
    status: CommercialStatus

    def entity_key(self) -> str:
        return self.registration_number

    def citizen_ids(self) -> set[str]:
        return party_ids([self.owner], PartyKind.CITIZEN)

    def juristic_ids(self) -> set[str]:
        return party_ids([self.owner], PartyKind.JURISTIC_PERSON)


JuristicPersonEvent = event_model(JuristicPerson)
CommercialRegistrationEvent = event_model(CommercialRegistration)
