"""Accounts end to end: sign-up, log-in/out, sessions, rate limits, tokens."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, text

from app import db
from app.accounts.models import Token, User
from app.accounts.services import get_user_by_username, set_password
from app.db import utcnow
from tests.conftest import PASSWORD

WRONG_LOGIN = "That username or password is not right."


def _signup(client, username: str, email: str, password: str = "long enough pw"):
    return client.submit(
        "/signup", {"username": username, "email": email, "password": password}, page="/signup"
    )


def _user(app: Flask, username: str) -> User:
    with app.app_context():
        user = get_user_by_username(username)
        assert user is not None
        db.session().expunge(user)
        return user


def _session_cookie_header(response) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert headers, response.headers
    return headers[-1]


# --- sign-up -------------------------------------------------------------------------


def test_first_account_is_admin_second_is_not(app: Flask, client) -> None:
    response = _signup(client, "ada", "ada@example.com")
    assert response.status_code == 302
    assert _user(app, "ada").is_admin is True
    client.submit("/logout", page="/documents")
    other = app.test_client()
    response = _signup(other, "bob", "bob@example.com")
    assert response.status_code == 302
    assert _user(app, "bob").is_admin is False


@pytest.mark.parametrize(
    ("username", "email"),
    [
        ("ADA", "someone@example.com"),
        ("ada", "ADA@Example.COM"),
        ("Ada", "ada@example.com"),
    ],
)
def test_duplicate_username_or_email_refused(app: Flask, client, username, email) -> None:
    assert _signup(client, "ada", "ada@example.com").status_code == 302
    other = app.test_client()
    response = _signup(other, username, email)
    assert response.status_code == 422
    assert "already registered" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session().scalar(select(text("count(*)")).select_from(User)) == 1


@pytest.mark.parametrize(
    ("username", "email", "password", "message"),
    [
        ("-bad", "x@example.com", "long enough pw", "Usernames are"),
        ("has space", "x@example.com", "long enough pw", "Usernames are"),
        ("a" * 41, "x@example.com", "long enough pw", "Usernames are"),
        ("admin", "x@example.com", "long enough pw", "reserved"),
        ("fine", "not-an-email", "long enough pw", "valid email"),
        ("fine", "x@example.com", "short", "at least 8"),
    ],
)
def test_bad_signup_refused(app: Flask, client, username, email, password, message) -> None:
    response = _signup(client, username, email, password)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session().scalar(select(User.id)) is None


def test_password_stored_as_argon2id(app: Flask, client) -> None:
    _signup(client, "ada", "ada@example.com", "plain text secret")
    with app.app_context():
        stored = db.session().scalar(select(User.password_hash).where(User.username == "ada"))
    assert stored.startswith("$argon2id$")
    assert "plain text secret" not in stored


# --- log-in and log-out ------------------------------------------------------------------


@pytest.mark.parametrize("login", ["ada", "ADA", "ada@example.com", "Ada@Example.com"])
def test_login_by_username_or_email(app: Flask, client, accounts, login) -> None:
    accounts.create("ada")
    response = client.submit("/login", {"login": login, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/settings/tokens").status_code == 200


def test_wrong_password_and_unknown_user_same_answer(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    wrong = client.submit("/login", {"login": "ada", "password": "not the password"})
    unknown = client.submit("/login", {"login": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert WRONG_LOGIN in wrong.get_data(as_text=True)
    assert WRONG_LOGIN in unknown.get_data(as_text=True)
    assert client.get("/settings/tokens").status_code == 302


def test_logout_is_post_only_with_csrf(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    accounts.login(client, "ada")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert client.get("/settings/tokens").status_code == 200  # still signed in
    response = client.submit("/logout", page="/documents")
    assert response.status_code == 302
    assert client.get("/settings/tokens").status_code == 302


def test_post_without_csrf_token_is_400(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    response = client.post("/login", data={"login": "ada", "password": PASSWORD})
    assert response.status_code == 400
    response = client.post(
        "/login", data={"login": "ada", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert client.get("/settings/tokens").status_code == 302


def test_session_cookie_flags(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    header = _session_cookie_header(accounts.login(client, "ada"))
    parts = [p.strip().lower() for p in header.split(";")]
    assert "httponly" in parts
    assert "samesite=lax" in parts
    assert "secure" not in parts


def test_session_cookie_secure_when_configured(app: Flask, accounts) -> None:
    app.config["SESSION_COOKIE_SECURE"] = True
    accounts.create("ada")
    from tests.conftest import Browserish

    app.test_client_class = Browserish
    client = app.test_client()
    header = _session_cookie_header(accounts.login(client, "ada"))
    parts = [p.strip().lower() for p in header.split(";")]
    assert "secure" in parts and "httponly" in parts and "samesite=lax" in parts


def test_login_rate_limited(app: Flask, client, accounts) -> None:
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    accounts.create("ada")
    token = client.csrf_token("/login")
    form = {"login": "ada", "password": "wrong password", "csrf_token": token}
    statuses = [client.post("/login", data=form).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    response = client.post("/login", data=form)
    assert response.status_code == 429
    # Even the right password is refused while limited.
    response = client.post("/login", data={**form, "password": PASSWORD})
    assert response.status_code == 429


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("//evil.example", "/"),
        ("//evil.example/documents", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/documents", "/documents"),
        ("/documents?scope=mine", "/documents?scope=mine"),
    ],
)
def test_login_redirect_only_same_site(app: Flask, client, accounts, next_url, expected) -> None:
    accounts.create("ada")
    response = client.submit(
        "/login",
        {"login": "ada", "password": PASSWORD},
        page="/login",
        query_string={"next": next_url},
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == expected or location == "http://localhost" + expected


def test_password_reset_signs_out_other_sessions(app: Flask, accounts) -> None:
    from tests.conftest import Browserish

    accounts.create("ada")
    app.test_client_class = Browserish
    first, second = app.test_client(), app.test_client()
    accounts.login(first, "ada")
    accounts.login(second, "ada")
    assert first.get("/settings/tokens").status_code == 200
    assert second.get("/settings/tokens").status_code == 200
    with app.app_context():
        set_password(get_user_by_username("ada"), "a brand new password")
    assert first.get("/settings/tokens").status_code == 302
    assert second.get("/settings/tokens").status_code == 302
    assert accounts.login(first, "ada").status_code == 401
    assert accounts.login(first, "ada", "a brand new password").status_code == 302
    assert first.get("/settings/tokens").status_code == 200


def test_deactivated_account_loses_session_and_login(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    accounts.login(client, "ada")
    with app.app_context():
        get_user_by_username("ada").is_active = False
        db.session().commit()
    assert client.get("/settings/tokens").status_code == 302
    assert accounts.login(client, "ada").status_code == 401


# --- personal access tokens -----------------------------------------------------------


def _create_token_via_page(client, name: str = "laptop", expires: str = "") -> str:
    response = client.submit("/settings/tokens", {"name": name, "expires": expires})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    start = html.index('id="new-token">') + len('id="new-token">')
    return html[start : html.index("<", start)]


def test_tokens_page_requires_login(app: Flask, client) -> None:
    response = client.get("/settings/tokens")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_token_create_shown_once_hash_only_list_revoke(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    accounts.login(client, "ada")
    page = client.get("/settings/tokens")
    assert page.headers["Cache-Control"] == "no-store"
    secret = _create_token_via_page(client, "work laptop")
    assert secret.startswith("qt_") and len(secret) > 40

    # Shown once: the list afterwards has the name and prefix, never the secret.
    listing = client.get("/settings/tokens").get_data(as_text=True)
    assert "work laptop" in listing
    assert secret[:8] in listing
    assert secret not in listing

    # Only the SHA-256 is stored: no column of the row holds the secret.
    with app.app_context():
        rows = db.session().execute(text("SELECT * FROM tokens")).mappings().all()
    assert len(rows) == 1
    row = dict(rows[0])
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    for value in row.values():
        assert secret not in str(value)

    api = app.test_client()
    response = api.get("/api/v1/user", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert response.get_json()["username"] == "ada"

    token_id = row["id"]
    response = client.submit(f"/settings/tokens/{token_id}/revoke", page="/settings/tokens")
    assert response.status_code == 302
    assert "work laptop" not in client.get("/settings/tokens").get_data(as_text=True)
    response = api.get("/api/v1/user", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    # Revoking twice, or someone else's token, is a 404.
    response = client.submit(f"/settings/tokens/{token_id}/revoke", page="/settings/tokens")
    assert response.status_code == 404


def test_cannot_revoke_someone_elses_token(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    accounts.create("bob")
    secret = accounts.token("bob")
    accounts.login(client, "ada")
    with app.app_context():
        token_id = db.session().scalar(select(Token.id))
    response = client.submit(f"/settings/tokens/{token_id}/revoke", page="/settings/tokens")
    assert response.status_code == 404
    response = client.get("/api/v1/user", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200


def test_token_bad_input(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    accounts.login(client, "ada")
    assert client.submit("/settings/tokens", {"name": ""}).status_code == 422
    assert client.submit("/settings/tokens", {"name": "x", "expires": "soon"}).status_code == 422
    response = client.submit("/settings/tokens", {"name": "x", "expires": "2001-01-01"})
    assert response.status_code == 422
    with app.app_context():
        assert db.session().scalar(select(Token.id)) is None


def test_token_with_future_expiry_works(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    accounts.login(client, "ada")
    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()
    secret = _create_token_via_page(client, "short-lived", tomorrow)
    response = app.test_client().get("/api/v1/user", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200


@pytest.mark.parametrize("how", ["revoked", "expired", "deactivated", "garbage"])
def test_unusable_token_gives_no_access(app: Flask, accounts, how) -> None:
    from app.documents.services import create_document

    accounts.create("ada")
    secret = accounts.token("ada")
    with app.app_context():
        session = db.session()
        ada = get_user_by_username("ada")
        create_document(ada, "Private plans")
        token = session.scalar(select(Token))
        if how == "revoked":
            token.revoked_at = utcnow()
        elif how == "expired":
            token.expires_at = utcnow() - timedelta(seconds=1)
        elif how == "deactivated":
            ada.is_active = False
        else:
            secret = secret[:-4] + "AAAA"
        session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/user", headers=headers).status_code == 401
    page = client.get("/documents", headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Private plans" not in html
    assert 'href="/login"' in html  # rendered for an anonymous visitor
    assert client.get("/d/private-plans", headers=headers).status_code == 404


def test_valid_token_acts_as_user_on_pages(app: Flask, accounts) -> None:
    from app.documents.services import create_document

    accounts.create("ada")
    secret = accounts.token("ada")
    with app.app_context():
        create_document(get_user_by_username("ada"), "Private plans")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert "Private plans" in client.get("/documents", headers=headers).get_data(as_text=True)
    assert client.get("/d/private-plans", headers=headers).status_code == 200
