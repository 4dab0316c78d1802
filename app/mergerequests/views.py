"""Pages of the mergerequests blueprint: list, open, overview, commits, changes,
conflicts, and the branch protection settings.

Routes are thin: load the document through ``documents.views.document_view`` (404
without read access), load the request, call one service, map typed errors to a
flash message, render or redirect.

Templates shared with the review half get, on every request page: ``document``,
``mr``, ``grant``, ``Action``, ``events`` (the timeline rows), ``threads`` (on the
changes page: ``(path, side, line) -> [ReviewThread]``) and, inside the diff loops,
``thread`` for ``mergerequests/_thread.html``.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, url_for

import gitstore
from app import db
from app.accounts.views import login_required
from app.activity.signals import ref_updated
from app.auth.permissions import Action, Role
from app.documents import protection
from app.documents.models import Document
from app.documents.views import _context as document_context
from app.documents.views import document_view
from app.mergerequests import services
from app.mergerequests.models import MERGE_STYLES, MergeRequest
from app.rendering.diffview import rendered_diff, side_by_side

bp = Blueprint("mergerequests", __name__)

STYLE_LABELS = {
    "merge": "Merge commit",
    "squash": "Squash into one commit",
    "ff": "Fast-forward",
}
VIEWS = ("inline", "split", "rendered")


def init_app(app: Flask) -> None:
    """Refresh open requests whenever a branch moves (save, API, live commit, push).

    Saves, pushes and merges send ``ref_updated``; live commits run the live hub's
    ``after_commit`` hook instead, outside any request.
    """
    ref_updated.connect(_on_ref_updated, weak=False)
    hub = app.extensions.get("quire.live")
    if hub is not None:
        hub.add_hook("after_commit", functools.partial(_after_live_commit, app))


def _on_ref_updated(document: Document, **kwargs: Any) -> None:
    services.on_ref_updated(document, **kwargs)


def _after_live_commit(app: Flask, _hub: Any, room: Any, commit: str) -> Any:
    """A live room committed on its branch: refresh the requests it touches, off the room."""
    import gevent

    key = room.key
    return gevent.spawn(_refresh_for_live_commit, app, key.document_id, key.branch, commit)


def _refresh_for_live_commit(app: Flask, document_id: int, branch: str, commit: str) -> None:
    with app.app_context():
        document = db.session().get(Document, document_id)
        if document is not None:
            services.on_ref_updated(document, ref=f"refs/heads/{branch}", old="", new=commit)


# --- helpers ---------------------------------------------------------------------------


def _load(document: Document, number: int) -> MergeRequest:
    mr = services.get_merge_request(document, number)
    if mr is None:
        abort(404)
    return mr


def _context(document: Document, **extra: Any) -> dict[str, Any]:
    """The document pages' own context (grant, tabs), plus the merge style labels."""
    return document_context(document, STYLE_LABELS=STYLE_LABELS, **extra)


def _mr_context(document: Document, mr: MergeRequest, **extra: Any) -> dict[str, Any]:
    return _context(
        document,
        mr=mr,
        events=services.events(mr),
        can_manage_mr=services.can_manage(g.actor, mr),
        **extra,
    )


def _back(document: Document, mr: MergeRequest, page: str = "show") -> Any:
    return redirect(url_for(f"mergerequests.{page}", slug=document.slug, number=mr.number))


def _git(document: Document) -> gitstore.Document:
    try:
        return services.repo(document)
    except gitstore.DocumentNotFound:
        abort(404)


# --- listing and opening ----------------------------------------------------------------


@bp.get("/d/<slug>/merge-requests")
@document_view(Action.READ)
def index(document: Document):
    state = request.args.get("state", "open")
    if state not in ("open", "merged", "closed", "all"):
        state = "open"
    mine = request.args.get("mine") == "1" and g.actor is not None
    review = request.args.get("review") == "1" and g.actor is not None
    author = request.args.get("author", "")[:40] or None
    listing = services.list_merge_requests(
        g.actor, document, state=state, authored=mine, review_requested=review, author=author
    )
    return render_template(
        "mergerequests/list.html",
        **_context(document, listing=listing, state=state, mine=mine, review=review, author=author),
    )


