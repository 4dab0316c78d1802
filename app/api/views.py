"""The JSON API under /api/v1 (bearer-token auth).

Views are thin: parse the request, find the document, ask
:mod:`app.auth.permissions`, call a service or gitstore, serialize. Failures
propagate as exceptions and are turned into ``{"error": {...}}`` in
:mod:`app.api.errors` (storage errors) and :mod:`app.errors` (everything else).

Authentication is by ``Authorization: Bearer <token>`` only: the session cookie is
ignored here, so a page visited in a browser can never be used to drive the API
with the visitor's rights (the API is CSRF-exempt).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from flask import Blueprint, Response, current_app, g, request

import gitstore
from app.accounts.models import User
from app.api import errors, serializers
from app.api.openapi import build_spec
from app.auth.permissions import Action, Grant, require
from app.documents import services
from app.documents.models import Document
from app.errors import ApiError

bp = Blueprint("api", __name__, url_prefix="/api/v1")
errors.register(bp)

DEFAULT_PAGE = 30
MAX_PAGE = 100
_OID = re.compile(r"[0-9a-fA-F]{4,40}")


# --- request helpers ------------------------------------------------------------


@bp.before_request
def _authenticate() -> None:
    """Fix ``g.api_actor`` for this request; a bad token is an error, not anonymity.

    A client that sends a token expects its rights: silently downgrading a revoked
    or expired token to anonymous would turn "token revoked" into confusing 404s.
    """
    if g.get("via_token") and g.get("actor") is None:
        raise ApiError(401, "The token is invalid, expired or revoked.", "unauthorized")
    g.api_actor = g.get("actor") if g.get("via_token") else None


def actor() -> User | None:
    return g.api_actor


def signed_in() -> User:
    """The token's user, or 401: writes are never anonymous."""
    user = actor()
    if user is None:
        raise ApiError(401, "Send a personal access token: Authorization: Bearer <token>.")
    return user


def base_url() -> str:
    return (current_app.config.get("BASE_URL") or request.host_url).rstrip("/")


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a clear 415/400 saying what was expected."""
    if not request.is_json:
        raise ApiError(415, "Send a JSON body with 'Content-Type: application/json'.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return data


def field(data: dict[str, Any], name: str, *, required: bool = False, default: str = "") -> str:
    """A string field of the body; wrong types are a 422, not a 500."""
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(422, f"'{name}' is required.", "invalid", field=name)
        return default
    if not isinstance(value, str):
        raise ApiError(422, f"'{name}' must be a string.", "invalid", field=name)
    return value


def int_arg(name: str, default: int, low: int, high: int | None) -> int:
    raw = request.args.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"'{name}' must be an integer.", "bad_request") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"'{name}' must be {bound}.", "bad_request")
    return value


def parent_oid(value: str) -> str:
    """The head the client started from must be a commit id: a branch name would
    resolve to the current head and defeat the compare-and-swap."""
    if not _OID.fullmatch(value):
        raise ApiError(
            422, "'parent' must be the commit id you started from.", "invalid", field="parent"
        )
    return value


def load(slug: str, action: Action = Action.READ) -> tuple[Document, Grant]:
    """The document and the actor's grant; 404 whether missing or unreadable."""
    document = services.get_document(slug)
    if document is None:
        raise ApiError(404, "Not found.")
    return document, require(actor(), action, document)


def for_write(slug: str, action: Action = Action.EDIT) -> tuple[User, Document]:
    """Token first (401), then the document (404) and the right (403/404)."""
    user = signed_in()
    document, _ = load(slug, action)
    return user, document


def ref_arg(document: Document, name: str = "ref") -> str:
    return request.args.get(name) or document.default_branch


# --- meta ---------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi():
    """The machine-readable description of this API (OpenAPI 3.1)."""
    return build_spec(base_url())


@bp.get("/user")
def current_user():
    return serializers.user_json(signed_in())


# --- documents --------------------------------------------------------------------


