"""Document pages: list, create, view, edit, history, compare, blame, settings.

Routes are thin: parse input, load the document (404 without read access),
call one service, map typed errors to a message, render or redirect.
"""

from __future__ import annotations

import functools
import mimetypes
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.datastructures import FileStorage

import gitstore
from app.accounts.views import login_required
from app.analytics import track
from app.auth.permissions import Action, grant_for, require
from app.documents import protection, services
from app.documents.models import Document
from app.documents.presenters import history_rows
from app.rendering.diffview import rendered_diff, side_by_side
from app.rendering.markdown import render_markdown

bp = Blueprint("documents", __name__)

TEXT_PREVIEW_LIMIT = 2 * 1024 * 1024
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def document_view(action: Action) -> Callable[..., Any]:
    """Load ``slug`` into a Document, check ``action`` for the actor, pass both on."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(slug: str, **kwargs: Any) -> Any:
            document = services.get_document(slug)
            if document is None:
                renamed = services.get_document_by_alias(slug)
                if renamed is not None and require_read(renamed):
                    return _redirect_renamed(slug, renamed.slug)
                abort(404)
            g.grant = require(g.actor, action, document)
            g.document = document
            return view(document, **kwargs)

        return wrapper

    return decorator


def require_read(document: Document) -> bool:
    """True when the actor may read the document (else answer 404 as if it did not exist)."""
    require(g.actor, Action.READ, document)
    return True


def _redirect_renamed(old: str, new: str) -> Response:
    """Send a request for a renamed document's old slug to the same page under the new one."""
    prefix = f"/d/{old}"
    path = request.path
    target = f"/d/{new}{path[len(prefix) :]}" if path.startswith(prefix) else f"/d/{new}"
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    return redirect(target, 301 if request.method in ("GET", "HEAD") else 308)


def _git(document: Document) -> gitstore.Document:
    try:
        return services.repo(document)
    except gitstore.DocumentNotFound:
        abort(404)


def _resolve(repo: gitstore.Document, ref: str) -> str:
    try:
        return repo.resolve(ref)
    except (gitstore.RefNotFound, gitstore.InvalidRefName, ValueError):
        abort(404)


def _branch_head(repo: gitstore.Document, branch: str) -> str:
    try:
        return repo.head(branch)
    except (gitstore.RefNotFound, gitstore.InvalidRefName, ValueError):
        abort(404)


def _raw_url(document: Document, ref: str) -> Callable[[str], str]:
    def resolve(relative: str) -> str:
        path = relative.split("#")[0].split("?")[0]
        return url_for("documents.raw", slug=document.slug, ref_and_path=f"{ref}/{path}")

    return resolve


def _context(document: Document, **extra: Any) -> dict[str, Any]:
    grant = g.get("grant") or grant_for(g.actor, document)
    return {
        "document": document,
        "grant": grant,
        "can_edit": grant.allows(Action.EDIT),
        "can_manage": grant.allows(Action.EDIT_SETTINGS),
        "Action": Action,
        **extra,
    }


# --- listing and creating --------------------------------------------------------


@bp.get("/")
def home():
    if g.actor is None:
        listing = services.list_documents(None, scope="public", limit=12)
        return render_template("documents/landing.html", documents=listing.documents)
    return index()


