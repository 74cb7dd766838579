"""Fault injection: the mistakes real agency integrations make, off by default, each counted.

Every knob is a probability. Faults that must be rejected downstream (malformed bytes, an invalid
check digit) are injected as extra events beside the correct one, so the agency's ground truth stays
reachable; faults that a correct backbone absorbs (a duplicate, a stale version arriving late, a
reference published before its referent, an older writer schema) reshape the real events. Each
fault is counted in the same transaction that writes it, so the counts and the outbox agree even
across a crash.

| knob          | unit of the rate                  | what is counted                                       |
|---------------|-----------------------------------|-------------------------------------------------------|
| duplicate     | per event                         | events sent twice (same event id, same bytes)         |
| out_of_order  | per UPDATE event                  | versions delivered after a newer version of the entity|
| malformed     | per event                         | extra records whose bytes do not decode               |
| invalid_id    | per event                         | extra events carrying an ID with a wrong check digit  |
| late_arrival  | per change creating an entity that | events published before the entity they reference    |
|               | other events of the change refer to |                                                     |
| old_schema    | per event of a dataset with an older released schema | events written with the older schema |
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, fields

from agencies.errors import SimulationError
from agencies.events import NO_STAMP, Change, EventBuilder, OutboxEvent, references, replace_value
from agencies.ids import with_wrong_check_digit

KINDS = ("duplicate", "out_of_order", "malformed", "invalid_id", "late_arrival", "old_schema")


@dataclass(frozen=True)
class FaultRates:
    duplicate: float = 0.0
    out_of_order: float = 0.0
    malformed: float = 0.0
    invalid_id: float = 0.0
    late_arrival: float = 0.0
    old_schema: float = 0.0

    def __post_init__(self) -> None:
        for item in fields(self):
            rate = getattr(self, item.name)
            if not 0.0 <= rate <= 1.0:
                raise SimulationError(f"fault rate {item.name}={rate} is not a probability", "use a value from 0 to 1")

    @property
    def any(self) -> bool:
        return any(getattr(self, k) for k in KINDS)


class FaultInjector:
    """Applies the knobs to one transaction's events with its own seeded generator."""

    def __init__(self, rates: FaultRates, rng: random.Random) -> None:
        self.rates = rates
        self.rng = rng

    def _hit(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def shape(
        self,
        changes: list[Change],
        builder: EventBuilder,
        source_ms: int,
        reissue: Callable[[Change], Change] | None,
    ) -> tuple[list[OutboxEvent], dict[str, int]]:
        """The outbox rows for one transaction's changes, and the faults injected into them.

        `reissue` stores one more version of an entity (for out-of-order delivery); the bulk load
        passes None, because snapshots have no earlier version to overtake.
        """
        counts = dict.fromkeys(KINDS, 0)
        events: list[OutboxEvent] = []
        for change in changes:
            writer = None
            older = builder.older_schema(change.dataset, change.state) if self.rates.old_schema else None
            if older is not None and self._hit(self.rates.old_schema):
                writer = older
                counts["old_schema"] += 1
            event = builder.build(change, source_ms, writer)
            if reissue is not None and change.change_type == "UPDATE" and self._hit(self.rates.out_of_order):
                newer = builder.build(reissue(change), source_ms)
                events.extend((newer, event))  # version v+1 leaves before version v
                counts["out_of_order"] += 1
            else:
                events.append(event)
        if reissue is not None and self.rates.late_arrival:
            events = self._late_arrivals(events, counts)
        shaped: list[OutboxEvent] = []
        for event in events:
            if self._hit(self.rates.invalid_id):
                wrong = self._with_invalid_id(event, builder, source_ms)
                if wrong is not None:
                    shaped.append(wrong)
                    counts["invalid_id"] += 1
            if self._hit(self.rates.malformed):
                shaped.append(self._malformed(event, builder))
                counts["malformed"] += 1
            if self._hit(self.rates.duplicate):
                event.copies = 2
                counts["duplicate"] += 1
            shaped.append(event)
        return shaped, counts

    def _late_arrivals(self, events: list[OutboxEvent], counts: dict[str, int]) -> list[OutboxEvent]:
        """Move newly created entities' events behind the events that refer to them."""
        original = late_pairs(events)
        for event in list(events):
            change = event.change
            if change is None or change.change_type != "CREATE":
                continue
            position = events.index(event)
            overtaking = [other for other in events[position + 1 :] if _refers_to(other, change.key)]
            if overtaking and self._hit(self.rates.late_arrival):
                events.remove(event)
                events.insert(events.index(overtaking[-1]) + 1, event)
        counts["late_arrival"] += late_pairs(events) - original
        return events

    def _with_invalid_id(self, event: OutboxEvent, builder: EventBuilder, source_ms: int) -> OutboxEvent | None:
        """A copy of the event (new event id) with one 13-digit ID given a wrong check digit."""
        change = event.change
        if change is None or change.state is None:
            return None
        citizens, companies = change.mentions
        mentioned = [*citizens, *companies]
        if not mentioned:
            return None
        target = change.key if change.key in mentioned else mentioned[0]
        wrong = with_wrong_check_digit(target)
        state = replace_value(change.state, target, wrong)
        bad = Change(
            change.dataset,
            wrong if target == change.key else change.key,
            change.version,
            change.change_type,
            state,
            references(state),
        )
        return builder.build(bad, source_ms)

    def _malformed(self, event: OutboxEvent, builder: EventBuilder) -> OutboxEvent:
        """Bytes that cannot decode: a truncated body, or a value without the wire format's header."""
        event_id, _ = builder.new_ids()
        if self.rng.random() < 0.5:
            cut = self.rng.randrange(len(event.value) // 2, len(event.value) - 1)
            value = event.value[:cut]
        else:
            value = b"{" + event.value[10:40] + b"}"
        return OutboxEvent(event_id, event.topic, event.key, value, NO_STAMP)


def late_pairs(events: list[OutboxEvent]) -> int:
    """(event, created entity) pairs where the event refers to the entity before its CREATE."""
    pairs = 0
    for later, created in enumerate(events):
        if created.change is not None and created.change.change_type == "CREATE":
            pairs += sum(1 for earlier in events[:later] if _refers_to(earlier, created.change.key))
    return pairs


def _refers_to(event: OutboxEvent, key: str) -> bool:
    change = event.change
    return change is not None and change.state is not None and change.key != key and _mentions(change.state, key)


def _mentions(node: object, value: str) -> bool:
    if isinstance(node, dict):
        return any(_mentions(v, value) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, value) for v in node)
    return node == value
