"""Benchmark: what signing every audit record costs the lookup API, and verifying it the auditor.

The writer's work per record, as `linkage.audit.AuditWriter` does it under its lock: chain the
entry, sign it (Ed25519) and hash it, against the same without the signature (the chain and hash
alone, which is all a record cost before records were signed). The auditor's: `verify_partition`
over the signed trail, against a walk that checks the hash chain only. Both in one process,
rounds alternating the order; the best round of each is compared, and the CPU per record (process
time, which other load on a shared machine does not inflate) as the median of the rounds. No
broker: the acknowledged write is the same with and without the signature.

    python bench/audit_signing.py --records 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from linkage.audit import (
    AUDIT_KEY_OWNER,
    GENESIS,
    VerifyRules,
    canonical,
    chain_record,
    record_hash,
    verify_partition,
)
from linkage.index_store import now_ms
from schemas.event_signatures import Signer
from schemas.examples import SOMCHAI
from streams.security.signing_keys import SigningKeys

CHAIN = "gdx.audit/0"


def entry(at_ms: int, n: int) -> dict[str, Any]:
    """A lookup's audit entry as `LookupService._audit` writes it."""
    return {
        "kind": "access",
        "time_ms": at_ms,
        "request_id": f"bench-{n:08d}",
        "consumer": "revenue",
        "purpose": "estate-tax",
        "operation": "citizen",
        "subject": {"kind": "citizen", "id": SOMCHAI},
        "datasets": ["dol.title-deed", "dopa.person"],
        "decision": "allow",
        "status": 200,
        "reason": None,
        "basis": "mandate",
        "rate_limited_since": 0,
    }


def write(count: int, at_ms: int, signer: Signer | None) -> list[tuple[int, bytes | None]]:
    """`count` records chained (and signed, with a signer) as the writer makes them."""
    trail: list[tuple[int, bytes | None]] = []
    seq, head = -1, GENESIS
    for n in range(count):
        if signer is not None:
            record = chain_record(entry(at_ms, n), CHAIN, seq + 1, head, signer)
        else:  # what the writer did before it signed every record
            record = {**entry(at_ms, n), "chain": CHAIN, "seq": seq + 1, "prev_hash": head}
            record["hash"] = record_hash(record)
        trail.append((n, canonical(record)))
        seq, head = record["seq"], record["hash"]
    return trail


def walk_hashes(trail: list[tuple[int, bytes | None]]) -> bool:
    """The chain alone: every hash recomputed and linked, no signature checked."""
    prev = GENESIS
    for _offset, value in trail:
        record = json.loads(value or b"")
        if record_hash(record) != record["hash"] or record["prev_hash"] != prev:
            return False
        prev = record["hash"]
    return True


def timed(work: Callable[[], object]) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="audit records per run (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating the order (default 5)")
    args = parser.parse_args()
    keys = SigningKeys(Path(tempfile.mkdtemp(prefix="gdx-bench-audit-")) / "audit-keys")
    signer = keys.signer(AUDIT_KEY_OWNER)
    at = now_ms()
    rules = VerifyRules(keys.trust_list(), 60.0, at)
    signed = write(args.records, at, signer)
    assert verify_partition(0, signed, rules).ok and walk_hashes(write(args.records, at, None))

    cases: dict[str, Callable[[], object]] = {
        "write, chained": lambda: write(args.records, at, None),
        "write, chained and signed": lambda: write(args.records, at, signer),
        "verify, chain only": lambda: walk_hashes(signed),
        "verify, chain and signatures": lambda: verify_partition(0, signed, rules),
    }
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    for round_no in range(args.rounds):
        order = list(cases) if round_no % 2 == 0 else list(reversed(cases))
        for name in order:
            wall, cpu = timed(cases[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
        print(f"round {round_no + 1}/{args.rounds} done", flush=True)

    print(f"{args.records:,} audit records, best of {args.rounds} rounds (CPU per record: median)")
    for name in cases:
        rate = args.records / min(walls[name])
        print(
            f"  {name:<30} {rate:>10,.0f} records/s   {statistics.median(cpus[name]) / args.records * 1e6:6.1f} µs CPU"
        )
    for plain, full in (
        ("write, chained", "write, chained and signed"),
        ("verify, chain only", "verify, chain and signatures"),
    ):
        cost = (statistics.median(cpus[full]) - statistics.median(cpus[plain])) / args.records * 1e6
        ratio = min(walls[plain]) / min(walls[full])
        print(f"{full}: {ratio:.2f} of the rate without signatures; the signature costs {cost:.1f} µs CPU per record")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