@bp.route("/d/<slug>/merge-requests/new", methods=["GET", "POST"])
@document_view(Action.OPEN_MERGE_REQUEST)
def new(document: Document):
    actor = login_required()
    git = _git(document)
    branches = git.branches()
    form: dict[str, Any] = {
        "source": request.args.get("source", ""),
        "target": request.args.get("target", document.default_branch),
        "title": "",
        "description": "",
        "draft": False,
    }
    error = None
    if request.method == "POST":
        form = {
            "source": request.form.get("source", ""),
            "target": request.form.get("target", ""),
            "title": request.form.get("title", ""),
            "description": request.form.get("description", ""),
            "draft": request.form.get("draft") == "1",
        }
        try:
            mr = services.open_merge_request(actor, document, **form)
        except services.MergeRequestError as exc:
            error = str(exc)
        else:
            flash(f"Merge request !{mr.number} opened.", "success")
            return _back(document, mr)
    if not form["title"] and form["source"]:
        form["title"] = form["source"].replace("-", " ").replace("_", " ").capitalize()
    return (
        render_template(
            "mergerequests/new.html",
            **_context(document, branches=branches, form=form, error=error),
        ),
        422 if error else 200,
    )


# --- one request ------------------------------------------------------------------------


@bp.get("/d/<slug>/merge-requests/<int:number>")
@document_view(Action.READ)
def show(document: Document, number: int):
    mr = _load(document, number)
    git = _git(document)
    check = services.check(mr, git)
    settings = services.get_settings(document)
    return render_template(
        "mergerequests/show.html",
        **_mr_context(
            document,
            mr,
            check=check,
            description_html=services.description_html(mr),
            default_style=settings.default_style,
            styles=MERGE_STYLES,
            can_merge=g.grant.allows(Action.MERGE),
            reverted_by=services.reverted_by(mr),
            tab="overview",
        ),
    )


@bp.post("/d/<slug>/merge-requests/<int:number>/edit")
@document_view(Action.READ)
def edit(document: Document, number: int):
    actor = login_required()
    mr = _load(document, number)
    draft_field = request.form.get("draft")
    try:
        services.update(
            actor,
            mr,
            title=request.form.get("title"),
            description=request.form.get("description"),
            draft=None if draft_field is None else draft_field == "1",
        )
    except services.MergeRequestError as exc:
        flash(str(exc), "error")
    else:
        flash("Merge request updated.", "success")
    return _back(document, mr)


@bp.post("/d/<slug>/merge-requests/<int:number>/merge")
@document_view(Action.MERGE)
def merge(document: Document, number: int):
    actor = login_required()
    mr = _load(document, number)
    try:
        commit = services.merge(
            actor,
            mr,
            style=request.form.get("style") or None,
            delete_source=request.form.get("delete_source") == "1",
            expected_head=request.form.get("head") or None,
        )
    except services.NotMergeable as exc:
        flash(f"Not merged: {exc.message}", "error")
    except services.MergeRequestError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Merged into {mr.target_branch} as {commit[:8]}.", "success")
    return _back(document, mr)


def _change_state(document: Document, number: int, change: Any, done: str) -> Any:
    """Close or reopen: the service checks who may; refusals come back as a message."""
    actor = login_required()
    mr = _load(document, number)
    try:
        change(actor, mr)
    except services.MergeRequestError as exc:
        flash(str(exc), "error")
    else:
        flash(done, "success")
    return _back(document, mr)


@bp.post("/d/<slug>/merge-requests/<int:number>/close")
@document_view(Action.READ)
def close(document: Document, number: int):
    return _change_state(document, number, services.close, "Merge request closed.")


