"""Processes started together on a fresh index (`gdx up --workers 2`) each migrate it first; they
take turns, so one creates the tables and the others find them at head, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier

import pytest
from alembic.script import ScriptDirectory

from linkage.database import index_engine
from linkage.migrate import migration_config, upgrade

STARTING = 4


def _start(index_url: str, barrier: Barrier) -> None:
    """A process's start-up, from the moment all are there: exits 1 when the upgrade fails."""
    engine = index_engine(index_url)
    barrier.wait()
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
def test_processes_starting_together_migrate_a_fresh_index_once(index_url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(STARTING)
    processes = [spawn.Process(target=_start, args=(index_url, barrier)) for _ in range(STARTING)]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=90)
        assert [process.exitcode for process in processes] == [0] * STARTING
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    engine = index_engine(index_url)
    try:
        with engine.connect() as conn:
            heads = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    finally:
        engine.dispose()
    assert heads == [ScriptDirectory.from_config(migration_config(None)).get_current_head()]
