"""``flask --app app search reindex``: rebuild the index from the repositories."""

from __future__ import annotations

import click
from flask.cli import AppGroup

search_cli = AppGroup("search", help="Full-text search index.")


@search_cli.command("reindex")
def reindex() -> None:
    """Empty the index and rebuild it from every document's default branch."""
    from app.search.index import reindex_all

    click.echo(f"indexed {reindex_all()} documents")
