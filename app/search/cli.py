"""``flask --app app search reindex``: rebuild the index from the repositories."""

from __future__ import annotations

import click
from flask.cli import AppGroup

search_cli = AppGroup("search", help="Full-text search index.")


@search_cli.command("reindex")
def reindex() -> None:
    """Drop the index, re-create it and rebuild it from every document's default branch."""
    from app.search.index import UnknownLanguage
    from app.search.rebuild import reindex_all

    try:
        count = reindex_all()
    except UnknownLanguage as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"indexed {count} documents")


@search_cli.command("catch-up")
def catch_up() -> None:
    """Queue the documents whose index lags their branch, then index them now."""
    from app.search import get_indexer

    indexer = get_indexer()
    queued = indexer.catch_up()
    click.echo(f"{queued} documents behind; indexed {indexer.flush()}")