@bp.get("/documents")
def list_documents():
    scope = request.args.get("scope") or "all"
    if scope not in services.SCOPES:
        raise ApiError(400, f"'scope' is one of {', '.join(services.SCOPES)}.", "bad_request")
    listing = services.list_documents(
        actor(),
        scope=scope,
        query=request.args.get("q", ""),
        limit=int_arg("limit", 50, 1, MAX_PAGE),
        offset=int_arg("offset", 0, 0, None),
    )
    base = base_url()
    return {
        "documents": [serializers.document_json(d, base) for d in listing.documents],
        "total": listing.total,
    }


@bp.post("/documents")
def create_document():
    user = signed_in()
    data = json_body()
    document = services.create_document(
        user,
        field(data, "title", required=True),
        visibility=field(data, "visibility", default="private"),
    )
    grant = require(user, Action.READ, document)
    body = serializers.document_json(document, base_url(), grant)
    location = f"{base_url()}{bp.url_prefix}/documents/{document.slug}"
    return body, 201, {"Location": location}


@bp.get("/documents/<slug>")
def get_document(slug: str):
    document, grant = load(slug)
    return serializers.document_json(document, base_url(), grant)


# --- content ------------------------------------------------------------------------


@bp.get("/documents/<slug>/tree")
def tree(slug: str):
    document, _ = load(slug)
    store = services.repo(document)
    commit = store.resolve(ref_arg(document))  # resolve once: the listing and its oid agree
    path = request.args.get("path", "")
    entries = store.list_tree(commit, path)
    return {
        "commit": commit,
        "path": path.strip("/"),
        "entries": [serializers.tree_entry_json(e) for e in entries],
    }


@bp.get("/documents/<slug>/files/<path:path>")
def read_file(slug: str, path: str):
    document, _ = load(slug)
    return serializers.file_json(services.repo(document).read(path, ref_arg(document)))


def _decode_content(data: dict[str, Any]) -> bytes:
    """The body's ``content`` as bytes, decoding base64 and enforcing MAX_FILE_BYTES."""
    content = field(data, "content", required=True)
    encoding = field(data, "encoding", default="utf-8")
    if encoding == "utf-8":
        raw = content.encode("utf-8")
    elif encoding == "base64":
        try:
            raw = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                422, "'content' is not valid base64.", "invalid", field="content"
            ) from None
    else:
        raise ApiError(422, "'encoding' is 'utf-8' or 'base64'.", "invalid", field="encoding")
    limit = current_app.config["MAX_FILE_BYTES"]
    if len(raw) > limit:
        raise ApiError(413, f"Files are at most {limit} bytes.", "too_large", limit=limit)
    return raw


@bp.put("/documents/<slug>/files/<path:path>")
def put_file(slug: str, path: str):
    """Save one file from the head the client started from (``parent``).

    201 ``{"commit", "merged"}`` when a commit was made (``merged`` when the branch
    had moved and the change merged cleanly). When the content is already what the
    branch holds, nothing is committed and the answer is 200 with the branch's
    current head: a client retrying a save whose response it lost gets success,
    not an error.
    """
    user, document = for_write(slug)
    data = json_body()
    content = _decode_content(data)
    branch = field(data, "branch") or document.default_branch
    parent = parent_oid(field(data, "parent", required=True))
    try:
        result = services.save_file(
            user,
            document,
            branch=branch,
            path=path,
            content=content,
            message=field(data, "message"),
            parent=parent,
            source="api",
        )
    except gitstore.NothingToCommit:
        return {"commit": services.repo(document).head(branch), "merged": False}, 200
    return {"commit": result.commit, "merged": result.merged}, 201


@bp.delete("/documents/<slug>/files/<path:path>")
def delete_file(slug: str, path: str):
    """Delete a file only if the branch is still at ``parent`` (409 otherwise)."""
    user, document = for_write(slug)
    parent = request.args.get("parent", "")
    if not parent:
        raise ApiError(
            422, "'parent' (the head you started from) is required.", "invalid", field="parent"
        )
    commit = services.delete_file(
        user,
        document,
        branch=request.args.get("branch") or document.default_branch,
        path=path,
        parent=parent_oid(parent),
        message=request.args.get("message", ""),
        source="api",
    )
    return {"commit": commit}


