"""Alembic environment: one migration history for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context

import app.accounts.models  # noqa: F401  (register tables)
import app.activity.models  # noqa: F401
import app.documents.models  # noqa: F401
import app.documents.protection  # noqa: F401
import app.live.journal  # noqa: F401
import app.search.models  # noqa: F401
from app.db import Base, make_engine

config = context.config
url = config.attributes["database_url"]
engine = make_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
