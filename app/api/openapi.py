"""The OpenAPI 3.1 description of /api/v1, written by hand.

Hand-written rather than generated so that it documents intent (why a 409, what
``parent`` means) and stays readable; ``tests/app/test_api.py`` checks that every
route registered on the blueprint appears here, so the two cannot drift apart
silently.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

API_PREFIX = "/api/v1"


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: JSON, description: str) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> JSON:
    return {"$ref": "#/components/responses/Error", "description": description}


def _q(name: str, description: str, schema: JSON | None = None, required: bool = False) -> JSON:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _p(name: str, description: str) -> JSON:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}


def _obj(props: JSON, required: list[str] | None = None) -> JSON:
    return {"type": "object", "properties": props, "required": required or list(props)}


SCHEMAS: JSON = {
    "Error": _obj(
        {
            "error": {
                "type": "object",
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable machine-readable code, e.g. not_found, "
                        "unauthorized, forbidden, invalid, invalid_path, conflict, "
                        "nothing_to_commit, too_large, branch_exists, default_branch.",
                    },
                    "message": {"type": "string", "description": "For people; may change."},
                },
                "required": ["code", "message"],
                "additionalProperties": True,
            }
        }
    ),
    "Conflict": _obj(
        {
            "path": STR,
            "encoding": {"enum": ["utf-8", "base64"]},
            "base": NSTR,
            "ours": {**NSTR, "description": "What the branch holds now."},
            "theirs": {**NSTR, "description": "What the client sent."},
        }
    ),
    "User": _obj({"id": INT, "username": STR, "email": STR, "is_admin": BOOL}),
    "Document": _obj(
        {
            "id": {**STR, "description": "Immutable id (survives slug renames)."},
            "slug": STR,
            "title": STR,
            "visibility": {"enum": ["private", "public"]},
            "default_branch": STR,
            "clone_url": STR,
            "web_url": STR,
            "updated_at": TIME,
            "role": {
                "enum": ["none", "viewer", "reviewer", "editor", "maintainer", "owner"],
                "description": "The caller's role (single-document responses only).",
            },
        },
        ["id", "slug", "title", "visibility", "default_branch", "clone_url", "web_url"],
    ),
    "TreeEntry": _obj(
        {
            "name": STR,
            "path": STR,
            "kind": {"enum": ["blob", "tree"]},
            "size": {"type": ["integer", "null"]},
            "oid": STR,
        }
    ),
    "File": _obj(
        {
            "path": STR,
            "content": STR,
            "encoding": {"enum": ["utf-8", "base64"]},
            "commit": STR,
            "blob": STR,
            "size": INT,
        }
    ),
    "Person": _obj({"name": STR, "email": STR}),
    "Commit": _obj(
        {
            "oid": STR,
            "short": STR,
            "summary": STR,
            "message": STR,
            "author": _ref("Person"),
            "authored_at": TIME,
            "committer": _ref("Person"),
            "committed_at": TIME,
            "parents": {"type": "array", "items": STR},
            "co_authors": {"type": "array", "items": _ref("Person")},
        }
    ),
    "FileChange": _obj(
        {
            "path": STR,
            "old_path": NSTR,
            "status": {"enum": ["added", "deleted", "modified", "renamed"]},
            "additions": INT,
            "deletions": INT,
            "binary": BOOL,
        }
    ),
    "WordSpan": _obj({"kind": {"enum": ["equal", "insert", "delete"]}, "text": STR}),
    "DiffLine": _obj(
        {
            "kind": {"enum": ["context", "add", "delete"]},
            "old_no": {"type": ["integer", "null"]},
            "new_no": {"type": ["integer", "null"]},
            "text": STR,
            "words": {
                "type": ["array", "null"],
                "items": _ref("WordSpan"),
                "description": "Word-level spans on a changed line paired with its counterpart.",
            },
        }
    ),
    "Hunk": _obj(
        {
            "header": STR,
            "old_start": INT,
            "old_lines": INT,
            "new_start": INT,
            "new_lines": INT,
            "lines": {"type": "array", "items": _ref("DiffLine")},
        }
    ),
    "FileDiff": {
        "allOf": [
            _ref("FileChange"),
            _obj({"hunks": {"type": "array", "items": _ref("Hunk")}}),
        ]
    },
    "Branch": _obj({"name": STR, "head": STR, "is_default": BOOL, "updated_at": TIME}),
}

ERR_401 = _error("No token (writes), or an invalid, expired or revoked token.")
ERR_404 = _error("No such document, or the caller may not read it; or no such ref/path.")
ERR_403 = _error("The caller may read the document but not do this.")
ERR_400 = _error("A malformed query parameter.")
ERR_422 = _error("The body failed validation (code 'invalid').")

SLUG = _p("slug", "The document's slug.")
PATH = _p("path", "A file path inside the document, e.g. 'notes/a.md'.")
REF = _q("ref", "Branch, tag or commit id; defaults to the default branch.")
SECURED = [{"bearer": []}]
OPEN = [{}, {"bearer": []}]


def _op(
    summary: str,
    responses: JSON,
    *,
    params: list[JSON] | None = None,
    body: JSON | None = None,
    auth: bool = False,
    description: str = "",
) -> JSON:
    op: JSON = {
        "summary": summary,
        "parameters": params or [],
        "responses": responses,
        "security": SECURED if auth else OPEN,
    }
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


PATHS: JSON = {
    "/openapi.json": {
        "get": _op(
            "This document",
            {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
        )
    },
    "/user": {
        "get": _op(
            "The token's user", {"200": _json(_ref("User"), "The user."), "401": ERR_401}, auth=True
        )
    },
    "/documents": {
        "get": _op(
            "Documents the caller may read",
            {
                "200": _json(
                    _obj({"documents": {"type": "array", "items": _ref("Document")}, "total": INT}),
                    "A page of documents and the total count.",
                ),
                "400": ERR_400,
                "401": ERR_401,
            },
            params=[
                _q(
                    "scope",
                    "all, mine, shared or public.",
                    {"enum": ["all", "mine", "shared", "public"]},
                ),
                _q("q", "Case-insensitive substring of the title."),
                _q(
                    "limit",
                    "1..100, default 50.",
                    {"type": "integer", "minimum": 1, "maximum": 100},
                ),
                _q("offset", "Default 0.", {"type": "integer", "minimum": 0}),
            ],
        ),
        "post": _op(
            "Create a document",
            {
                "201": _json(_ref("Document"), "Created."),
                "401": ERR_401,
                "415": _error("Not JSON."),
                "422": ERR_422,
            },
            body=_obj(
                {"title": STR, "visibility": {"enum": ["private", "public"], "default": "private"}},
                ["title"],
            ),
            auth=True,
        ),
    },
    "/documents/{slug}": {
        "get": _op(
            "One document, with the caller's role",
            {"200": _json(_ref("Document"), "The document."), "401": ERR_401, "404": ERR_404},
            params=[SLUG],
        )
    },
    "/documents/{slug}/tree": {
        "get": _op(
            "One directory level",
            {
                "200": _json(
                    _obj(
                        {
                            "commit": STR,
                            "path": STR,
                            "entries": {"type": "array", "items": _ref("TreeEntry")},
                        }
                    ),
                    "Directories first, then files.",
                ),
                "400": _error("Invalid path (code invalid_path)."),
                "404": ERR_404,
            },
            params=[SLUG, REF, _q("path", "Directory; empty for the top.")],
        )
    },
    "/documents/{slug}/files/{path}": {
        "get": _op(
            "Read a file",
            {
                "200": _json(_ref("File"), "Text as utf-8, anything else base64."),
                "400": _error("Invalid path (code invalid_path)."),
                "404": ERR_404,
            },
            params=[SLUG, PATH, REF],
        ),
        "put": _op(
            "Save a file",
            {
                "201": _json(
                    _obj({"commit": STR, "merged": BOOL}),
                    "Committed; merged when the branch had moved and the change merged cleanly.",
                ),
                "200": _json(
                    _obj({"commit": STR, "merged": BOOL}),
                    "Nothing changed: the branch already holds this content; commit is its head.",
                ),
                "400": _error("Invalid path (invalid_path) or a body that is not a JSON object."),
                "401": ERR_401,
                "403": ERR_403,
                "404": ERR_404,
                "409": {
                    "description": "Conflict with changes saved since 'parent' (code conflict); nothing was saved.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    _ref("Error"),
                                    _obj(
                                        {
                                            "error": _obj(
                                                {
                                                    "conflicts": {
                                                        "type": "array",
                                                        "items": _ref("Conflict"),
                                                    }
                                                }
                                            )
                                        }
                                    ),
                                ]
                            }
                        }
                    },
                },
                "413": _error("Content larger than the server's file limit (code too_large)."),
                "415": _error("Not JSON."),
                "422": ERR_422,
            },
            params=[SLUG, PATH],
            body=_obj(
                {
                    "content": STR,
                    "encoding": {"enum": ["utf-8", "base64"], "default": "utf-8"},
                    "message": STR,
                    "parent": {**STR, "description": "The commit id the client started from."},
                    "branch": {**STR, "description": "Defaults to the default branch."},
                },
                ["content", "parent"],
            ),
            auth=True,
            description="Stale parents are merged three-way; conflicts answer 409 and change nothing.",
        ),
        "delete": _op(
            "Delete a file",
            {
                "200": _json(_obj({"commit": STR}), "Deleted."),
                "401": ERR_401,
                "403": ERR_403,
                "404": ERR_404,
                "409": _error("The branch is no longer at 'parent' (code conflict)."),
                "422": ERR_422,
            },
            params=[
                SLUG,
                PATH,
                _q("parent", "The commit id the client started from.", required=True),
                _q("branch", "Defaults to the default branch."),
                _q("message", "Commit message."),
            ],
            auth=True,
        ),
    },
    "/documents/{slug}/commits": {
        "get": _op(
            "History, newest first",
            {
                "200": _json(
                    _obj(
                        {"commits": {"type": "array", "items": _ref("Commit")}, "next_cursor": NSTR}
                    ),
                    "Pass next_cursor as 'after' for the next page; null on the last. "
                    "Pages follow every branch merged into the history, each commit once.",
                ),
                "400": ERR_400,
                "404": ERR_404,
            },
            params=[
                SLUG,
                REF,
                _q("path", "Only commits that changed this path."),
                _q(
                    "after",
                    "The previous page's next_cursor, passed back unchanged: an opaque "
                    "string (not a commit id) that stays valid while the history exists; "
                    "with it, ref no longer matters. Anything else is a 400 invalid_cursor.",
                ),
                _q(
                    "limit",
                    "1..100, default 30.",
                    {"type": "integer", "minimum": 1, "maximum": 100},
                ),
            ],
        )
    },
    "/documents/{slug}/commits/{oid}": {
        "get": _op(
            "One commit and the files it changed",
            {
                "200": _json(
                    {
                        "allOf": [
                            _ref("Commit"),
                            _obj({"files": {"type": "array", "items": _ref("FileChange")}}),
                        ]
                    },
                    "The commit.",
                ),
                "404": ERR_404,
            },
            params=[SLUG, _p("oid", "Full or abbreviated commit id.")],
        )
    },
    "/documents/{slug}/diff": {
        "get": _op(
            "Changes between two versions",
            {
                "200": _json(
                    _obj(
                        {
                            "from": STR,
                            "to": STR,
                            "additions": INT,
                            "deletions": INT,
                            "files": {"type": "array", "items": _ref("FileDiff")},
                        }
                    ),
                    "from/to are the resolved commit ids.",
                ),
                "400": ERR_400,
                "404": ERR_404,
            },
            params=[
                SLUG,
                _q("from", "Branch, tag or commit id.", required=True),
                _q("to", "Branch, tag or commit id; defaults to the default branch."),
            ],
        )
    },
    "/documents/{slug}/branches": {
        "get": _op(
            "Branches, default first",
            {
                "200": _json(
                    _obj({"branches": {"type": "array", "items": _ref("Branch")}}), "The branches."
                ),
                "404": ERR_404,
            },
            params=[SLUG],
        ),
        "post": _op(
            "Create a branch",
            {
                "201": _json(_ref("Branch"), "Created."),
                "401": ERR_401,
                "403": ERR_403,
                "404": ERR_404,
                "409": _error("The branch exists (code branch_exists)."),
                "422": _error("Invalid name (code invalid_ref_name) or body."),
            },
            params=[SLUG],
            body=_obj(
                {"name": STR, "from": {**STR, "description": "Defaults to the default branch."}},
                ["name"],
            ),
            auth=True,
        ),
    },
    "/documents/{slug}/branches/{name}": {
        "delete": _op(
            "Delete a branch",
            {
                "204": {"description": "Deleted."},
                "401": ERR_401,
                "403": ERR_403,
                "404": ERR_404,
                "422": _error("The default branch cannot be deleted (code default_branch)."),
            },
            params=[SLUG, _p("name", "Branch name (may contain '/').")],
            auth=True,
        )
    },
}


def extend(paths: JSON, schemas: JSON | None = None) -> None:
    """Add another capability's operations (merge requests, releases, search ...).

    Each package describes its own routes next to them and calls this at import;
    ``tests/app/test_api.py`` checks that every route under /api/v1 is described.
    """
    PATHS.update(paths)
    SCHEMAS.update(schemas or {})


def build_spec(server_url: str) -> JSON:
    """The whole document; ``server_url`` is where this instance serves the API."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Quire API",
            "version": "1",
            "description": "Documents stored as Git repositories. Every error is "
            '{"error": {"code", "message", ...}} with a stable code.',
        },
        "servers": [{"url": f"{server_url}{API_PREFIX}"}],
        "security": OPEN,
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal access token from the account settings.",
                }
            },
            "responses": {"Error": _json(_ref("Error"), "An error.")},
        },
    }
