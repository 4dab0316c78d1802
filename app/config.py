"""Configuration from environment variables only (12-factor).

Every setting has an embedded default that works on a fresh machine, so that
``scripts/run`` needs nothing but Python, git and Node.js. Production
(``QUIRE_ENV=production``) refuses to start with an unsafe value instead of
silently falling back to a default.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """The configuration is unsafe or inconsistent; the message says how to fix it."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


MIN_SECRET_KEY_LENGTH = 32


@dataclass
class Settings:
    """The resolved settings; Flask's ``app.config`` receives them upper-cased."""

    env: str = "development"
    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""
    redis_url: str = ""
    repos_root: Path = field(default_factory=lambda: PROJECT_ROOT / "var" / "repos")
    secret_key: str = ""
    base_url: str = ""
    max_upload_bytes: int = 25 * 1024 * 1024
    max_file_bytes: int = 10 * 1024 * 1024 + 1024
    login_rate_limit: str = "10 per minute"
    session_cookie_secure: bool = False
    log_level: str = "INFO"
    git_binary: str = "git"
    git_max_body_bytes: int = 2 * 1024 * 1024 * 1024
    git_max_fetch_request_bytes: int = 32 * 1024 * 1024
    # Production hardening (see validate() and app/security.py).
    web_concurrency: int = 1
    hosts: int = 1
    allowed_hosts: list[str] = field(default_factory=list)
    trusted_proxy_hops: int = 0
    hsts_max_age: int = 2 * 365 * 24 * 3600
    #: PostgreSQL text search configuration for the search index (checked against pg_ts_config).
    search_language: str = "english"
    # Product analytics (app/analytics): first-party, masked, opt-out respected.
    analytics_enabled: bool = True
    analytics_cookieless: bool = False
    analytics_retention_days: int = 395
    analytics_mask_ip: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        var_dir = Path(env.get("QUIRE_VAR_DIR") or PROJECT_ROOT / "var")
        settings = cls(
            env=env.get("QUIRE_ENV", "development"),
            var_dir=var_dir,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'quire.db'}",
            redis_url=env.get("REDIS_URL", ""),
            repos_root=Path(env.get("REPOS_ROOT") or var_dir / "repos"),
            secret_key=env.get("SECRET_KEY", ""),
            base_url=env.get("BASE_URL", "").rstrip("/"),
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", 25 * 1024 * 1024),
            max_file_bytes=_int(env, "MAX_FILE_BYTES", 10 * 1024 * 1024 + 1024),
            login_rate_limit=env.get("LOGIN_RATE_LIMIT", "10 per minute"),
            session_cookie_secure=_bool(env, "SESSION_COOKIE_SECURE", False),
            log_level=env.get("LOG_LEVEL", "INFO"),
            git_binary=env.get("GIT_BINARY") or "git",
            git_max_body_bytes=_int(env, "GIT_MAX_BODY_BYTES", 2 * 1024 * 1024 * 1024),
            git_max_fetch_request_bytes=_int(env, "GIT_MAX_FETCH_REQUEST_BYTES", 32 * 1024 * 1024),
            web_concurrency=_int(env, "WEB_CONCURRENCY", 1),
            hosts=_int(env, "QUIRE_HOSTS", 1),
            allowed_hosts=_list(env.get("ALLOWED_HOSTS", "")),
            trusted_proxy_hops=_int(env, "TRUSTED_PROXY_HOPS", 0),
            hsts_max_age=_int(env, "HSTS_MAX_AGE", 2 * 365 * 24 * 3600),
            search_language=(env.get("SEARCH_LANGUAGE") or "english").strip().lower(),
            analytics_enabled=_bool(env, "ANALYTICS_ENABLED", True),
            analytics_cookieless=_bool(env, "ANALYTICS_COOKIELESS", False),
            analytics_retention_days=_int(env, "ANALYTICS_RETENTION_DAYS", 395),
            analytics_mask_ip=_bool(env, "ANALYTICS_MASK_IP", True),
        )
        return settings

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def validate(self) -> None:
        """Refuse an unsafe production configuration, naming every problem and its fix.

        Outside production only malformed values are refused; the embedded
        defaults stay usable on a fresh machine.
        """
        problems: list[str] = []
        if self.trusted_proxy_hops < 0:
            problems.append("TRUSTED_PROXY_HOPS must be 0 or more")
        if self.web_concurrency < 1 or self.hosts < 1:
            problems.append("WEB_CONCURRENCY and QUIRE_HOSTS must be at least 1")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.search_language):
            problems.append(
                f"SEARCH_LANGUAGE={self.search_language!r} is not a text search configuration "
                "name (e.g. english, simple, german)"
            )
        if self.is_production:
            problems.extend(self._production_problems())
        if problems:
            raise ConfigError(
                "refusing to start with an unsafe configuration:\n"
                + "\n".join(f"  - {problem}" for problem in problems)
            )

    def _production_problems(self) -> list[str]:
        problems: list[str] = []
        if not self.secret_key:
            problems.append(
                "SECRET_KEY is required in production (QUIRE_ENV=production); generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        elif len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            problems.append(
                f"SECRET_KEY is too short ({len(self.secret_key)} characters); "
                f"use at least {MIN_SECRET_KEY_LENGTH} random characters"
            )
        several = self.web_concurrency > 1 or self.hosts > 1
        if self.database_url.startswith("sqlite") and several:
            problems.append(
                f"DATABASE_URL is SQLite, which serves one worker on one host, but "
                f"WEB_CONCURRENCY={self.web_concurrency} and QUIRE_HOSTS={self.hosts}; "
                "use PostgreSQL or run a single worker on a single host"
            )
        if several and not self.redis_url:
            problems.append(
                f"REDIS_URL is required with several workers or hosts (WEB_CONCURRENCY="
                f"{self.web_concurrency}, QUIRE_HOSTS={self.hosts}): live editing, locks and "
                "rate limits are shared through Redis"
            )
        problem = _unwritable(self.repos_root)
        if problem:
            problems.append(f"REPOS_ROOT {self.repos_root} is not writable ({problem})")
        if not self.allowed_hosts:
            problems.append(
                "ALLOWED_HOSTS is required in production: the host names this site answers, "
                "comma-separated (e.g. quire.example.com)"
            )
        return problems

    def resolve_secret_key(self) -> str:
        """Return the secret key, generating one into ``var/`` outside production.

        A generated key is kept on disk so that sessions survive restarts of
        ``scripts/run``; production must be given one explicitly.
        """
        if self.secret_key:
            return self.secret_key
        if self.is_production:
            raise ConfigError("SECRET_KEY is required in production (QUIRE_ENV=production)")
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key

    def to_flask(self) -> dict[str, object]:
        return {
            "QUIRE_ENV": self.env,
            "VAR_DIR": self.var_dir,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "REPOS_ROOT": self.repos_root,
            "BASE_URL": self.base_url,
            "MAX_CONTENT_LENGTH": self.max_upload_bytes,
            "MAX_FILE_BYTES": self.max_file_bytes,
            "LOGIN_RATE_LIMIT": self.login_rate_limit,
            "SESSION_COOKIE_SECURE": self.session_cookie_secure or self.is_production,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "LOG_LEVEL": self.log_level,
            "GIT_BINARY": self.git_binary,
            "GIT_MAX_BODY_BYTES": self.git_max_body_bytes,
            "GIT_MAX_FETCH_REQUEST_BYTES": self.git_max_fetch_request_bytes,
            "ALLOWED_HOSTS": self.allowed_hosts,
            "TRUSTED_PROXY_HOPS": self.trusted_proxy_hops,
            "HSTS_MAX_AGE": self.hsts_max_age,
            "SEARCH_LANGUAGE": self.search_language,
            "ANALYTICS_ENABLED": self.analytics_enabled,
            "ANALYTICS_COOKIELESS": self.analytics_cookieless,
            "ANALYTICS_RETENTION_DAYS": self.analytics_retention_days,
            "ANALYTICS_MASK_IP": self.analytics_mask_ip,
        }


def _unwritable(path: Path) -> str:
    """Why ``path`` cannot hold repositories, or "" when a file can be created in it.

    A real write, not ``os.access``: root passes ``os.access`` on read-only mounts.
    """
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".quire-write-check-"):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return ""
