"""Schema migrations of the linkage index, run with Alembic on the index's own engine.

Every process that opens the index calls `upgrade` first, so a fresh database and an old one
reach the same schema the same way; `drop_all` is what `gdx index rebuild` starts from.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from linkage.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def migration_config(connection: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    with engine.begin() as connection:
        command.upgrade(migration_config(connection), "head")


def drop_all(engine: Engine) -> None:
    """Remove every index table and the migration marker, leaving an empty database."""
    with engine.begin() as connection:
        metadata.drop_all(connection)
        if inspect(connection).has_table("alembic_version"):
            connection.exec_driver_sql("DROP TABLE alembic_version")
