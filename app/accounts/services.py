"""Accounts: sign-up, passwords, personal access tokens.

Passwords are hashed with argon2id; tokens are 256-bit random secrets of which
only a SHA-256 digest is stored (a fast hash is right for high-entropy secrets
and keeps token checks on every git request cheap).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import secrets
from datetime import datetime

import argon2.profiles
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app import db
from app.accounts.models import Token, User
from app.db import utcnow

USERNAME_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_-]{0,38}[a-zA-Z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
TOKEN_PREFIX = "qt_"
RESERVED_USERNAMES = frozenset({"admin", "api", "login", "logout", "signup", "new", "settings"})


def _hasher() -> PasswordHasher:
    """The application's argon2 hasher (tests configure a cheap profile)."""
    hasher = current_app.extensions.get("quire.password_hasher")
    if hasher is None:
        profile = current_app.config.get("PASSWORD_HASH_PROFILE", "default")
        hasher = (
            PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
            if profile == "cheapest"
            else PasswordHasher()
        )
        current_app.extensions["quire.password_hasher"] = hasher
    return hasher


class AccountError(ValueError):
    """A user-caused problem with account data; the message is shown as is."""


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(user: User, password: str) -> bool:
    try:
        ok = _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if ok and _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
        db.session().commit()
    return ok


def validate_new_account(username: str, email: str, password: str) -> None:
    if not USERNAME_RE.match(username):
        raise AccountError(
            "Usernames are 1–40 letters, digits, '-' or '_', starting and ending with a letter or digit."
        )
    if username.lower() in RESERVED_USERNAMES:
        raise AccountError(f"The username {username!r} is reserved.")
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise AccountError("Enter a valid email address.")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"Passwords need at least {MIN_PASSWORD} characters.")


def create_user(
    username: str, email: str, password: str, *, admin: bool = False, display_name: str = ""
) -> User:
    """Create an account. The very first account on a site becomes its admin."""
    username = username.strip()
    email = email.strip().lower()
    validate_new_account(username, email, password)
    session = db.session()
    taken = session.scalar(
        select(User.id).where(
            (func.lower(User.username) == username.lower()) | (User.email == email)
        )
    )
    if taken is not None:
        raise AccountError("That username or email is already registered.")
    first = session.scalar(select(func.count(User.id))) == 0
    user = User(
        username=username,
        email=email,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        is_admin=admin or first,
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AccountError("That username or email is already registered.") from None
    return user


def authenticate(login: str, password: str) -> User | None:
    login = login.strip()
    user = db.session().scalar(
        select(User).where(
            (func.lower(User.username) == login.lower()) | (User.email == login.lower())
        )
    )
    if user is None:
        # Spend the same time as a real check so that timing does not reveal accounts.
        _burn_time(password)
        return None
    if not user.is_active:
        _burn_time(password)
        return None
    if not verify_password(user, password):
        return None
    return user


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("quire-dummy-password")


def _burn_time(password: str) -> None:
    with contextlib.suppress(VerificationError):
        _hasher().verify(_dummy_hash(_hasher()), password)


def set_password(user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"Passwords need at least {MIN_PASSWORD} characters.")
    user.password_hash = hash_password(password)
    db.session().commit()


def get_user_by_username(username: str) -> User | None:
    return db.session().scalar(select(User).where(func.lower(User.username) == username.lower()))


# --- personal access tokens -------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(user: User, name: str, *, expires_at: datetime | None = None) -> tuple[Token, str]:
    """Create a token and return it with its secret, which is never stored or shown again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("Give the token a name of 1–100 characters.")
    if expires_at is not None and expires_at <= utcnow():
        raise AccountError("The expiry date must be in the future.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        user_id=user.id,
        name=name,
        prefix=secret[:8],
        token_hash=_digest(secret),
        expires_at=expires_at,
    )
    session = db.session()
    session.add(token)
    session.commit()
    return token, secret


def user_for_token(secret: str) -> User | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    session = db.session()
    # The user comes in the same round trip: every API and git request asks for both.
    token = session.scalar(
        select(Token).options(joinedload(Token.user)).where(Token.token_hash == _digest(secret))
    )
    now = utcnow()
    if token is None or not token.is_usable(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        session.commit()
    return token.user


def list_tokens(user: User) -> list[Token]:
    return list(
        db.session().scalars(
            select(Token)
            .where(Token.user_id == user.id, Token.revoked_at.is_(None))
            .order_by(Token.created_at.desc())
        )
    )


def revoke_token(user: User, token_id: int) -> bool:
    session = db.session()
    token = session.get(Token, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    session.commit()
    return True
