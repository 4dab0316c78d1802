"""Tags and releases in the JSON API under /api/v1 (bearer tokens only).

Same conventions as :mod:`app.api.views`: the token is checked before every view,
errors become ``{"error": {"code", "message"}}``, and every route is described in
the OpenAPI document (:func:`app.api.openapi.extend`, at the bottom).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

import gitstore
from app.api import errors, serializers
from app.api.openapi import (
    BOOL,
    ERR_401,
    ERR_403,
    ERR_404,
    NSTR,
    SLUG,
    STR,
    TIME,
    _error,
    _json,
    _obj,
    _op,
    _p,
    _ref,
    extend,
)
from app.api.openapi import PATHS as _API_PATHS
from app.api.views import _authenticate, base_url, for_write, json_body, load
from app.auth.permissions import Action
from app.documents.models import Document
from app.errors import ApiError
from app.releases import services

bp = Blueprint("releases_api", __name__, url_prefix="/api/v1")
bp.before_request(_authenticate)
errors.register(bp)


def tag_json(tag: gitstore.TagInfo) -> dict[str, Any]:
    return {
        "name": tag.name,
        "target": tag.target,
        "annotated": tag.tagger is not None,
        "message": tag.message,
        "tagger": None if tag.tagger is None else serializers.author_json(tag.tagger),
        "created_at": serializers.iso(tag.created_at),
    }


def release_json(document: Document, release: services.Release) -> dict[str, Any]:
    web = f"{base_url()}/d/{document.slug}/releases/{release.name}"
    return {
        "tag": release.name,
        "target": release.tag.target,
        "notes": release.notes,
        "tagger": None
        if release.tag.tagger is None
        else serializers.author_json(release.tag.tagger),
        "created_at": serializers.iso(release.tag.created_at),
        "previous": None if release.previous is None else release.previous.name,
        "files_changed": len(release.files),
        "additions": release.additions,
        "deletions": release.deletions,
        "markdown_url": f"{web}/download.md",
        "zip_url": f"{web}/archive.zip",
    }


def _release_error(exc: services.ReleaseError) -> ApiError:
    status = 409 if exc.code in {"tag_exists", "conflict"} else 422
    return ApiError(status, str(exc), exc.code)


@bp.get("/documents/<slug>/tags")
def tags(slug: str):
    document, _ = load(slug)
    return {"tags": [tag_json(t) for t in services.list_tags(document)]}


@bp.get("/documents/<slug>/releases")
def releases(slug: str):
    document, _ = load(slug)
    return {"releases": [release_json(document, r) for r in services.list_releases(document)]}


@bp.post("/documents/<slug>/releases")
def create_release(slug: str):
    user, document = for_write(slug, Action.TAG_RELEASE)
    data = json_body()
    values = {}
    for name in ("tag", "ref", "notes"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiError(422, f"'{name}' must be a string.", "invalid", field=name)
        values[name] = value or ""
    if not values["tag"]:
        raise ApiError(422, "'tag' is required.", "invalid", field="tag")
    try:
        release = services.create_release(
            user, document, values["tag"], values["ref"], values["notes"]
        )
    except services.ReleaseError as exc:
        raise _release_error(exc) from None
    return release_json(document, release), 201


@bp.delete("/documents/<slug>/releases/<path:tag>")
def delete_release(slug: str, tag: str):
    """Site admins only. The tag name in the path is the confirmation."""
    user, document = for_write(slug, Action.DELETE_RELEASE)
    try:
        services.delete_release(user, document, tag, confirm=tag)
    except services.ReleaseError as exc:
        raise _release_error(exc) from None
    return Response(status=204)


# --- OpenAPI ------------------------------------------------------------------------

_AUTHOR = _obj({"name": STR, "email": STR})
_TAGGER = {"oneOf": [_AUTHOR, {"type": "null"}], "description": "Null for a lightweight tag."}

_BRANCHES = "/documents/{slug}/branches"
_BRANCH = "/documents/{slug}/branches/{name}"
_INT_OR_NULL = {"type": ["integer", "null"]}

# The branch routes live in app.api.views; their rename and status fields are described
# here, next to the services that implement them, merged into the core description.
extend(
    {
        _BRANCHES: {
            **_API_PATHS.get(_BRANCHES, {}),
            "get": _op(
                "Branches, default first, with ahead/behind the default branch",
                {
                    "200": _json(
                        _obj({"branches": {"type": "array", "items": _ref("BranchStatus")}}),
                        "The branches.",
                    ),
                    "404": ERR_404,
                },
                params=[SLUG],
            ),
        },
        _BRANCH: {
            **_API_PATHS.get(_BRANCH, {}),
            "delete": _op(
                "Delete a branch (never the default branch or a protected one)",
                {
                    "204": {"description": "Deleted."},
                    "401": ERR_401,
                    "403": ERR_403,
                    "404": ERR_404,
                    "422": _error(
                        "The default branch (default_branch) or a protected branch "
                        "(protected_branch) cannot be deleted."
                    ),
                },
                params=[SLUG, _p("name", "Branch name (may contain '/').")],
                auth=True,
            ),
            "patch": _op(
                "Rename a branch",
                {
                    "200": _json(_ref("Branch"), "The branch under its new name."),
                    "401": ERR_401,
                    "403": ERR_403,
                    "404": ERR_404,
                    "409": _error("A branch with the new name exists (branch_exists)."),
                    "422": _error(
                        "The default branch (default_branch), a protected branch without the "
                        "right to protect branches (protected_branch), or an invalid name "
                        "(invalid_ref_name)."
                    ),
                },
                params=[SLUG, _p("name", "Current branch name (may contain '/').")],
                body=_obj({"name": {**STR, "description": "The new name."}}),
                auth=True,
            ),
        },
    },
    {
        "BranchStatus": {
            "allOf": [
                _ref("Branch"),
                _obj(
                    {
                        "ahead": {
                            **_INT_OR_NULL,
                            "description": "Commits on this branch not on the default one.",
                        },
                        "behind": {
                            **_INT_OR_NULL,
                            "description": "Commits on the default branch not on this one.",
                        },
                        "protected": BOOL,
                    }
                ),
            ]
        }
    },
)

extend(
    {
        "/documents/{slug}/tags": {
            "get": _op(
                "Tags, newest first (annotated or lightweight, however they were made)",
                {
                    "200": _json(
                        _obj({"tags": {"type": "array", "items": _ref("Tag")}}), "The tags."
                    ),
                    "404": ERR_404,
                },
                params=[SLUG],
            )
        },
        "/documents/{slug}/releases": {
            "get": _op(
                "Releases (every tag), newest first, with the changes since the previous one",
                {
                    "200": _json(
                        _obj({"releases": {"type": "array", "items": _ref("Release")}}),
                        "The releases.",
                    ),
                    "404": ERR_404,
                },
                params=[SLUG],
            ),
            "post": _op(
                "Tag a version as a release (maintainers and site admins)",
                {
                    "201": _json(_ref("Release"), "Created: an annotated tag, tagger = you."),
                    "401": ERR_401,
                    "403": ERR_403,
                    "404": ERR_404,
                    "409": _error("A tag with that name exists; tags never move (tag_exists)."),
                    "422": _error(
                        "Invalid tag name (invalid_ref_name), unknown ref (unknown_ref) or body."
                    ),
                },
                params=[SLUG],
                body=_obj(
                    {
                        "tag": {**STR, "description": "The tag name, e.g. v1.0."},
                        "ref": {
                            **STR,
                            "description": "Branch, tag or commit id; defaults to the "
                            "default branch.",
                        },
                        "notes": {**STR, "description": "Markdown release notes (tag message)."},
                    },
                    ["tag"],
                ),
                auth=True,
            ),
        },
        "/documents/{slug}/releases/{tag}": {
            "delete": _op(
                "Delete a release's tag (site admins only)",
                {
                    "204": {"description": "Deleted."},
                    "401": ERR_401,
                    "403": ERR_403,
                    "404": ERR_404,
                    "409": _error("The tag changed while it was being deleted (conflict)."),
                },
                params=[SLUG, _p("tag", "Tag name (may contain '/').")],
                auth=True,
            )
        },
    },
    {
        "Tag": _obj(
            {
                "name": STR,
                "target": {**STR, "description": "The tagged commit."},
                "annotated": {"type": "boolean"},
                "message": NSTR,
                "tagger": _TAGGER,
                "created_at": {**TIME, "type": ["string", "null"]},
            }
        ),
        "Release": _obj(
            {
                "tag": STR,
                "target": {**STR, "description": "The released commit."},
                "notes": {**STR, "description": "Markdown (the annotated tag's message)."},
                "tagger": _TAGGER,
                "created_at": {**TIME, "type": ["string", "null"]},
                "previous": {**NSTR, "description": "The release before this one."},
                "files_changed": {"type": "integer"},
                "additions": {"type": "integer"},
                "deletions": {"type": "integer"},
                "markdown_url": STR,
                "zip_url": STR,
            }
        ),
    },
)
