"""Domain validation of decoded events: the rules a schema cannot state (check digits, dates, keys).

Separate from decoding so the codec's hot path stays a thin layer over fastavro, and so a consumer
can decide where validation happens; the stream processor runs both, in that order. `check_event`
is the stream's: the rules as plain functions (schemas.rules), a fraction of the cost of
`validate_event`, which builds the dataset's model and gives it to whoever wants the object.
"""

from __future__ import annotations

from pydantic import ValidationError

from schemas.codec import Decoded
from schemas.errors import DomainRuleViolation, UnknownSchema
from schemas.models import EVENT_MODELS
from schemas.models.envelope import ChangeEvent
from schemas.rules import DATASETS, problems


def violations(error: ValidationError) -> tuple[str, ...]:
    """Each failed rule as `field.path: reason`, the form that goes into a dead-letter record."""
    found = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(event)"
        message = item["msg"].removeprefix("Value error, ")
        found.append(f"{where}: {message}")
    return tuple(found)


def validate_event(decoded: Decoded) -> ChangeEvent:
    """The decoded record as its dataset's model; a broken rule raises DomainRuleViolation."""
    try:
        model = EVENT_MODELS[decoded.schema_name]
    except KeyError:
        raise UnknownSchema(f"no model for {decoded.schema_name}") from None
    try:
        return model.model_validate(decoded.record)
    except ValidationError as exc:
        found = violations(exc)
        raise DomainRuleViolation(f"{decoded.schema_name}: " + "; ".join(found), found) from None


def check_event(decoded: Decoded) -> None:
    """Raise DomainRuleViolation, worded as validate_event's, when a rule is broken."""
    if decoded.schema_name not in DATASETS:
        raise UnknownSchema(f"no rules for {decoded.schema_name}")
    found = problems(decoded.schema_name, decoded.record)
    if found:
        raise DomainRuleViolation(f"{decoded.schema_name}: " + "; ".join(found), tuple(found))
