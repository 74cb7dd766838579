"""Schema ids for benchmarks that measure the pipeline without a registry: numbered as a registry
would hand them out, resolved from the catalog. The registry answers an id once per process, so
the steady state these benchmarks measure is the codec's cache either way."""

from __future__ import annotations

from schemas.catalog import SchemaCatalog
from schemas.codec import HEADER_SIZE, SchemaById, to_wire
from schemas.fingerprint import schema_json


class CatalogIds:
    def __init__(self, catalog: SchemaCatalog) -> None:
        self.ids = {fp: number for number, fp in enumerate(sorted(catalog.by_fingerprint), start=1)}
        self._texts = {number: schema_json(catalog.by_fingerprint[fp].schema) for fp, number in self.ids.items()}
        self.schema_by_id: SchemaById = self._texts.get

    def wire(self, stored: bytes) -> bytes:
        """A stored event in the wire format, under these ids."""
        return to_wire(stored, self.ids[stored[2:HEADER_SIZE]])