@bp.post("/d/<slug>/merge-requests/<int:number>/reopen")
@document_view(Action.READ)
def reopen(document: Document, number: int):
    return _change_state(document, number, services.reopen, "Merge request reopened.")


@bp.post("/d/<slug>/merge-requests/<int:number>/revert")
@document_view(Action.MERGE)
def revert(document: Document, number: int):
    actor = login_required()
    mr = _load(document, number)
    try:
        commit = services.revert(actor, mr)
    except services.MergeRequestError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Reverted as {commit[:8]} on {mr.target_branch}.", "success")
    return _back(document, mr)


@bp.get("/d/<slug>/merge-requests/<int:number>/commits")
@document_view(Action.READ)
def commits(document: Document, number: int):
    mr = _load(document, number)
    git = _git(document)
    base = _base(git, mr)
    listed = git.commits_between(base, mr.head_oid) if base else []
    return render_template(
        "mergerequests/show.html", **_mr_context(document, mr, commits=listed, tab="commits")
    )


def _base(git: gitstore.Document, mr: MergeRequest) -> str | None:
    """Where the request's changes start: the merge base (or the pre-merge target head)."""
    if mr.state == "merged" and mr.merged_from:
        try:
            return git.merge_base(mr.merged_from, mr.head_oid)
        except gitstore.GitStoreError:
            return mr.base_oid
    if mr.base_oid:
        return mr.base_oid
    try:
        return git.merge_base(git.head(mr.target_branch), mr.head_oid)
    except gitstore.GitStoreError:
        return None


@bp.get("/d/<slug>/merge-requests/<int:number>/changes")
@document_view(Action.READ)
def changes(document: Document, number: int):
    mr = _load(document, number)
    git = _git(document)
    view = request.args.get("view", "inline")
    if view not in VIEWS:
        view = "inline"
    base = _base(git, mr)
    diff = git.diff(base, mr.head_oid) if base else None
    rendered = []
    if diff is not None and view == "rendered":
        for file in diff.files:
            if file.binary or not file.path.endswith((".md", ".markdown")):
                continue
            before = _text(git, file.old_path, base)
            after = _text(git, file.new_path, mr.head_oid)
            rendered.append((file, rendered_diff(before, after)))
    threads = services._ask("threads_for_diff", mr, {}) or {}
    return render_template(
        "mergerequests/show.html",
        **_mr_context(
            document,
            mr,
            diff=diff,
            view=view,
            rendered=rendered,
            split=side_by_side,
            threads=threads,
            line_id=_line_id,
            tab="changes",
        ),
    )


def _line_id(path: str, side: str, line: int | None) -> str:
    """A stable element id for one diff line (review links point at it)."""
    import hashlib

    digest = hashlib.sha1(path.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]
    return f"line-{digest}-{side}-{line}"


def _text(git: gitstore.Document, path: str | None, ref: str) -> str:
    if not path:
        return ""
    try:
        return git.read(path, ref).text
    except gitstore.PathNotFound:
        return ""


# --- conflicts ----------------------------------------------------------------------------


def _conflicted_files(git: gitstore.Document, mr: MergeRequest) -> tuple[str, list[Any], list[str]]:
    """The target head, the text files with conflict regions, and the other conflicted
    paths (binary files, a file deleted on one side) that only git can settle."""
    target_head = git.head(mr.target_branch)
    preview = git.preview_merge(target_head, mr.head_oid)
    files = [f for f in preview.files if f.conflicts]
    texts = {f.path for f in files}
    return target_head, files, [p for p in preview.conflicts if p not in texts]


