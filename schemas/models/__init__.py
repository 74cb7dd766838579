"""Pydantic models mirroring the event schemas, with the domain rules Avro cannot express."""

from __future__ import annotations

from schemas.models import dbd, dlt, dol, dopa
from schemas.models.envelope import ChangeEvent

EVENT_MODELS: dict[str, type[ChangeEvent]] = {
    model.avro_name(): model
    for module in (dopa, dbd, dol, dlt)
    for model in vars(module).values()
    if isinstance(model, type) and issubclass(model, ChangeEvent) and model is not ChangeEvent
}
