"""The migration history that ships has one head.

Capabilities built side by side may branch it (each migration follows the revision it
needs); a join revision brings the branches together before release, so that the next
migration has one parent and `alembic heads` names the schema a release expects.
"""

from __future__ import annotations

from alembic.script import ScriptDirectory

from app.migrate import alembic_config


def test_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"join these heads with a merge revision: {heads}"
