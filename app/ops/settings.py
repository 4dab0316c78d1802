"""Monitoring settings, read from the environment (12-factor) with working defaults.

Like :mod:`app.live.settings` they live with the code that uses them;
``app.config`` may override any of them (tests do): ``app.config`` wins, then
the environment, then the default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class OpsSettings:
    #: ``json`` (one JSON object a line), ``text`` (for people) or ``auto`` (text on a TTY).
    log_format: str = "auto"
    #: A statement slower than this is logged and counted.
    slow_query_ms: float = 200.0
    #: ``/metrics`` answers these networks (comma-separated CIDRs) ...
    metrics_allowed_networks: str = "127.0.0.1/32,::1/128"
    #: ... or a request with ``Authorization: Bearer <token>``; empty disables the token.
    metrics_token: str = ""
    sentry_dsn: str = ""
    sentry_traces_sample_rate: float = 0.0
    sentry_send_pii: bool = False
    #: The release reported to Sentry: QUIRE_RELEASE, else GIT_SHA (the image's commit).
    release: str = ""
    #: Each component's check is recorded for the status page at most this often per process.
    status_record_seconds: float = 60.0
    environment: str = "development"

    @classmethod
    def load(cls, config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> OpsSettings:
        env = os.environ if env is None else env

        def get(key: str) -> Any:
            value = config.get(key, env.get(key))
            return None if value is None or value == "" else value

        values: dict[str, Any] = {}
        for key, name, kind in (
            ("LOG_FORMAT", "log_format", str),
            ("SLOW_QUERY_MS", "slow_query_ms", float),
            ("METRICS_ALLOWED_NETWORKS", "metrics_allowed_networks", str),
            ("METRICS_TOKEN", "metrics_token", str),
            ("SENTRY_DSN", "sentry_dsn", str),
            ("SENTRY_TRACES_SAMPLE_RATE", "sentry_traces_sample_rate", float),
            ("STATUS_RECORD_SECONDS", "status_record_seconds", float),
        ):
            raw = get(key)
            if raw is None:
                continue
            try:
                values[name] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"{key} must be a {kind.__name__}, got {raw!r}") from exc
        pii = get("SENTRY_SEND_PII")
        if pii is not None:
            values["sentry_send_pii"] = pii is True or str(pii).strip().lower() in TRUE
        values["release"] = str(get("QUIRE_RELEASE") or get("GIT_SHA") or "")
        values["environment"] = str(get("QUIRE_ENV") or "development")
        settings = cls(**values)
        if settings.log_format not in {"json", "text", "auto"}:
            raise ValueError(f"LOG_FORMAT must be json, text or auto, got {settings.log_format!r}")
        settings.allowed_networks()  # fail at start, not at the first scrape
        return settings

    def allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        nets = []
        for part in self.metrics_allowed_networks.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"METRICS_ALLOWED_NETWORKS: {part!r} is not a network") from exc
        return nets
