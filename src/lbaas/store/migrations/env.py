"""Alembic environment: runs migrations on the engine handed in by lbaas.store.db."""

from alembic import context

from lbaas.store.tables import metadata

target_metadata = metadata


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        context.run_migrations()


run_migrations_online()
