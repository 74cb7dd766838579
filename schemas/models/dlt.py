"""Department of Land Transport (DLT) datasets 30 and 31."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from schemas.models.common import (
    CitizenId,
    ExpiryDate,
    FactDate,
    Party,
    PartyKind,
    Payload,
    ProvinceCode,
    Record,
    Text,
    party_ids,
    require,
)
from schemas.models.envelope import event_model


class Plate(Record):
    prefix: Annotated[str, Field(pattern=r"^[0-9]?[\u0E01-\u0E2E]{1,2}$")]
    number: Annotated[int, Field(ge=1, le=9999)]
    province_code: ProvinceCode


class VehicleClass(StrEnum):
    SEDAN = "SEDAN"
    MICROBUS = "MICROBUS"
    PICKUP = "PICKUP"
    MOTORCYCLE = "MOTORCYCLE"
    TRUCK = "TRUCK"
    BUS = "BUS"
    TRACTOR = "TRACTOR"
    TRAILER = "TRAILER"


class VehicleStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    DEREGISTERED = "DEREGISTERED"


class Vehicle(Payload):
    AVRO_NAME = "th.go.gdx.dlt.Vehicle"
    AGENCY, DATASET, CODES = "dlt", "vehicle", (30,)

    chassis_number: Annotated[str, Field(pattern=r"^[0-9A-Z-]{5,30}$")]
    plate: Plate
    vehicle_class: VehicleClass
    make: Text
    model: Text
    colour: Text
    engine_cc: Annotated[int, Field(gt=0)] | None = None
    first_registered_on: FactDate
    owner: Party
    possessor: Party | None = None
    status: VehicleStatus
    engine_number: str | None = None

    @model_validator(mode="after")
    def _possessor_differs(self) -> Vehicle:
        require(self.possessor is None or self.possessor.id != self.owner.id, "possessor is the owner; leave it null")
        return self

    def entity_key(self) -> str:
        return self.chassis_number

    def citizen_ids(self) -> set[str]:
        return party_ids([self.owner, self.possessor], PartyKind.CITIZEN)

    def juristic_ids(self) -> set[str]:
        return party_ids([self.owner, self.possessor], PartyKind.JURISTIC_PERSON)


class LicenceClass(StrEnum):
    TEMPORARY_CAR = "TEMPORARY_CAR"
    TEMPORARY_MOTORCYCLE = "TEMPORARY_MOTORCYCLE"
    PRIVATE_CAR = "PRIVATE_CAR"
    PRIVATE_MOTORCYCLE = "PRIVATE_MOTORCYCLE"
    PRIVATE_TRICYCLE = "PRIVATE_TRICYCLE"
    PUBLIC_CAR = "PUBLIC_CAR"
    PUBLIC_MOTORCYCLE = "PUBLIC_MOTORCYCLE"
    INTERNATIONAL = "INTERNATIONAL"


class LicenceStatus(StrEnum):
    VALID = "VALID"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"


class DrivingLicence(Payload):
    AVRO_NAME = "th.go.gdx.dlt.DrivingLicence"
    AGENCY, DATASET, CODES = "dlt", "driving-licence", (31,)

    licence_number: Annotated[str, Field(pattern=r"^[0-9]{8}$")]
    citizen_id: CitizenId
    licence_class: LicenceClass
    issued_on: FactDate
    expires_on: ExpiryDate
    status: LicenceStatus

    @model_validator(mode="after")
    def _expires_after_issue(self) -> DrivingLicence:
        require(self.expires_on > self.issued_on, "expires_on is not after issued_on")
        return self

    def entity_key(self) -> str:
        return self.licence_number

    def citizen_ids(self) -> set[str]:
        return {self.citizen_id}


VehicleEvent = event_model(Vehicle)
DrivingLicenceEvent = event_model(DrivingLicence)