# --- history ------------------------------------------------------------------------


@bp.get("/documents/<slug>/commits")
def commits(slug: str):
    document, _ = load(slug)
    try:
        page = services.repo(document).history(
            ref_arg(document),
            path=request.args.get("path") or None,
            after=request.args.get("after") or None,
            limit=int_arg("limit", DEFAULT_PAGE, 1, MAX_PAGE),
        )
    except gitstore.InvalidCursor:
        raise ApiError(
            400, "'after' must be the next_cursor of a previous page.", "invalid_cursor"
        ) from None
    return {
        "commits": [serializers.commit_json(c) for c in page.commits],
        "next_cursor": page.next_cursor,
    }


@bp.get("/documents/<slug>/commits/<oid>")
def commit(slug: str, oid: str):
    document, _ = load(slug)
    store = services.repo(document)
    info = store.commit(oid)
    body = serializers.commit_json(info)
    body["files"] = [
        serializers.file_diff_json(f, hunks=False) for f in store.commit_diff(info.oid).files
    ]
    return body


@bp.get("/documents/<slug>/diff")
def diff(slug: str):
    document, _ = load(slug)
    old = request.args.get("from", "")
    if not old:
        raise ApiError(400, "'from' (a branch, tag or commit id) is required.", "bad_request")
    return serializers.diff_json(services.repo(document).diff(old, ref_arg(document, "to")))


# --- branches -----------------------------------------------------------------------


def _branch_error(exc: Exception) -> ApiError:
    """A refused branch operation as a 422 with its own code (default_branch, ...)."""
    return ApiError(422, str(exc), getattr(exc, "code", "invalid"))


@bp.get("/documents/<slug>/branches")
def branches(slug: str):
    """Branches with ``ahead``/``behind`` the default branch (null for the default itself)."""
    from app.releases import branches as branch_services

    document, _ = load(slug)
    return {
        "branches": [
            {
                **serializers.branch_json(row.info),
                "ahead": row.ahead,
                "behind": row.behind,
                "protected": row.protected,
            }
            for row in branch_services.list_branches(document)
        ]
    }


@bp.post("/documents/<slug>/branches")
def create_branch(slug: str):
    from app.releases import branches as branch_services

    user, document = for_write(slug, Action.CREATE_BRANCH)
    data = json_body()
    name = field(data, "name", required=True)
    head = branch_services.create_branch(
        user, document, name, field(data, "from") or document.default_branch
    )
    info = services.repo(document).commit(head)
    body = {
        "name": name,
        "head": head,
        "is_default": False,
        "updated_at": serializers.iso(info.committed_at),
    }
    return body, 201


@bp.patch("/documents/<slug>/branches/<path:name>")
def rename_branch(slug: str, name: str):
    """Rename a branch: ``{"name": "<new name>"}``; answers the branch under its new name."""
    from app.releases import branches as branch_services

    user, document = for_write(slug, Action.CREATE_BRANCH)
    new = field(json_body(), "name", required=True)
    try:
        new = branch_services.rename_branch(user, document, name, new)
    except branch_services.BranchError as exc:
        status = 409 if exc.code in ("branch_exists", "conflict") else 422
        raise ApiError(status, str(exc), exc.code) from None
    repo = services.repo(document)
    head = repo.head(new)
    return {
        "name": new,
        "head": head,
        "is_default": False,
        "updated_at": serializers.iso(repo.commit(head).committed_at),
    }


@bp.delete("/documents/<slug>/branches/<path:name>")
def delete_branch(slug: str, name: str):
    from app.releases import branches as branch_services

    user, document = for_write(slug, Action.CREATE_BRANCH)
    try:
        branch_services.delete_branch(user, document, name)
    except branch_services.BranchError as exc:
        raise _branch_error(exc) from None
    return Response(status=204)
