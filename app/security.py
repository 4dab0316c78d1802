"""HTTP hardening for running behind a reverse proxy: trusted proxy hops, allowed hosts, HSTS.

- ``TRUSTED_PROXY_HOPS`` (default 0): how many proxies in front of the app append to
  ``X-Forwarded-For`` / set ``X-Forwarded-Proto|Host|Port``. With 0 those headers are
  ignored (anyone could send them); with N, werkzeug's ProxyFix takes the Nth value from
  the right, so a client cannot forge its address or scheme. Behind kamal-proxy it is 1
  (and kamal-proxy must forward them: ``proxy.forward_headers: true`` with ``ssl: true``).
- ``ALLOWED_HOSTS`` (required in production): the ``Host`` names the site answers;
  ``example.com`` matches exactly, ``.example.com`` also matches its subdomains. Other
  hosts get 400, so that no link or redirect is ever built from a forged ``Host``. The
  probes (``/up``, ``/ready``) and ``/metrics`` (which has its own access control) are
  exempt: kamal-proxy and Prometheus call the container by its address.
- ``Strict-Transport-Security`` on every response in production and on any HTTPS
  response (``HSTS_MAX_AGE`` seconds, 0 turns it off).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import host_is_trusted

#: Paths answered whatever the Host header: probes by address, and Prometheus.
HOST_CHECK_EXEMPT = frozenset({"/up", "/ready", "/metrics"})


def init_app(app: Flask) -> None:
    hops = int(app.config.get("TRUSTED_PROXY_HOPS") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=0
        )
    if app.config.get("ALLOWED_HOSTS"):
        # First, so that nothing (not even authentication) runs for a foreign Host.
        app.before_request_funcs.setdefault(None, []).insert(0, _check_host)
    app.after_request(_hsts)


def _check_host() -> Response | None:
    if request.path in HOST_CHECK_EXEMPT:
        return None
    allowed = current_app.config["ALLOWED_HOSTS"]
    if isinstance(allowed, str):
        allowed = [h.strip() for h in allowed.split(",") if h.strip()]
    if "*" in allowed or host_is_trusted(request.host, allowed):
        return None
    current_app.logger.warning("refused a request for host %r (ALLOWED_HOSTS)", request.host)
    return Response("Bad Request: unknown host\n", status=400, mimetype="text/plain")


def _hsts(response: Response) -> Response:
    max_age = int(current_app.config.get("HSTS_MAX_AGE") or 0)
    production = current_app.config.get("QUIRE_ENV") == "production"
    if max_age > 0 and (production or request.is_secure):
        response.headers.setdefault(
            "Strict-Transport-Security", f"max-age={max_age}; includeSubDomains"
        )
    return response
