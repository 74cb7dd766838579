"""A broker for a benchmark: the one named by --bootstrap-servers, or a private one for the run."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from foundation.ports import free_port_block
from streams.local import kafka_launcher
from streams.settings import Settings


@contextmanager
def kafka(bootstrap_servers: str | None, heap: str = "1g") -> Iterator[str]:
    if bootstrap_servers:
        yield bootstrap_servers
        return
    with tempfile.TemporaryDirectory(prefix="gdx-bench-") as state:
        settings = Settings(state_dir=Path(state), kafka_port=free_port_block(2), kafka_heap=heap)
        print(f"starting a private Kafka broker at {settings.bootstrap_servers} …", flush=True)
        kafka_launcher.up(settings, 1, report=False)
        try:
            yield settings.bootstrap_servers
        finally:
            kafka_launcher.down(settings)
