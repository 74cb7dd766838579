"""Benchmark: what verifying every event's signature costs the worker's pipeline, in one process.

The same events (one agency's initial load, stamped and signed as its publisher sends them, one
signature per chunk of 64 with each event's Merkle path) go
through the worker's pipeline (`streams.pipeline.Pipeline`: verify → decode → validate → apply into
a fresh SQLite index, batches of 500) twice a round: with the signature check as the worker runs it
(`require`, each Ed25519 signature verified against the trust list), and with it off (the same
records without their signature headers, under `accept-unsigned`). Rounds alternate the order;
the best round of each is compared, and the CPU per event (process time, which other load on a
shared machine does not inflate) as the median of the rounds. No broker: Kafka's share of the
worker's time is the same with and without the check, so leaving it out makes the ratio stricter.

    python bench/signature_cost.py --scale 20000 --agency dopa --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from catalog_ids import CatalogIds
from publisher import population_arguments, routes_for

from agencies.events import stamp, stamp_bytes
from agencies.population import Population
from agencies.source import SourceSystem
from agencies.store import AgencyStore
from linkage.database import index_engine
from linkage.index_store import IndexStore
from linkage.migrate import drop_all, upgrade
from schemas.catalog import load_schema_catalog
from schemas.event_signatures import KEY_ID_HEADER, PATH_HEADER, SIGNATURE_HEADER
from streams.pipeline import Pipeline, SourceRecord
from streams.security.signing_keys import SigningKeys
from streams.signature_check import SignatureCheck
from streams.topic_catalog import load_catalog

BATCH = 500


def run(pipeline: Pipeline, records: list[SourceRecord]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, events applied) of the pipeline over every record."""
    applied = 0
    start, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(records), BATCH):
        applied += pipeline.process(records[first : first + BATCH]).outcomes.count("applied")
    return time.perf_counter() - start, time.process_time() - cpu, applied


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    population_arguments(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gdx-bench-signatures-"))
    print(f"loading {args.agency} of a {args.scale:,}-person population ...", flush=True)
    source = SourceSystem(args.agency, work / "store.db", routes_for(args.agency), load_schema_catalog(), args.seed)
    count = source.load(Population(args.scale, args.seed).records(args.agency))
    source.close()
    store = AgencyStore(work / "store.db")
    published_ms = int(time.time() * 1000)
    published = stamp_bytes(published_ms)
    keys = SigningKeys.of(work)
    signer = keys.signer(args.agency, at_ms=published_ms - 1000)
    rows = store.pending(0, count + 1)
    ids = CatalogIds(load_schema_catalog())
    values = [ids.wire(stamp(value, at, published)) for _, _, _, value, at, _ in rows]
    signed, unsigned = [], []
    for offset, ((_, topic, key, _, _, _), value, headers) in enumerate(
        zip(rows, values, signer.sign_all(values), strict=True)
    ):
        signed.append(SourceRecord(topic, 0, offset, key.encode(), value, tuple(headers), published_ms))
        unsigned.append(SourceRecord(topic, 0, offset, key.encode(), value, (), published_ms))
    store.close()
    assert all(dict(r.headers).keys() == {KEY_ID_HEADER, SIGNATURE_HEADER, PATH_HEADER} for r in signed[:10])
    topic_datasets = {d.topic: f"{d.agency}.{d.name}" for d in load_catalog().datasets}
    checks = {
        "verified": (SignatureCheck(keys.trust_list_path), signed),
        "off": (SignatureCheck(keys.trust_list_path, {args.agency: "accept-unsigned"}), unsigned),
    }
    engine = index_engine(f"sqlite:///{work / 'index.db'}")
    best = dict.fromkeys(checks, float("inf"))
    cpu: dict[str, list[float]] = {name: [] for name in checks}
    for round_ in range(1, args.rounds + 1):
        order = list(checks) if round_ % 2 else list(checks)[::-1]
        for name in order:
            drop_all(engine)
            upgrade(engine)
            verifier, records = checks[name]
            pipeline = Pipeline(
                load_schema_catalog(),
                IndexStore(engine, track_pending=False),
                topic_datasets,
                verifier,
                ids.schema_by_id,
            )
            wall, used, applied = run(pipeline, records)
            if applied != len(records):
                raise SystemExit(f"{name}: {applied} of {len(records)} applied")
            best[name] = min(best[name], wall)
            cpu[name].append(used / len(records) * 1e6)
            print(
                f"round {round_} {name:<9} {len(records) / wall:8,.0f} ev/s  {cpu[name][-1]:6.1f} µs CPU/ev", flush=True
            )
    rate = {name: count / best[name] for name in checks}
    median = {name: statistics.median(cpu[name]) for name in checks}
    print(f"\nevents {count:,} ({args.agency}, scale {args.scale:,}), pipeline into SQLite, batches of {BATCH}")
    print(f"signatures verified  {rate['verified']:10,.0f} events/s  {median['verified']:6.1f} µs CPU/event")
    print(f"signatures off       {rate['off']:10,.0f} events/s  {median['off']:6.1f} µs CPU/event")
    print(f"ratio verified / off {rate['verified'] / rate['off']:10.2f}  (best rounds, wall clock)")
    print(f"verification costs {median['verified'] - median['off']:.1f} µs CPU per event (median of rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