@bp.get("/documents")
def index():
    scope = request.args.get("scope", "all")
    if scope not in services.SCOPES or (g.actor is None and scope in ("mine", "shared")):
        scope = "all"
    sort = request.args.get("sort", "updated")
    query = request.args.get("q", "")[:200]
    page = max(1, request.args.get("page", 1, type=int) or 1)
    per_page = 30
    listing = services.list_documents(
        g.actor, scope=scope, query=query, sort=sort, limit=per_page, offset=(page - 1) * per_page
    )
    return render_template(
        "documents/index.html",
        listing=listing,
        scope=scope,
        sort=sort,
        query=query,
        page=page,
        pages=max(1, -(-listing.total // per_page)),
    )


@bp.route("/new", methods=["GET", "POST"])
def new():
    actor = login_required()
    if request.method == "GET":
        return render_template("documents/new.html", form={})
    try:
        document = services.create_document(
            actor,
            request.form.get("title", ""),
            visibility=request.form.get("visibility", "private"),
        )
    except services.DocumentError as exc:
        return render_template("documents/new.html", form=request.form, error=str(exc)), 422
    flash("Document created.", "success")
    return redirect(url_for("documents.show", slug=document.slug))


# --- reading ---------------------------------------------------------------------


@bp.get("/d/<slug>")
@document_view(Action.READ)
def show(document: Document):
    repo = _git(document)
    ref = request.args.get("ref") or document.default_branch
    commit = _resolve(repo, ref)
    files = repo.list_files(commit)
    path = services.DEFAULT_FILE if any(f.path == services.DEFAULT_FILE for f in files) else None
    if path is None and files:
        path = next((f.path for f in files if f.path.endswith(".md")), files[0].path)
    track("document_opened", {"document_id": document.id})
    return _render_file(document, repo, ref, commit, path, files)


@bp.get("/d/<slug>/blob/<path:ref_and_path>")
@document_view(Action.READ)
def blob(document: Document, ref_and_path: str):
    repo = _git(document)
    ref, path = _split_ref_path(repo, ref_and_path)
    commit = _resolve(repo, ref)
    return _render_file(document, repo, ref, commit, path, repo.list_files(commit))


def _split_ref_path(repo: gitstore.Document, ref_and_path: str) -> tuple[str, str]:
    """Split ``<ref>/<path>`` where the ref itself may contain slashes (feature/x)."""
    parts = ref_and_path.split("/")
    for i in range(len(parts) - 1, 0, -1):
        ref = "/".join(parts[:i])
        try:
            repo.resolve(ref)
        except (gitstore.GitStoreError, ValueError):
            continue
        return ref, "/".join(parts[i:])
    abort(404)


def _render_file(document, repo, ref, commit, path, files):
    info = repo.commit(commit)
    content = html = None
    is_image = False
    if path is not None:
        try:
            file = repo.read(path, commit)
        except (gitstore.PathNotFound, gitstore.InvalidPath):
            abort(404)
        mime = mimetypes.guess_type(path)[0] or ""
        if mime in IMAGE_TYPES:
            is_image = True
        elif not file.is_binary and len(file.data) <= TEXT_PREVIEW_LIMIT:
            content = file.text
            if path.endswith((".md", ".markdown")):
                html = render_markdown(content, resolve_url=_raw_url(document, commit))
    branches = repo.branches()
    return render_template(
        "documents/show.html",
        **_context(
            document,
            ref=ref,
            commit=info,
            path=path,
            files=files,
            content=content,
            html=html,
            is_image=is_image,
            branches=branches,
            is_branch=any(b.name == ref for b in branches),
        ),
    )


@bp.get("/d/<slug>/raw/<path:ref_and_path>")
@document_view(Action.READ)
def raw(document: Document, ref_and_path: str):
    repo = _git(document)
    ref, path = _split_ref_path(repo, ref_and_path)
    try:
        file = repo.read(path, _resolve(repo, ref))
    except (gitstore.PathNotFound, gitstore.InvalidPath):
        abort(404)
    mime = mimetypes.guess_type(path)[0] or ""
    if mime in IMAGE_TYPES:
        content_type = mime
    elif file.is_binary:
        content_type = "application/octet-stream"
    else:
        content_type = "text/plain; charset=utf-8"
    response = Response(file.data, content_type=content_type)
    # Raw content is never interpreted as a page of ours.
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["ETag"] = file.blob
    if content_type == "application/octet-stream":
        response.headers["Content-Disposition"] = "attachment"
    return response


# --- editing ---------------------------------------------------------------------


@bp.route("/d/<slug>/edit/<path:ref_and_path>", methods=["GET", "POST"])
@document_view(Action.EDIT)
def edit(document: Document, ref_and_path: str):
    actor = login_required()
    repo = _git(document)
    branch, path = _split_ref_path(repo, ref_and_path)
    if branch not in {b.name for b in repo.branches()}:
        abort(404)
    if request.method == "GET":
        head = repo.head(branch)
        try:
            content = repo.read(path, head).text
        except gitstore.PathNotFound:
            content = ""
        except gitstore.InvalidPath:
            abort(404)
        return render_template(
            "documents/edit.html",
            **_context(
                document, branch=branch, path=path, content=content, parent=head, message=""
            ),
        )
    content = request.form.get("content", "").replace("\r\n", "\n")
    message = request.form.get("message", "")
    parent = request.form.get("parent", "")
    try:
        result = services.save_file(
            actor,
            document,
            branch=branch,
            path=path,
            content=content,
            message=message,
            parent=parent,
        )
    except gitstore.MergeConflict as exc:
        conflict = exc.conflicts[0] if exc.conflicts else None
        return (
            render_template(
                "documents/conflict.html",
                **_context(
                    document,
                    branch=branch,
                    path=path,
                    conflict=conflict,
                    yours=content,
                    theirs=(conflict.ours or b"").decode("utf-8", "replace") if conflict else "",
                    head=repo.head(branch),
                    message=message,
                ),
            ),
            409,
        )
    except gitstore.NothingToCommit:
        flash("No changes to save.", "info")
        return redirect(
            url_for("documents.blob", slug=document.slug, ref_and_path=f"{branch}/{path}")
        )
    except (gitstore.RefConflict, gitstore.RefNotFound):
        flash("That version is unknown; the editor was reloaded with the latest text.", "error")
        return redirect(
            url_for("documents.edit", slug=document.slug, ref_and_path=f"{branch}/{path}")
        )
    except gitstore.InvalidPath as exc:
        flash(str(exc), "error")
        return redirect(url_for("documents.show", slug=document.slug))
    if result.merged:
        flash("Someone saved while you were editing; your changes were merged with theirs.", "info")
    else:
        flash("Saved.", "success")
    return redirect(url_for("documents.blob", slug=document.slug, ref_and_path=f"{branch}/{path}"))


#: Presence colours (cursor, selection tint) with enough contrast on white.
LIVE_COLOURS = ("#1f6feb", "#c2410c", "#15803d", "#9333ea", "#be123c", "#0e7490", "#a16207")


def live_colour(actor_id: int | None) -> tuple[str, str]:
    """A stable colour per person, and its light tint for selections."""
    colour = LIVE_COLOURS[(actor_id or 0) % len(LIVE_COLOURS)]
    return colour, colour + "33"


@bp.get("/d/<slug>/live/<path:ref_and_path>")
@document_view(Action.READ)
def live(document: Document, ref_and_path: str):
    """The live editor page: editors edit, viewers watch read-only (the bundle mounts it)."""
    repo = _git(document)
    branch, path = _split_ref_path(repo, ref_and_path)
    # The websocket route names the branch in one path segment.
    if branch not in {b.name for b in repo.branches()} or "/" in branch:
        abort(404)
    head = repo.head(branch)
    try:
        file = repo.read(path, head)
    except gitstore.PathNotFound:
        file = None
    except gitstore.InvalidPath:
        abort(404)
    if file is not None and file.is_binary:
        abort(404)
    content = "" if file is None else file.text
    actor = g.actor
    colour, tint = live_colour(None if actor is None else actor.id)
    # The same rule the websocket applies: EDIT, then the branch's live role.
    can_edit = protection.can_edit_live(g.grant, document, branch)
    return render_template(
        "documents/live.html",
        **_context(
            document,
            branch=branch,
            path=path,
            content=content,
            html=render_markdown(content, resolve_url=_raw_url(document, head)),
            room=f"{document.slug}/{branch}/{path}",
            user_name=actor.username if actor is not None else "Guest",
            user_colour=colour,
            user_tint=tint,
            read_only=not can_edit,
        ),
    )


@bp.post("/d/<slug>/upload")
@document_view(Action.EDIT)
def upload(document: Document):
    actor = login_required()
    repo = _git(document)
    branch = request.form.get("branch") or document.default_branch
    upload: FileStorage | None = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose a file to upload.", "error")
        return redirect(url_for("documents.show", slug=document.slug))
    folder = request.form.get("folder", "").strip().strip("/")
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
    path = f"{folder}/{name}" if folder else name
    data = upload.read()
    if len(data) > document_limit():
        flash("That file is too large.", "error")
        return redirect(url_for("documents.show", slug=document.slug))
    try:
        services.save_file(
            actor,
            document,
            branch=branch,
            path=path,
            content=data,
            message=f"Add {path}",
            parent=request.form.get("parent") or _branch_head(repo, branch),
        )
    except (gitstore.InvalidPath, gitstore.RefNotFound) as exc:
        flash(f"Could not upload: {exc}", "error")
        return redirect(url_for("documents.show", slug=document.slug))
    except gitstore.NothingToCommit:
        flash("That file is already there, unchanged.", "info")
        return redirect(url_for("documents.show", slug=document.slug))
    except gitstore.MergeConflict:
        flash("That file changed meanwhile; upload it again.", "error")
        return redirect(url_for("documents.show", slug=document.slug))
    mime = mimetypes.guess_type(path)[0] or ""
    hint = f" Embed it with ![{name}]({path})." if mime in IMAGE_TYPES else ""
    flash(f"Uploaded {path}.{hint}", "success")
    return redirect(url_for("documents.blob", slug=document.slug, ref_and_path=f"{branch}/{path}"))


def document_limit() -> int:
    from flask import current_app

    return int(current_app.config["MAX_FILE_BYTES"])


# --- history ---------------------------------------------------------------------


@bp.get("/d/<slug>/history")
@document_view(Action.READ)
def history(document: Document):
    repo = _git(document)
    ref = request.args.get("ref") or document.default_branch
    path = request.args.get("path") or None
    after = request.args.get("after") or None
    head = _resolve(repo, ref)
    try:
        base = url_for("documents.show", slug=document.slug)
        page, rows = _history_page(str(repo.path), after or head, path, bool(after), base)
    except gitstore.InvalidCursor:
        abort(400)
    except (gitstore.RefNotFound, gitstore.InvalidPath, ValueError):
        abort(404)
    return render_template(
        "documents/history.html",
        **_context(document, ref=ref, path=path, page=page, after=after, rows=rows),
    )


@functools.lru_cache(maxsize=256)
def _history_page(
    repo_path: str, start: str, path: str | None, is_cursor: bool, base: str
) -> tuple[gitstore.HistoryPage, Markup]:
    """A page of history with its rows: immutable, so cached by where the walk starts.

    ``start`` is a head commit id or, with ``is_cursor``, the previous page's cursor
    (the commits that walk continues from). The key names no branch (a moved branch
    is a new key), so a cached page is never stale.
    """
    repo = gitstore.Document(Path(repo_path).name.removesuffix(".git"), repo_path)
    page = repo.history(start, path=path, after=start if is_cursor else None, limit=50)
    return page, history_rows(page.commits, base)


@bp.get("/d/<slug>/commit/<oid>")
@document_view(Action.READ)
def commit(document: Document, oid: str):
    repo = _git(document)
    full = _resolve(repo, oid)
    info = repo.commit(full)
    diff = repo.commit_diff(full)
    return render_template(
        "documents/commit.html",
        **_context(document, commit=info, diff=diff, branches=repo.branches(), split=side_by_side),
    )


@bp.get("/d/<slug>/compare")
@document_view(Action.READ)
def compare(document: Document):
    repo = _git(document)
    old = request.args.get("from", "")
    new = request.args.get("to", "") or document.default_branch
    view = request.args.get("view", "inline")
    if view not in ("inline", "split", "rendered"):
        view = "inline"
    diff = rendered = None
    old_info = new_info = None
    if old:
        old_oid, new_oid = _resolve(repo, old), _resolve(repo, new)
        old_info, new_info = repo.commit(old_oid), repo.commit(new_oid)
        diff = repo.diff(old_oid, new_oid)
        if view == "rendered":
            rendered = []
            for file in diff.files:
                if file.binary or not (file.path or "").endswith((".md", ".markdown")):
                    continue
                before = _text_or_empty(repo, file.old_path, old_oid)
                after = _text_or_empty(repo, file.new_path, new_oid)
                rendered.append((file, rendered_diff(before, after)))
    return render_template(
        "documents/compare.html",
        **_context(
            document,
            old=old,
            new=new,
            view=view,
            diff=diff,
            rendered=rendered,
            old_info=old_info,
            new_info=new_info,
            split=side_by_side,
            branches=repo.branches(),
        ),
    )


def _text_or_empty(repo: gitstore.Document, path: str | None, commit: str) -> str:
    if not path:
        return ""
    try:
        return repo.read(path, commit).text
    except gitstore.PathNotFound:
        return ""


@bp.get("/d/<slug>/blame/<path:ref_and_path>")
@document_view(Action.READ)
def blame(document: Document, ref_and_path: str):
    repo = _git(document)
    ref, path = _split_ref_path(repo, ref_and_path)
    try:
        lines = repo.blame(path, _resolve(repo, ref))
    except (gitstore.PathNotFound, gitstore.InvalidPath):
        abort(404)
    return render_template(
        "documents/blame.html", **_context(document, ref=ref, path=path, lines=lines)
    )


@bp.post("/d/<slug>/restore/<oid>")
@document_view(Action.EDIT)
def restore(document: Document, oid: str):
    actor = login_required()
    repo = _git(document)
    branch = request.form.get("branch") or document.default_branch
    version = _resolve(repo, oid)
    try:
        new = services.restore_version(
            actor,
            document,
            branch=branch,
            version=version,
            parent=request.form.get("parent") or _branch_head(repo, branch),
        )
    except gitstore.NothingToCommit:
        flash("That version is already the current one.", "info")
        return redirect(url_for("documents.history", slug=document.slug, ref=branch))
    except gitstore.RefConflict:
        flash("The branch moved meanwhile; look at the history again before restoring.", "error")
        return redirect(url_for("documents.history", slug=document.slug, ref=branch))
    flash(f"Restored version {version[:8]} as a new version.", "success")
    return redirect(url_for("documents.commit", slug=document.slug, oid=new))


@bp.post("/d/<slug>/revert/<oid>")
@document_view(Action.EDIT)
def revert(document: Document, oid: str):
    actor = login_required()
    repo = _git(document)
    branch = request.form.get("branch") or document.default_branch
    target = _resolve(repo, oid)
    try:
        new = services.revert_commit(
            actor,
            document,
            branch=branch,
            commit=target,
            parent=request.form.get("parent") or _branch_head(repo, branch),
        )
    except gitstore.MergeConflict:
        flash(
            "That change cannot be reverted automatically: later changes touch the same lines.",
            "error",
        )
        return redirect(url_for("documents.commit", slug=document.slug, oid=target))
    except (gitstore.RefConflict, gitstore.NothingToCommit, gitstore.GitStoreError) as exc:
        flash(f"Could not revert: {exc}", "error")
        return redirect(url_for("documents.commit", slug=document.slug, oid=target))
    flash(f"Reverted {target[:8]}.", "success")
    return redirect(url_for("documents.commit", slug=document.slug, oid=new))


# --- branches --------------------------------------------------------------------


@bp.route("/d/<slug>/branches", methods=["GET", "POST"])
@document_view(Action.READ)
def branches(document: Document):
    from app.releases import branches as branch_services

    repo = _git(document)
    if request.method == "POST":
        actor = login_required()
        name = request.form.get("name", "").strip()
        try:
            branch_services.create_branch(
                actor,
                document,
                name,
                request.form.get("from", "").strip() or document.default_branch,
            )
        except (gitstore.GitStoreError, ValueError) as exc:
            flash(f"Could not create the branch: {exc}", "error")
        else:
            flash(f"Branch {name} created.", "success")
        return redirect(url_for("documents.branches", slug=document.slug))
    return render_template(
        "documents/branches.html",
        **_context(
            document,
            branches=branch_services.list_branches(document),
            tags=repo.tags(),
            can_branch=g.grant.allows(Action.CREATE_BRANCH),
            can_protect=g.grant.allows(Action.PROTECT_BRANCH),
        ),
    )


@bp.post("/d/<slug>/branches/rename")
@document_view(Action.CREATE_BRANCH)
def rename_branch(document: Document):
    from app.releases import branches as branch_services

    actor = login_required()
    old, new = request.form.get("name", ""), request.form.get("new_name", "")
    try:
        new = branch_services.rename_branch(actor, document, old, new)
    except gitstore.RefNotFound:
        abort(404)
    except (branch_services.BranchError, gitstore.GitStoreError) as exc:
        flash(f"Could not rename the branch: {exc}", "error")
    else:
        flash(f"Branch {old} renamed to {new}.", "success")
    return redirect(url_for("documents.branches", slug=document.slug))


@bp.post("/d/<slug>/branches/delete")
@document_view(Action.CREATE_BRANCH)
def delete_branch(document: Document):
    from app.releases import branches as branch_services

    actor = login_required()
    name = request.form.get("name", "")
    try:
        branch_services.delete_branch(actor, document, name)
    except (services.DocumentError, gitstore.GitStoreError) as exc:
        flash(f"Could not delete the branch: {exc}", "error")
    else:
        flash(f"Branch {name} deleted.", "success")
    return redirect(url_for("documents.branches", slug=document.slug))


# --- settings ----------------------------------------------------------------------


@bp.route("/d/<slug>/settings", methods=["GET", "POST"])
@document_view(Action.EDIT_SETTINGS)
def settings(document: Document):
    actor = login_required()
    error = None
    if request.method == "POST":
        what = request.form.get("form")
        try:
            if what == "general":
                visibility = request.form.get("visibility")
                if visibility and visibility != document.visibility:
                    # Check before anything is saved, so a refused change saves nothing.
                    require(actor, Action.CHANGE_VISIBILITY, document)
                services.update_settings(
                    actor,
                    document,
                    title=request.form.get("title", ""),
                    slug=request.form.get("slug", ""),
                )
                if (
                    request.form.get("visibility")
                    and request.form["visibility"] != document.visibility
                ):
                    services.set_visibility(actor, document, request.form["visibility"])
                flash("Settings saved.", "success")
            elif what == "member":
                services.set_member(
                    actor, document, request.form.get("username", ""), request.form.get("role", "")
                )
                flash("Member saved.", "success")
            elif what == "remove-member":
                services.remove_member(actor, document, request.form.get("user_id", type=int) or 0)
                flash("Member removed.", "success")
            elif what == "delete":
                services.delete_document(
                    actor, document, confirm_slug=request.form.get("confirm", "")
                )
                flash("Document deleted.", "success")
                return redirect(url_for("documents.index"))
            else:
                abort(400)
            return redirect(url_for("documents.settings", slug=document.slug))
        except services.DocumentError as exc:
            error = str(exc)
    return (
        render_template(
            "documents/settings.html",
            **_context(document, members=services.list_members(document), error=error),
        ),
        422 if error else 200,
    )
