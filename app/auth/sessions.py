"""The session cookie: signed, HttpOnly, SameSite=Lax, and Secure whenever the request is HTTPS."""

from __future__ import annotations

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface


class SessionInterface(SecureCookieSessionInterface):
    """Adds the Secure flag for HTTPS requests even when the setting leaves it off.

    Behind a proxy, ``request.is_secure`` follows ``X-Forwarded-Proto`` only once the
    proxy is trusted (ProxyFix); a direct HTTPS request is always recognised.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        if super().get_cookie_secure(app):
            return True
        return has_request_context() and request.is_secure
