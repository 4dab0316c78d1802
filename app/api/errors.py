"""The one place where storage and domain errors become API responses.

Views call services and gitstore and let failures propagate; the handlers below
give each failure its HTTP status and stable ``error.code``. Keeping the mapping
here (instead of try/except in every view) means a given gitstore error always
answers the same way, whichever endpoint raised it.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response

import gitstore
from app.api.serializers import conflict_json
from app.documents.services import DocumentError
from app.errors import ApiError, error_response

log = logging.getLogger(__name__)

#: gitstore error → (status, code). Order matters: the first matching class wins.
GITSTORE_ERRORS: tuple[tuple[type[gitstore.GitStoreError], int, str], ...] = (
    (gitstore.DocumentNotFound, 404, "not_found"),
    (gitstore.RefNotFound, 404, "not_found"),
    (gitstore.PathNotFound, 404, "not_found"),
    (gitstore.InvalidPath, 400, "invalid_path"),
    (gitstore.InvalidRefName, 422, "invalid_ref_name"),
    (gitstore.BranchExists, 409, "branch_exists"),
    (gitstore.TagExists, 409, "tag_exists"),
    (gitstore.CannotDeleteDefaultBranch, 422, "default_branch"),
    (gitstore.NothingToCommit, 422, "nothing_to_commit"),
)


def gitstore_error_response(exc: gitstore.GitStoreError) -> tuple[Response, int]:
    """Answer for any :class:`gitstore.GitStoreError` raised by an API view."""
    if isinstance(exc, gitstore.MergeConflict):
        return error_response(
            409,
            "Your change conflicts with changes saved since you started. "
            "Nothing was saved; merge the versions in 'conflicts' and save again "
            "with the current head as parent.",
            "conflict",
            conflicts=[conflict_json(c) for c in exc.conflicts],
        )
    if isinstance(exc, gitstore.RefConflict):
        return error_response(
            409,
            "The branch moved while saving. Nothing was saved; fetch the new head and retry.",
            "conflict",
            expected=exc.expected,
            actual=exc.actual,
        )
    for cls, status, code in GITSTORE_ERRORS:
        if isinstance(exc, cls):
            return error_response(status, str(exc), code)
    # An unexpected storage failure: its message may name paths on the server.
    log.exception("storage error", exc_info=exc)
    return error_response(500, "The document store failed to do that.", "storage_error")


def register(bp: Blueprint) -> None:
    """Install the handlers on the API blueprint (they apply to its views only)."""
    bp.register_error_handler(gitstore.GitStoreError, gitstore_error_response)

    @bp.errorhandler(DocumentError)
    def _document_error(exc: DocumentError):
        return error_response(422, str(exc), "invalid")

    @bp.after_request
    def _challenge(response: Response) -> Response:
        # RFC 6750: every 401 names the scheme the client should use.
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="quire"'
        return response


__all__ = ["ApiError", "gitstore_error_response", "register"]
