"""Production (QUIRE_ENV=production) refuses an unsafe configuration and says why.

Each test boots ``create_app()`` from environment variables alone, as the container
does, changing one thing from a safe production configuration.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, request

from app import create_app
from app.config import ConfigError, Settings

SAFE_KEY = "k" * 48

SETTINGS_VARS = (
    "QUIRE_ENV",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "REPOS_ROOT",
    "QUIRE_VAR_DIR",
    "WEB_CONCURRENCY",
    "QUIRE_HOSTS",
    "ALLOWED_HOSTS",
    "TRUSTED_PROXY_HOPS",
    "HSTS_MAX_AGE",
)


@pytest.fixture
def prod_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A safe single-worker production configuration on SQLite; tests change one thing."""
    for name in SETTINGS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUIRE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", SAFE_KEY)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'quire.db'}")
    monkeypatch.setenv("REPOS_ROOT", str(tmp_path / "repos"))
    monkeypatch.setenv("QUIRE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("ALLOWED_HOSTS", "quire.example.com")
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    return monkeypatch


def _refused(*fragments: str) -> str:
    with pytest.raises(ConfigError) as info:
        create_app()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_safe_production_config_boots(prod_env: pytest.MonkeyPatch) -> None:
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    client = app.test_client()
    response = client.get("/up", headers={"Host": "10.0.1.5:8000"})  # kamal-proxy's probe
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    page = client.get("/login", headers={"Host": "quire.example.com"})
    assert page.status_code == 200
    assert "Strict-Transport-Security" in page.headers


def test_no_secret_key(prod_env: pytest.MonkeyPatch) -> None:
    prod_env.delenv("SECRET_KEY")
    _refused("SECRET_KEY is required in production")


def test_short_secret_key(prod_env: pytest.MonkeyPatch) -> None:
    prod_env.setenv("SECRET_KEY", "too-short-secret")
    _refused("SECRET_KEY is too short (16 characters)", "at least 32")


def test_sqlite_with_several_workers(prod_env: pytest.MonkeyPatch) -> None:
    prod_env.setenv("WEB_CONCURRENCY", "4")
    prod_env.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    message = _refused("DATABASE_URL is SQLite", "WEB_CONCURRENCY=4")
    assert "REDIS_URL" not in message  # only the problem that is there


def test_sqlite_with_several_hosts(prod_env: pytest.MonkeyPatch) -> None:
    prod_env.setenv("QUIRE_HOSTS", "2")
    prod_env.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    _refused("DATABASE_URL is SQLite", "QUIRE_HOSTS=2")


def test_several_workers_without_redis(prod_env: pytest.MonkeyPatch) -> None:
    prod_env.setenv("DATABASE_URL", "postgresql://quire@db.internal/quire")
    prod_env.setenv("WEB_CONCURRENCY", "3")
    message = _refused("REDIS_URL is required with several workers", "WEB_CONCURRENCY=3")
    assert "SQLite" not in message


def test_repositories_directory_not_writable(prod_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Tests run as root, for whom permission bits do not stop a write: a path under a
    # regular file can be neither created nor written by anyone.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    prod_env.setenv("REPOS_ROOT", str(blocker / "repos"))
    _refused(f"REPOS_ROOT {blocker / 'repos'} is not writable")


def test_allowed_hosts_unset(prod_env: pytest.MonkeyPatch) -> None:
    prod_env.delenv("ALLOWED_HOSTS")
    _refused("ALLOWED_HOSTS is required in production")


def test_every_problem_is_named_at_once(prod_env: pytest.MonkeyPatch) -> None:
    prod_env.delenv("SECRET_KEY")
    prod_env.delenv("ALLOWED_HOSTS")
    prod_env.setenv("WEB_CONCURRENCY", "2")
    message = _refused("SECRET_KEY", "ALLOWED_HOSTS", "SQLite", "REDIS_URL")
    assert message.count("\n  - ") == 4


def test_development_needs_none_of_it(tmp_path: Path) -> None:
    settings = Settings.from_env({"QUIRE_VAR_DIR": str(tmp_path), "WEB_CONCURRENCY": "4"})
    settings.validate()  # the embedded default stays usable


def test_unknown_host_is_refused_but_probes_answer(prod_env: pytest.MonkeyPatch) -> None:
    prod_env.setenv("ALLOWED_HOSTS", "quire.example.com,.docs.example.org")
    client = create_app().test_client()
    assert client.get("/login", headers={"Host": "evil.example.net"}).status_code == 400
    assert client.get("/login", headers={"Host": "quire.example.com:443"}).status_code == 200
    assert client.get("/login", headers={"Host": "a.docs.example.org"}).status_code == 200
    assert client.get("/up", headers={"Host": "evil.example.net"}).status_code == 200


def _proxy_app(prod_env: pytest.MonkeyPatch, hops: str | None) -> Flask:
    if hops is not None:
        prod_env.setenv("TRUSTED_PROXY_HOPS", hops)
    prod_env.setenv("ALLOWED_HOSTS", "quire.example.com")
    app = create_app()

    @app.get("/_test/peer")
    def peer():
        return {
            "remote_addr": request.remote_addr,
            "scheme": request.scheme,
            "host": request.host,
        }

    return app


FORWARDED = {
    # A client forged the first value; the proxy (10.0.0.2 → app) appended the real one.
    "X-Forwarded-For": "6.6.6.6, 203.0.113.7, 198.51.100.9",
    "X-Forwarded-Proto": "https, https, https",
    "X-Forwarded-Host": "quire.example.com",
    "Host": "quire.example.com",
}


def test_forwarded_headers_ignored_by_default(prod_env: pytest.MonkeyPatch) -> None:
    client = _proxy_app(prod_env, None).test_client()
    body = client.get(
        "/_test/peer", headers=FORWARDED, environ_base={"REMOTE_ADDR": "10.0.0.2"}
    ).get_json()
    assert body == {"remote_addr": "10.0.0.2", "scheme": "http", "host": "quire.example.com"}


@pytest.mark.parametrize(("hops", "client_addr"), [("1", "198.51.100.9"), ("2", "203.0.113.7")])
def test_proxy_fix_honours_exactly_the_configured_hops(
    prod_env: pytest.MonkeyPatch, hops: str, client_addr: str
) -> None:
    client = _proxy_app(prod_env, hops).test_client()
    body = client.get(
        "/_test/peer", headers=FORWARDED, environ_base={"REMOTE_ADDR": "10.0.0.2"}
    ).get_json()
    # The Nth address from the right, never the forged leftmost one.
    assert body["remote_addr"] == client_addr
    assert body["scheme"] == "https"


def test_session_cookie_is_secure_in_production(prod_env: pytest.MonkeyPatch) -> None:
    app = _proxy_app(prod_env, "1")

    @app.get("/_test/session")
    def set_session():
        from flask import session

        session["x"] = 1
        return "ok"

    response = app.test_client().get(
        "/_test/session",
        headers={"Host": "quire.example.com", "X-Forwarded-Proto": "https"},
    )
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
