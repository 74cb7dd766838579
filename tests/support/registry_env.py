"""Test-side helpers for the real schema registry: one started by the project's launcher on a free
loopback port, and the session reaching it as a user reaches an external registry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from foundation.ports import free_port_block
from streams.local import registry_launcher
from streams.security.principals import OPERATOR
from streams.settings import REGISTRY_VARIABLES, Settings


def local_registry_settings(state_dir: Path) -> Settings:
    """A local registry's settings in `state_dir` (its PKI) on a free port, whatever registry the
    environment names."""
    return Settings(state_dir=state_dir, schema_registry_url=None, schema_registry_port=free_port_block(1))


@contextmanager
def running_registry(state_dir: Path) -> Iterator[Settings]:
    """The project's own registry in `state_dir`, started for a test scope and always stopped
    afterwards; its database and log stay in pytest's temporary directory for reading."""
    settings = local_registry_settings(state_dir)
    try:
        registry_launcher.up(settings, report=False)
        yield settings
    finally:
        registry_launcher.down(settings)


@contextmanager
def registry_reached_as_operator(settings: Settings) -> Iterator[None]:
    """The local registry of `settings` in the environment as an external one, with the operator's
    certificate of its PKI, so every in-process `Settings()` and every `gdx` child reaches it as a
    user pointing the stack at a secured registry would; the environment is restored afterwards."""
    access = settings.registry_for(OPERATOR)
    with without_registry_environment():
        os.environ.update(
            GDX_SCHEMA_REGISTRY_URL=access.url,
            GDX_SCHEMA_REGISTRY_CA=str(access.cafile),
            GDX_SCHEMA_REGISTRY_CERTFILE=str(access.certfile),
            GDX_SCHEMA_REGISTRY_KEYFILE=str(access.keyfile),
        )
        yield


@contextmanager
def without_registry_environment() -> Iterator[None]:
    """No registry named in the environment for a while (a module with its own stack, whose
    children must not inherit the session's registry and the operator's certificate with it)."""
    saved = {name: os.environ.pop(name, None) for name in REGISTRY_VARIABLES}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
