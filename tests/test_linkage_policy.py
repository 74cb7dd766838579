"""A consent counts only as far as its purpose allows: no longer after its grant than the purpose's
max_consent_days, whatever expiry it states."""

from __future__ import annotations

from pathlib import Path

from linkage.consent import ConsentStore
from linkage.consumers import load_consumers
from linkage.database import index_engine
from linkage.index_store import DAY_MS
from linkage.migrate import upgrade
from linkage.policy import authorize
from schemas.examples import SOMCHAI
from tests.support.lookup_support import consent


def test_a_consent_counts_no_longer_than_its_purpose_allows(tmp_path: Path) -> None:
    engine = index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    upgrade(engine)
    consents, dlt = ConsentStore(engine), load_consumers().consumers["dlt"]
    assert dlt.purposes["licence-application"].max_consent_days == 90
    for_ten_years = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"], valid_s=3650 * 86400.0)
    consents.apply(for_ten_years)
    granted = for_ten_years.granted_ms
    within = authorize(dlt, "licence-application", "lookup", SOMCHAI, consents, granted + 89 * DAY_MS)
    beyond = authorize(dlt, "licence-application", "lookup", SOMCHAI, consents, granted + 91 * DAY_MS)
    assert within.allowed and within.basis == f"consent: {for_ten_years.consent_id}"
    assert (beyond.status, beyond.consent_reason) == (403, "expired")
    # A consent given later counts, though the older one states the later expiry.
    recent = consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"]).model_copy(
        update={"granted_ms": granted + 60 * DAY_MS, "expires_ms": granted + 120 * DAY_MS}
    )
    consents.apply(recent)
    later = authorize(dlt, "licence-application", "lookup", SOMCHAI, consents, granted + 91 * DAY_MS)
    assert later.allowed and later.basis == f"consent: {recent.consent_id}"
    engine.dispose()
