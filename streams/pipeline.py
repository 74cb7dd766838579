"""The stream processor's logic, as plain Python: verify → decode → validate → dedupe → version guard → apply.

The faust worker (streams/worker.py) only feeds batches of Kafka records in and carries the
results out (dead letters, notifications, metrics, offsets), so everything here runs in tests
without a broker. A record that cannot be applied becomes a DeadLetter holding its original bytes
and headers, a reason code and its source offset; the batch goes on without it.

Nothing an event claims about itself is taken on its word: its signature must verify under a key
the trust list holds for the agency that owns the topic (`bad-signature` otherwise), the schema it
names must be the topic's, its `source_agency` the topic's agency, and its version may not leap
further past the held one than `max_version_jump` (`version-jump`): a leaked key could otherwise
make every genuine later version "stale" with one event at 2^63-1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from linkage.index_event import IndexEvent
from linkage.index_store import APPLIED, VERSION_JUMP, BatchResult, IndexStore
from schemas.catalog import SchemaCatalog
from schemas.codec import Codec, SchemaById
from schemas.errors import CodecError
from schemas.event_signatures import Headers
from schemas.validation import check_event

TOMBSTONE = "tombstone"
DEAD_LETTER = "dead-letter"
SCHEMA_MISMATCH = "schema-mismatch"
APPLY_FAILED = "apply-failed"
BAD_SIGNATURE = "bad-signature"

# Codec reasons (precise, in the dead letter's headers) folded into the metric's fixed vocabulary.
METRIC_REASON = {
    "not-wire-framed": "undecodable",
    "body-mismatch": "undecodable",
    "unknown-schema-id": "schema_unknown",
    "domain-rule": "invalid",
    "unknown-schema": "invalid",
    SCHEMA_MISMATCH: "invalid",
    APPLY_FAILED: "apply_failed",
    BAD_SIGNATURE: "bad_signature",
    VERSION_JUMP: "version_jump",
}


class Verifier(Protocol):
    """Who signed an event (`streams.signature_check.SignatureCheck`): the key id, None when it is
    unsigned and the agency's policy allows that, BadSignature otherwise."""

    def signed_by(self, agency: str, value: bytes, headers: Headers, at_ms: int) -> str | None: ...


@dataclass(slots=True)
class SourceRecord:
    """One Kafka record as the worker received it. Not frozen: a frozen dataclass sets each field
    through object.__setattr__, a cost the worker paid for every record it consumed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    """A header's value may be null on the wire; it is kept null, and so is passed on to a dead letter."""
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: SourceRecord
    dataset: str
    reason: str
    detail: str

    def headers(self) -> list[tuple[str, bytes | None]]:
        """The original headers, then where the record came from and why it failed."""
        return [
            *self.record.headers,
            ("gdx-dlq-reason", self.reason.encode()),
            ("gdx-dlq-detail", self.detail[:2000].encode()),
            ("gdx-source-topic", self.record.topic.encode()),
            ("gdx-source-partition", str(self.record.partition).encode()),
            ("gdx-source-offset", str(self.record.offset).encode()),
        ]


@dataclass
class PipelineResult:
    """Per input record, in order: applied / duplicate / stale / tombstone / dead-letter."""

    outcomes: list[str] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    batch: BatchResult = field(default_factory=BatchResult)

    def extend(self, later: PipelineResult) -> None:
        """Append the result of the records that follow this result's ones."""
        self.outcomes += later.outcomes
        self.dead_letters += later.dead_letters
        self.batch.extend(later.batch)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch checked and built, not yet applied: the outcome known so far of each record in
    order (tombstone, dead letter, or applied-if-the-index-agrees), the dead letters, and the index
    events with the position of each in the batch."""

    batch: Sequence[SourceRecord]
    outcomes: tuple[str, ...]
    dead_letters: tuple[DeadLetter, ...]
    slots: tuple[int, ...]
    events: tuple[IndexEvent, ...]


class Pipeline:
    def __init__(
        self,
        catalog: SchemaCatalog,
        store: IndexStore,
        topic_datasets: dict[str, str],
        verifier: Verifier,
        schema_by_id: SchemaById,
    ) -> None:
        """`topic_datasets` maps each physical change topic to its dataset (`<agency>.<dataset>`);
        `schema_by_id` is the schema registry (`streams.registry_schemas`)."""
        self.codec = Codec(catalog, schema_by_id)
        self.store = store
        self.topic_datasets = topic_datasets
        self.verifier = verifier
        self._schema_of = {f"{agency}.{dataset}": name for (agency, dataset), name in catalog.datasets.items()}

    def process(self, batch: Sequence[SourceRecord]) -> PipelineResult:
        return self.apply(self.prepare(batch))

    def prepare(self, batch: Sequence[SourceRecord]) -> Prepared:
        """Everything before the index: verify, decode, validate, build. It reads no state, so the
        worker prepares the next batch while the index applies this one."""
        outcomes: list[str] = []
        dead_letters: list[DeadLetter] = []
        slots: list[int] = []
        events: list[IndexEvent] = []
        for record in batch:
            dataset = self.topic_datasets[record.topic]
            if record.value is None:
                outcomes.append(TOMBSTONE)
                continue
            try:
                event = self._event(dataset, record, record.value)
            except CodecError as exc:
                outcomes.append(DEAD_LETTER)
                dead_letters.append(DeadLetter(record, dataset, exc.reason, str(exc)))
                continue
            slots.append(len(outcomes))
            outcomes.append(APPLIED)
            events.append(event)
        return Prepared(batch, tuple(outcomes), tuple(dead_letters), tuple(slots), tuple(events))

    def apply(self, prepared: Prepared) -> PipelineResult:
        """The prepared batch into the index, in one transaction."""
        result = PipelineResult(list(prepared.outcomes), list(prepared.dead_letters))
        result.batch = self.store.apply(prepared.events)
        for slot, event, outcome in zip(prepared.slots, prepared.events, result.batch.outcomes, strict=True):
            if outcome == VERSION_JUMP:
                outcome = DEAD_LETTER
                limit = self.store.max_version_jump
                detail = f"entity_version {event.entity_version} leaps more than {limit} past the version held"
                result.dead_letters.append(DeadLetter(prepared.batch[slot], event.dataset, VERSION_JUMP, detail))
            result.outcomes[slot] = outcome
        return result

    def refused(self, record: SourceRecord, detail: str) -> PipelineResult:
        """The result of a record the index refused to take for a reason that is not transient."""
        dataset = self.topic_datasets[record.topic]
        return PipelineResult([DEAD_LETTER], [DeadLetter(record, dataset, APPLY_FAILED, detail)])

    def _event(self, dataset: str, record: SourceRecord, value: bytes) -> IndexEvent:
        agency = dataset.split(".", 1)[0]
        signed_by = self.verifier.signed_by(agency, value, record.headers, record.timestamp_ms)
        decoded = self.codec.decode(value)
        if decoded.schema_name != self._schema_of[dataset]:
            raise _SchemaMismatch(f"{decoded.schema_name} on the topic of {dataset}")
        if str(decoded.record["source_agency"]).lower() != agency:
            raise _SchemaMismatch(f"source_agency {decoded.record['source_agency']} on the topic of {dataset}")
        check_event(decoded)
        return IndexEvent.from_record(dataset, decoded.record, signed_by)


class _SchemaMismatch(CodecError):
    """An event of another dataset's schema on this dataset's topic: a producer wrote to the wrong topic."""

    reason = SCHEMA_MISMATCH
