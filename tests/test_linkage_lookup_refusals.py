"""Refusals are cheap: callers without a key are rate-limited, a 429 costs no audit record of its
own (the caller's next record counts it), bodies are capped before anything parses them, and verify
cannot be asked about one person without end."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from linkage.lookup_service import UNAUTHENTICATED_BURST, VERIFY_ATTEMPTS_PER_HOUR
from linkage.rate_limit import PRUNE_EVERY, RateLimiter
from schemas.examples import MALEE, SOMCHAI
from streams.settings import Settings
from tests.support.lookup_support import KEYS, PROBLEM_KEYS, audit_records, audited, get

pytestmark = pytest.mark.kafka
PERSON = f"/v1/citizens/{SOMCHAI}"


def _unauthenticated_records(settings: Settings) -> int:
    return sum(
        b'"consumer":"unauthenticated"' in (value or b"")
        for messages in audit_records(settings).values()
        for _offset, value in messages
    )


def test_a_flood_without_a_key_is_limited_and_costs_the_trail_a_bounded_number_of_records(
    lookup: tuple[Settings, TestClient],
) -> None:
    settings, client = lookup
    statuses = [get(client, PERSON, None, "estate-tax", key=f"guess-{i}").status_code for i in range(60)]
    assert statuses[:UNAUTHENTICATED_BURST] == [401] * UNAUTHENTICATED_BURST
    limited = statuses.count(429)
    assert limited >= 30 and set(statuses) == {401, 429}
    assert _unauthenticated_records(settings) == 60 - limited  # one record per token, none per 429


def test_the_next_audited_record_counts_the_429s_before_it(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    statuses = [get(client, PERSON, None, "estate-tax", key="guess").status_code for _ in range(40)]
    assert 429 in statuses
    answer = get(client, PERSON, None, "estate-tax", key="guess")
    while answer.status_code == 429:
        statuses.append(429)
        answer = get(client, PERSON, None, "estate-tax", key="guess")
    assert answer.status_code == 401
    since_last_record = len(statuses) - 1 - max(i for i, status in enumerate(statuses) if status == 401)
    assert audited(settings, answer.json()["request_id"])["rate_limited_since"] == since_last_record


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"citizen_id": "' + b"1" * 100_000 + b'"}', {}, 413),
        (iter([b'{"citizen_id": ', b'"1"}']), {}, 411),
    ],
    ids=["too-long", "no-length"],
)
def test_a_body_over_the_cap_or_without_a_length_is_refused_unread(
    lookup: tuple[Settings, TestClient], content: object, headers: dict[str, str], status: int
) -> None:
    settings, client = lookup
    answer = client.post(
        "/v1/verify",
        params={"purpose": "identity-check"},
        content=content,  # type: ignore[arg-type]
        headers={"X-API-Key": KEYS["dlt"], "Content-Type": "application/json", **headers},
    )
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == PROBLEM_KEYS and answer.json()["reason"] == "invalid_request"
    assert audited(settings, answer.json()["request_id"])["status"] == status


def test_verify_answers_a_consumer_about_one_subject_a_few_times_an_hour(lookup: tuple[Settings, TestClient]) -> None:
    _settings, client = lookup

    def guess(subject: str, day: int) -> int:
        return client.post(
            "/v1/verify",
            params={"purpose": "identity-check"},
            headers={"X-API-Key": KEYS["dlt"]},
            json={"citizen_id": subject, "date_of_birth": f"1985-03-{day:02d}"},
        ).status_code

    assert [guess(SOMCHAI, day) for day in range(1, 1 + VERIFY_ATTEMPTS_PER_HOUR)] == [200] * VERIFY_ATTEMPTS_PER_HOUR
    assert guess(SOMCHAI, 28) == 429
    assert guess(MALEE, 1) == 200  # another subject, another budget


def test_the_limiter_forgets_buckets_that_refilled() -> None:
    limiter = RateLimiter()
    for subject in range(PRUNE_EVERY - 2):
        assert limiter.take(f"verify dlt {subject}", 1000.0, 2) is None  # full again within 2 ms
    assert limiter.take("busy", 0.001, 1) is None
    assert len(limiter) == PRUNE_EVERY - 1
    time.sleep(0.01)
    assert limiter.take("busy", 0.001, 1) is not None  # the prune's take: only the empty bucket is kept
    assert len(limiter) == 1
