"""A connection the secured broker must refuse: the client only sees "unable to bootstrap",
whatever the cause, so the broker's own log tells a refusal from a broker that is away."""

from __future__ import annotations

import asyncio
import time

from aiokafka.errors import KafkaError

from foundation.kafka_clients import KafkaClients
from streams.local import kafka_launcher as launcher
from streams.settings import Settings

REFUSED_WITHIN_S = 15


async def refused(settings: Settings, kafka: KafkaClients, reason: str) -> None:
    """One metadata round trip that the broker must refuse, and say why in its log.

    The client sees only "unable to bootstrap" whatever the cause, so the broker's own account
    (`Failed authentication with /127.0.0.1 (…reason…)`) tells a refusal from a broker that is away.
    """
    (node,) = launcher.local_nodes(settings)
    start = node.log_file.stat().st_size
    admin = kafka.admin(request_timeout_ms=REFUSED_WITHIN_S * 1000)
    try:
        await asyncio.wait_for(admin.start(), REFUSED_WITHIN_S)
        await asyncio.wait_for(admin.describe_cluster(), REFUSED_WITHIN_S)
    except (KafkaError, OSError, TimeoutError):
        pass
    else:
        raise AssertionError("the broker answered a client it should have refused")
    finally:
        await admin.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with node.log_file.open("rb") as log:
            log.seek(start)
            said = log.read().decode(errors="replace")
        if any("Failed authentication" in line and reason in line for line in said.splitlines()):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the broker did not log a failed authentication ({reason}):\n{said[-2000:]}")
