"""The `gdx` command line: one entry point, one subcommand per concern.

A GdxError anywhere below becomes one line on stderr ("gdx: what — what to do") and its exit
code; nothing the user can fix ends in a stack trace.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from streams.commands import agencies, index, kafka, lag, lookup, prometheus, schemas, topics, up
from streams.errors import GdxError
from streams.logs import configure_logging

Handler = Callable[[argparse.Namespace], int]
COMMAND_MODULES = (kafka, topics, schemas, agencies, index, lag, lookup, prometheus, up)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gdx", description="GDX Backbone: cross-agency master-data exchange")
    parser.add_argument("--log-level", default=None, help="structured log level on stderr (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    handler: Handler = args.handler
    try:
        return handler(args)
    except GdxError as exc:
        print(f"gdx: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gdx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
