"""`gdx up`: the whole local stack in the foreground until Ctrl-C, then a clean stop.

For now the stack is the broker and its topics; later services join here, so the README's run
command stays `make run`.
"""

from __future__ import annotations

import argparse
import signal
import threading

from streams import kafka_launcher as launcher
from streams.settings import load_settings
from streams.topic_admin import apply_topics
from streams.topic_catalog import load_catalog


def register(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="start the whole stack and keep it running until Ctrl-C")
    up.add_argument("--brokers", type=int, choices=(1, 3), default=None, help="local brokers (default 1)")
    up.set_defaults(handler=cmd_up)


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings()
    started_here = False
    if settings.external_kafka:
        print(f"using the external Kafka cluster at {settings.bootstrap_servers}")
    else:
        result = launcher.up(settings, args.brokers or settings.kafka_brokers)
        started_here = bool(result.started)
        settings = settings.model_copy(update={"kafka_brokers": len(result.info.broker_ids)})
    try:
        changes = apply_topics(settings, load_catalog())
        created = sum(1 for c in changes if c.action == "create")
        print(f"topics: {len(changes)} in the catalog, {created} created now")
        print("\nThe GDX stack is up:")
        print(f"  Kafka bootstrap servers  {settings.bootstrap_servers}")
        print("Press Ctrl-C to stop.", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        if started_here:
            print("\nstopping …", flush=True)
            for line in launcher.down(settings):
                print(line)
    return 0
