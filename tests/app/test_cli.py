"""The admin CLI as real subprocesses: ``flask --app app user|token|documents|db``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from app import create_app, db
from app.accounts.services import authenticate, get_user_by_username
from app.documents.services import create_document

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))
TOKEN_RE = re.compile(r"^qt_[A-Za-z0-9_-]{40,}$")


def _env(database_url: str, repos: Path, var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "REPOS_ROOT", "QUIRE_VAR_DIR", "QUIRE_ENV"}
    }
    env.update(
        DATABASE_URL=database_url,
        REPOS_ROOT=str(repos),
        QUIRE_VAR_DIR=str(var_dir),
        SECRET_KEY="x",
    )
    return env


def _flask(env: dict[str, str], *args: str, stdin: str | None = None, ok: bool = True):
    result = subprocess.run(
        [FLASK, "--app", "app", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def _whoami(app: Flask, token: str):
    return app.test_client().get("/api/v1/user", headers={"Authorization": f"Bearer {token}"})


def test_fresh_sqlite_database_end_to_end(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    env = _env(url, tmp_path / "repos", tmp_path)

    result = _flask(env, "db", "upgrade")
    assert "up to date" in result.stdout
    _flask(env, "db", "upgrade")  # idempotent

    result = _flask(
        env,
        "user",
        "create",
        "root",
        "--email",
        "root@example.com",
        "--password-stdin",
        "--admin",
        stdin="first password\n",
    )
    assert "created root" in result.stdout and "site admin" in result.stdout
    result = _flask(
        env,
        "user",
        "create",
        "bob",
        "--email",
        "bob@example.com",
        "--password-stdin",
        stdin="bobs password\n",
    )
    assert result.stdout.strip() == "created bob"

    result = _flask(env, "token", "create", "bob", "--name", "ci")
    assert result.stdout.endswith("\n")
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    token = lines[0]
    assert TOKEN_RE.match(token), token

    result = _flask(
        env, "user", "reset-password", "bob", "--password-stdin", stdin="new secret pw\n"
    )
    assert "password changed for bob" in result.stdout

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "REPOS_ROOT": tmp_path / "repos",
            "VAR_DIR": tmp_path,
            "SECRET_KEY": "x",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    try:
        response = _whoami(app, token)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["username"] == "bob"
        with app.app_context():
            assert get_user_by_username("root").is_admin is True
            assert get_user_by_username("bob").is_admin is False
            assert authenticate("bob", "bobs password") is None
            assert authenticate("bob", "new secret pw") is not None
            bob = get_user_by_username("bob")
            repo_id = create_document(bob, "Quarterly report", visibility="public").repo_id
    finally:
        with app.app_context():
            db.get_db().remove()
            db.get_db().engine.dispose()

    result = _flask(env, "documents", "list")
    assert result.stdout.splitlines() == [f"quarterly-report\tpublic\tbob\t{repo_id}"]


def test_cli_on_each_backend(app: Flask, tmp_path: Path) -> None:
    """The same commands against the ``app`` fixture's database (SQLite and PostgreSQL)."""
    env = _env(app.config["DATABASE_URL"], Path(app.config["REPOS_ROOT"]), tmp_path)
    _flask(env, "db", "upgrade")
    result = _flask(
        env,
        "user",
        "create",
        "Carol",
        "--email",
        "Carol@Example.com",
        "--password-stdin",
        stdin="carols password\n",
    )
    # The very first account of a site becomes its admin even without --admin.
    assert result.stdout.strip() == "created Carol (site admin)"
    token = _flask(env, "token", "create", "carol", "--name", "deploy").stdout
    assert len(token.splitlines()) == 1 and TOKEN_RE.match(token.strip())
    response = _whoami(app, token.strip())
    assert response.status_code == 200
    assert response.get_json()["username"] == "Carol"

    with app.app_context():
        carol = get_user_by_username("carol")
        assert carol.email == "carol@example.com"
        create_document(carol, "Beta notes")
        create_document(carol, "Alpha notes", visibility="public")
    lines = _flask(env, "documents", "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["alpha-notes", "public", "Carol"],
        ["beta-notes", "private", "Carol"],
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", line.split("\t")[3]) for line in lines)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("user", "create", "dup", "--email", "x@example.com", "--password-stdin"), "pw is long\n", "already registered"),
        (("user", "create", "Dave", "--email", "dave@example.com", "--password-stdin"), "pw is long\n", "already registered"),
        (("user", "create", "eve", "--email", "eve@example.com", "--password-stdin"), "short\n", "at least 8"),
        (("user", "create", "bad_", "--email", "b@example.com", "--password-stdin"), "pw is long\n", "Usernames are"),
        (("user", "reset-password", "nobody", "--password-stdin"), "pw is long\n", "no user named"),
        (("user", "reset-password", "dave", "--password-stdin"), "short\n", "at least 8"),
        (("token", "create", "nobody", "--name", "x"), None, "no user named"),
        (("token", "create", "dave", "--name", " "), None, "1–100 characters"),
    ],
)  # fmt: skip
def test_cli_errors_exit_nonzero_with_message(
    app: Flask, accounts, tmp_path: Path, args, stdin, message
) -> None:
    accounts.create("dave")
    with app.app_context():
        from app.accounts.services import create_user

        create_user("someone", "x@example.com", "pw is long")
    env = _env(app.config["DATABASE_URL"], Path(app.config["REPOS_ROOT"]), tmp_path)
    result = _flask(env, *args, stdin=stdin, ok=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "qt_" not in result.stdout
    # Nothing was half-created, and dave's password is unchanged.
    with app.app_context():
        assert get_user_by_username("eve") is None
        assert authenticate("dave", "pw is long") is None
