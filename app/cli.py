"""Admin commands: ``flask --app app user|token|documents|db|repos ...``."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app import db
from app.accounts import services as accounts
from app.accounts.models import User
from app.documents.models import Document
from app.migrate import upgrade, upgrade_locked
from app.storage import get_store

user_cli = AppGroup("user", help="Manage accounts.")
token_cli = AppGroup("token", help="Manage personal access tokens.")
documents_cli = AppGroup("documents", help="Inspect documents.")
db_cli = AppGroup("db", help="Database schema.")
repos_cli = AppGroup("repos", help="Document repositories.")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _user_or_exit(username: str) -> User:
    user = accounts.get_user_by_username(username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


@user_cli.command("create")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--admin", is_flag=True, help="Make the account a site admin.")
def user_create(username: str, email: str, password_stdin: bool, admin: bool) -> None:
    """Create an account."""
    try:
        user = accounts.create_user(username, email, _read_password(password_stdin), admin=admin)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {user.username}{' (site admin)' if user.is_admin else ''}")


@user_cli.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
def user_reset_password(username: str, password_stdin: bool) -> None:
    """Set a new password (signs out every session of the account)."""
    user = _user_or_exit(username)
    try:
        accounts.set_password(user, _read_password(password_stdin))
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"password changed for {user.username}")


@user_cli.command("make-admin")
@click.argument("username")
def user_make_admin(username: str) -> None:
    """Make an existing account a site admin."""
    user = _user_or_exit(username)
    user.is_admin = True
    db.session().commit()
    click.echo(f"{user.username} is now a site admin")


@user_cli.command("list")
def user_list() -> None:
    for user in db.session().scalars(select(User).order_by(User.id)):
        click.echo(f"{user.username}\t{user.email}\t{'admin' if user.is_admin else ''}")


@token_cli.command("create")
@click.argument("username")
@click.option("--name", required=True)
def token_create(username: str, name: str) -> None:
    """Create a token and print only its secret."""
    user = _user_or_exit(username)
    try:
        _, secret = accounts.create_token(user, name)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(secret)


@documents_cli.command("list")
def documents_list() -> None:
    """List every document: slug, visibility, owner, repository id."""
    rows = db.session().execute(
        select(Document.slug, Document.visibility, User.username, Document.repo_id)
        .join(User, User.id == Document.owner_id)
        .order_by(Document.slug)
    )
    for slug, visibility, owner, repo_id in rows:
        click.echo(f"{slug}\t{visibility}\t{owner}\t{repo_id}")


@db_cli.command("upgrade")
@click.option(
    "--no-lock", is_flag=True, help="Skip the migration lock (one process only, e.g. tests)."
)
def db_upgrade(no_lock: bool) -> None:
    """Apply every pending migration, holding the database's migration lock: safe when
    several containers of a release start at once (the later ones wait, then find
    nothing to do)."""
    if no_lock:
        upgrade()
    else:
        waited = upgrade_locked(
            on_wait=lambda: click.echo("waiting for another process's migration")
        )
        if waited > 1:
            click.echo(f"waited {waited:.1f}s for another process's migration")
    click.echo("database is up to date")


@repos_cli.command("maintain")
@click.option("--slug", help="Only this document (default: every document).")
def repos_maintain(slug: str | None) -> None:
    """Pack loose objects and write the commit-graph of each document's repository.

    Safe while the site serves pushes and saves (git's own locks; nothing younger
    than two weeks is pruned). Schedule it daily; see docs/DEPLOY.md. Run it as the
    user the app writes repositories as. Exits non-zero if any repository failed.
    """
    import gitstore

    query = select(Document.slug, Document.repo_id).order_by(Document.slug)
    if slug is not None:
        query = query.where(Document.slug == slug)
    rows = db.session().execute(query).all()
    db.session().rollback()  # hold no transaction open while git works
    if slug is not None and not rows:
        raise click.ClickException(f"no document with slug {slug!r}")
    store, git = get_store(), current_app.config["GIT_BINARY"]
    failed = 0
    for doc_slug, repo_id in rows:
        try:
            result = gitstore.maintain(store.path_for(repo_id), git=git)
        except (gitstore.GitStoreError, ValueError) as exc:
            failed += 1
            click.echo(f"{doc_slug}\terror: {exc}", err=True)
            continue
        click.echo(f"{doc_slug}\t{result.summary}")
    if failed:
        raise click.ClickException(f"{failed} of {len(rows)} repositories could not be maintained")


def init_app(app: Flask) -> None:
    for group in (user_cli, token_cli, documents_cli, db_cli, repos_cli):
        app.cli.add_command(group)
