"""Every Kafka client is built in one place, `foundation.kafka_clients`, so what every connection
must carry (the servers now, TLS and credentials next) is applied once: no other module of the
rooms or the benchmarks calls an aiokafka client's constructor."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FACTORY = REPO / "foundation" / "kafka_clients.py"
CONSTRUCTORS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}
SCANNED = ("foundation", "schemas", "agencies", "linkage", "monitoring", "streams", "bench")


def constructor_calls(path: Path) -> list[str]:
    """`file:line Name(…)` for every call of an aiokafka client class, bare or through a module."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in CONSTRUCTORS:
                calls.append(f"{path.name}:{node.lineno} {name}(…)")
    return calls


def test_only_the_factory_builds_kafka_clients() -> None:
    paths = [path for room in SCANNED for path in sorted((REPO / room).rglob("*.py")) if path != FACTORY]
    found = [call for path in paths for call in constructor_calls(path)]
    assert found == [], "build these through foundation.kafka_clients.KafkaClients:\n" + "\n".join(found)


def test_the_check_sees_a_direct_construction(tmp_path: Path) -> None:
    rogue = tmp_path / "rogue.py"
    rogue.write_text(
        "import aiokafka\nfrom aiokafka import AIOKafkaProducer\n\n"
        "p = AIOKafkaProducer(bootstrap_servers='x')\nc = aiokafka.AIOKafkaConsumer('t')\n"
    )
    assert constructor_calls(rogue) == ["rogue.py:4 AIOKafkaProducer(…)", "rogue.py:5 AIOKafkaConsumer(…)"]
    assert len(constructor_calls(FACTORY)) == 2  # its producer and admin client; a consumer is built by `kind`
