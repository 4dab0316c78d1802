"""``flask --app app analytics purge|export-user|delete-user``.

``analytics_cli`` is the group; other analytics modules add their commands to it
(``seed``) so that every analytics command sits under one name.
"""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

analytics_cli = AppGroup("analytics", help="Product analytics: retention, one user's data.")


def _user_id(username: str) -> int:
    from app.accounts.services import get_user_by_username

    user = get_user_by_username(username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user.id


@analytics_cli.command("purge")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep this many days (default: ANALYTICS_RETENTION_DAYS).",
)
def purge(days: int | None) -> None:
    """Delete visits and events older than the retention period (run it daily from cron)."""
    from app import db
    from app.analytics import privacy

    days = days or int(current_app.config.get("ANALYTICS_RETENTION_DAYS", 395))
    visits, events = privacy.purge(db.session(), days)
    click.echo(f"deleted {visits} visits and {events} events older than {days} days")


@analytics_cli.command("export-user")
@click.argument("username")
def export_user(username: str) -> None:
    """Print everything analytics holds about USERNAME as JSON."""
    from app import db
    from app.analytics import privacy, tracking

    tracking.flush()
    data = privacy.export_user(db.session(), _user_id(username))
    click.echo(json.dumps(data, indent=2, default=str))


@analytics_cli.command("delete-user")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_user(username: str, yes: bool) -> None:
    """Delete USERNAME's visits and events (their account stays)."""
    from app import db
    from app.analytics import privacy, tracking

    user_id = _user_id(username)
    if not yes:
        click.confirm(f"Delete all analytics data of {username}?", abort=True)
    tracking.flush()
    visits, events = privacy.delete_user_data(db.session(), user_id)
    click.echo(f"deleted {visits} visits and {events} events of {username}")
