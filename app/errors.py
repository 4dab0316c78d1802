"""One place that turns errors into responses: JSON under /api, pages elsewhere."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.auth.permissions import PermissionDenied

#: Stable error codes for the JSON API, by HTTP status.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
}


class ApiError(Exception):
    """An error with a stable machine-readable code, raised by API views."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: object):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.extra = extra


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, message: str, code: str | None = None, **extra: object):
    if wants_json():
        body = {"error": {"code": code or CODES.get(status, "error"), "message": message, **extra}}
        return jsonify(body), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.code, **exc.extra)

    @app.errorhandler(PermissionDenied)
    def _denied(exc: PermissionDenied):
        if exc.hide:
            return error_response(404, "Not found.")
        return error_response(403, "You do not have permission to do that.")

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return error_response(
            400, "The form expired or was not sent from Quire. Reload and try again.", "csrf"
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        message = exc.description or exc.name
        if exc.code == 404:
            message = "Not found."
        elif exc.code == 429:
            message = "Too many attempts. Wait a minute and try again."
        response = error_response(exc.code, message)
        if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            body, status = response
            return body, status, {"Allow": ", ".join(exc.valid_methods)}
        return response
