"""Alembic environment: the metadata of every package that owns tables."""
from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

import crm_models
import integrations  # the Bitrix24 integration's tables are on crm_models' Base too
from crm_models.db import Base

config = context.config
target_metadata = [Base.metadata]
try:  # the engine's tables live in their own metadata (engine/ must not import crm_models)
    from engine.store import EngineBase

    target_metadata.append(EngineBase.metadata)
except ImportError:  # pragma: no cover - before the engine exists
    pass
assert crm_models and integrations


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
