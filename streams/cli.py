"""The `gdx` command line: one entry point, one subcommand per concern.

A GdxError anywhere below (each room's user-facing errors are GdxErrors, from `foundation`) becomes
one line on stderr ("gdx: what — what to do") and its exit code; so does a malformed command line
and a file the user named that cannot be opened: nothing the user can fix ends in a stack trace.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from foundation.errors import GdxError
from foundation.logs import configure_logging
from streams.commands import (
    acl,
    agencies,
    alerts,
    index,
    kafka,
    lag,
    lookup,
    pki,
    prometheus,
    registry,
    schemas,
    signing,
    topics,
    up,
)
from streams.production import refuse_unsafe
from streams.settings import load_settings

Handler = Callable[[argparse.Namespace], int]
COMMAND_MODULES = (
    kafka,
    registry,
    topics,
    acl,
    schemas,
    agencies,
    index,
    lag,
    lookup,
    prometheus,
    alerts,
    pki,
    signing,
    up,
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at --help instead of a usage screen.

    Subcommand parsers are built by `add_subparsers` from the parser's own class, so every level of
    `gdx` reports its mistakes the same way."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} — see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="gdx", description="GDX Backbone: cross-agency master-data exchange")
    parser.add_argument("--log-level", default=None, help="structured log level on stderr (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        configure_logging(args.log_level)
        if getattr(args, "process", False):  # a process of the exchange: the production profile's checks first
            settings = load_settings()
            if getattr(args, "insecure_http", False):
                settings = settings.model_copy(update={"lookup_tls": "off"})
            refuse_unsafe(settings)
        return handler(args)
    except GdxError as exc:
        print(f"gdx: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.filename is None:  # not a path the user gave: a bug or the machine, keep the trace
            raise
        print(f"gdx: {exc.strerror or exc}: {exc.filename} — check the path and its permissions", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gdx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
