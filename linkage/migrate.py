"""Schema migrations of the linkage index, run with Alembic on the index's own engine.

Every process that opens the index calls `upgrade` first, so a fresh database and an old one
reach the same schema the same way. `gdx index rebuild` empties only the tables a replay of the
change topics restores (`clear_replayed`), or builds a fresh database and carries the rest over
(`copy_kept`): the state no topic holds must survive a rebuild.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, delete, func, insert, inspect, select

from linkage.batch_transaction import batch_transaction
from linkage.driver_sql import CHUNK
from linkage.tables import KEPT_TABLES, REPLAYED_TABLES, metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def migration_config(connection: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


MIGRATION_LOCK = 0x6764785F696E6478
"""The PostgreSQL advisory lock upgraders take (the bytes of "gdx_indx"): any fixed number the
database's other users do not take."""


def upgrade(engine: Engine) -> None:
    """One process at a time: workers started together on a fresh database (`gdx up --workers 2`)
    would each find it empty and create the same tables, and all but one fail. The later ones wait,
    then find the schema at head. SQLite serialises them by the index's writer lock, PostgreSQL by
    an advisory lock held to the end of the migrating transaction."""
    with batch_transaction(engine) as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        command.upgrade(migration_config(connection), "head")


def drop_all(engine: Engine) -> None:
    """Remove every index table and the migration marker, leaving an empty database."""
    with engine.begin() as connection:
        metadata.drop_all(connection)
        if inspect(connection).has_table("alembic_version"):
            connection.exec_driver_sql("DROP TABLE alembic_version")


def clear_replayed(engine: Engine) -> None:
    """Empty the tables a replay of the change topics fills again; keep `KEPT_TABLES`."""
    with engine.begin() as connection:
        for table in reversed(REPLAYED_TABLES):
            connection.execute(delete(table))


def copy_kept(source: Engine, target: Engine) -> None:
    """Carry the state no topic holds into a freshly built index, ids included, so the copy is
    what the source held; PostgreSQL's id sequences then continue after the copied ids."""
    with source.connect() as reading, target.begin() as writing:
        for table in KEPT_TABLES:
            # Streamed: the access log holds a row for every lookup ever made.
            for part in reading.execution_options(yield_per=CHUNK).execute(select(table)).partitions():
                writing.execute(insert(table), [dict(row._mapping) for row in part])
            if "id" in table.c and target.dialect.name == "postgresql":
                highest = writing.execute(select(func.max(table.c.id))).scalar_one()
                if highest is not None:
                    writing.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), {int(highest)})"
                    )