@bp.route("/d/<slug>/merge-requests/<int:number>/conflicts", methods=["GET", "POST"])
@document_view(Action.MERGE)
def conflicts(document: Document, number: int):
    actor = login_required()
    mr = _load(document, number)
    if mr.state != "open":
        flash(f"The request is {mr.state}.", "info")
        return _back(document, mr)
    git = _git(document)
    try:
        target_head, files, others = _conflicted_files(git, mr)
    except gitstore.RefNotFound:
        abort(404)
    if request.method == "POST":
        if (
            request.form.get("head") != mr.head_oid
            or request.form.get("target_head") != target_head
        ):
            flash("A branch moved while you were resolving; look at the conflicts again.", "error")
            return _back(document, mr, "conflicts")
        try:
            resolutions = {
                f.path: f.resolve(*_picks(request.form, i, f)) for i, f in enumerate(files)
            }
        except ValueError as exc:
            flash(str(exc), "error")
            return _back(document, mr, "conflicts")
        try:
            commit = services.merge(
                actor, mr, style="merge", resolutions=resolutions, expected_head=mr.head_oid
            )
        except services.NotMergeable as exc:
            flash(f"Not merged: {exc.message}", "error")
            return _back(document, mr)
        except services.MergeRequestError as exc:
            flash(str(exc), "error")
            return _back(document, mr)
        flash(f"Conflicts resolved; merged into {mr.target_branch} as {commit[:8]}.", "success")
        return _back(document, mr)
    return render_template(
        "mergerequests/conflicts.html",
        **_mr_context(
            document, mr, files=files, others=others, target_head=target_head, tab="conflicts"
        ),
    )


def _picks(form: Any, file_index: int, file: Any) -> tuple[dict[int, str], dict[int, str]]:
    """The choice and hand-edited text for each conflict region of one file."""
    picks: dict[int, str] = {}
    edits: dict[int, str] = {}
    for chunk in file.chunks:
        if isinstance(chunk, str):
            continue
        key = f"{file_index}-{chunk.index}"
        pick = form.get(f"pick-{key}", "")
        if pick not in ("ours", "theirs", "both", "edit"):
            raise ValueError(f"Choose a version for every conflict in {file.path}.")
        picks[chunk.index] = pick
        edits[chunk.index] = form.get(f"edit-{key}", "").replace("\r\n", "\n")
    return picks, edits


# --- branch protection ------------------------------------------------------------------


@bp.route("/d/<slug>/branch-protection", methods=["GET", "POST"])
@document_view(Action.PROTECT_BRANCH)
def protection_settings(document: Document):
    actor = login_required()
    error = None
    if request.method == "POST":
        what = request.form.get("form")
        try:
            if what == "rule":
                rule_id = request.form.get("rule_id", type=int)
                try:
                    approvals = int(request.form.get("required_approvals") or 0)
                except ValueError:
                    raise protection.ProtectionError("Required approvals is a number.") from None
                protection.save_rule(
                    actor,
                    document,
                    rule_id=rule_id,
                    pattern=request.form.get("pattern", ""),
                    push_role=request.form.get("push_role", ""),
                    live_role=request.form.get("live_role") or None,
                    required_approvals=approvals,
                    block_unresolved=request.form.get("block_unresolved") == "1",
                    block_behind=request.form.get("block_behind") == "1",
                    reset_approvals=request.form.get("reset_approvals") == "1",
                )
                flash("Protection rule saved.", "success")
            elif what == "delete":
                protection.delete_rule(actor, document, request.form.get("rule_id", type=int) or 0)
                flash("Protection rule removed.", "success")
            elif what == "style":
                services.set_default_style(actor, document, request.form.get("style", ""))
                flash("Default merge style saved.", "success")
            else:
                abort(400)
        except (protection.ProtectionError, services.MergeRequestError) as exc:
            error = str(exc)
        else:
            return redirect(url_for("mergerequests.protection_settings", slug=document.slug))
    return (
        render_template(
            "mergerequests/merge_settings.html",
            **_context(
                document,
                rules=protection.list_rules(document),
                roles=[r.label for r in protection.RULE_ROLES],
                settings=services.get_settings(document),
                styles=MERGE_STYLES,
                error=error,
                Role=Role,
            ),
        ),
        422 if error else 200,
    )
