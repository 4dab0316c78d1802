"""Pages: releases (list, create, download, delete), the branch graph, annotations.

Routes are thin, as in :mod:`app.documents.views` (whose loader they reuse, so a
page here answers 404 without read access exactly like a document page does).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup

import gitstore
from app.accounts.views import login_required
from app.auth.permissions import Action
from app.documents.models import Document
from app.documents.views import _context, _git, _resolve, document_view
from app.releases import annotate as annotation_services
from app.releases import services
from app.releases.graphview import render_graph
from gitstore.graph import GraphPage, layout

bp = Blueprint("releases", __name__)

#: Versions per page of the branch graph; older ones are on ?page=2 and beyond.
GRAPH_PAGE_SIZE = 1000


# --- releases -----------------------------------------------------------------------


def _releases_page(document: Document, *, form: dict[str, str] | None = None, error: str = ""):
    repo = _git(document)
    grant = g.grant
    return render_template(
        "releases/index.html",
        **_context(
            document,
            releases=services.list_releases(document),
            branches=repo.branches(),
            can_tag=grant.allows(Action.TAG_RELEASE),
            can_delete_release=grant.allows(Action.DELETE_RELEASE),
            form=form or {"ref": request.args.get("ref", "")},
            error=error,
        ),
    )


@bp.get("/d/<slug>/releases")
@document_view(Action.READ)
def index(document: Document):
    return _releases_page(document)


@bp.post("/d/<slug>/releases")
@document_view(Action.TAG_RELEASE)
def create(document: Document):
    actor = login_required()
    form = {k: request.form.get(k, "") for k in ("tag", "ref", "notes")}
    try:
        release = services.create_release(
            actor, document, form["tag"], form["ref"].strip(), form["notes"]
        )
    except services.ReleaseError as exc:
        status = 409 if exc.code == "tag_exists" else 422
        return _releases_page(document, form=form, error=str(exc)), status
    flash(f"Release {release.name} created.", "success")
    return redirect(url_for("releases.index", slug=document.slug) + f"#release-{release.name}")


def _download(document: Document, make: Any, tag: str) -> Response:
    try:
        download = make(document, tag)
    except (gitstore.RefNotFound, gitstore.PathNotFound, gitstore.InvalidRefName, ValueError):
        abort(404)
    response = Response(download.data, content_type=download.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/d/<slug>/releases/<path:tag>/download.md")
@document_view(Action.READ)
def download_markdown(document: Document, tag: str):
    return _download(document, services.markdown_download, tag)


@bp.get("/d/<slug>/releases/<path:tag>/archive.zip")
@document_view(Action.READ)
def download_zip(document: Document, tag: str):
    return _download(document, services.zip_download, tag)


@bp.route("/d/<slug>/releases/<path:tag>/delete", methods=["GET", "POST"])
@document_view(Action.DELETE_RELEASE)
def delete(document: Document, tag: str):
    actor = login_required()
    release = services.get_release(document, tag)
    if release is None:
        abort(404)
    error = ""
    if request.method == "POST":
        try:
            services.delete_release(actor, document, tag, confirm=request.form.get("confirm", ""))
        except services.ReleaseError as exc:
            error = str(exc)
        else:
            flash(f"Release {tag} deleted.", "success")
            return redirect(url_for("releases.index", slug=document.slug))
    return (
        render_template("releases/delete.html", **_context(document, release=release, error=error)),
        422 if error else 200,
    )


# --- the branch graph ---------------------------------------------------------------


def _refs_signature(repo: gitstore.Document) -> tuple[tuple[str, str], ...]:
    """Every branch and tag with its target: the graph changes only when these do."""
    refs = repo.repo.references
    out = []
    for name in refs:
        if name.startswith(("refs/heads/", "refs/tags/")):
            ref = refs.get(name)
            if ref is not None:
                out.append((name, str(ref.target)))
    return tuple(sorted(out))


@functools.lru_cache(maxsize=16)
def _graph_page(
    repo_path: str, refs: tuple[tuple[str, str], ...], offset: int, limit: int, base: str
) -> tuple[GraphPage, Markup]:
    """One page of the graph and its SVG, cached by the exact refs it was drawn from."""
    repo = gitstore.Document(Path(repo_path).name.removesuffix(".git"), repo_path)
    page = layout(repo, offset=offset, limit=limit)
    return page, render_graph(page, lambda oid: f"{base}/commit/{oid}")


@bp.get("/d/<slug>/graph")
@document_view(Action.READ)
def graph(document: Document):
    repo = _git(document)
    number = max(1, request.args.get("page", 1, type=int) or 1)
    base = url_for("documents.show", slug=document.slug)
    page, svg = _graph_page(
        str(repo.path),
        _refs_signature(repo),
        (number - 1) * GRAPH_PAGE_SIZE,
        GRAPH_PAGE_SIZE,
        base,
    )
    if number > 1 and not page.nodes:
        abort(404)
    return render_template(
        "releases/graph.html",
        **_context(document, graph=page, svg=svg, number=number),
    )


# --- annotations ----------------------------------------------------------------------


def _commit_url(document: Document, oid: str, anchor: str = "annotations") -> str:
    return url_for("documents.commit", slug=document.slug, oid=oid) + f"#{anchor}"


@bp.post("/d/<slug>/commit/<oid>/annotations")
@document_view(Action.COMMENT)
def annotate(document: Document, oid: str):
    actor = login_required()
    full = _resolve(_git(document), oid)
    reply_to = request.form.get("reply_to", type=int)
    try:
        annotation = annotation_services.add_annotation(
            actor,
            document,
            full,
            request.form.get("body", ""),
            reply_to=reply_to,
            url=url_for("documents.commit", slug=document.slug, oid=full, _external=True),
        )
    except annotation_services.AnnotationError as exc:
        flash(str(exc), "error")
        return redirect(_commit_url(document, full))
    return redirect(_commit_url(document, full, f"annotation-{annotation.id}"))


def _annotation_or_404(document: Document, annotation_id: int):
    annotation = annotation_services.get_annotation(document, annotation_id)
    if annotation is None:
        abort(404)
    return annotation


@bp.post("/d/<slug>/annotations/<int:annotation_id>/edit")
@document_view(Action.COMMENT)
def edit_annotation(document: Document, annotation_id: int):
    actor = login_required()
    annotation = _annotation_or_404(document, annotation_id)
    try:
        annotation_services.edit_annotation(
            actor, document, annotation, request.form.get("body", "")
        )
    except annotation_services.AnnotationError as exc:
        flash(str(exc), "error")
    return redirect(_commit_url(document, annotation.commit_oid, f"annotation-{annotation.id}"))


@bp.post("/d/<slug>/annotations/<int:annotation_id>/delete")
@document_view(Action.READ)
def delete_annotation(document: Document, annotation_id: int):
    actor = login_required()
    annotation = _annotation_or_404(document, annotation_id)
    commit_oid = annotation.commit_oid
    annotation_services.delete_annotation(actor, document, annotation)
    flash("Comment deleted.", "success")
    return redirect(_commit_url(document, commit_oid))


# --- template helpers ---------------------------------------------------------------


def history_counts_style(counts: dict[str, int]) -> Markup:
    """CSS that shows each history row's comment count next to its commit id.

    The rows are pre-rendered (and cached) by the documents package; a row is found
    by the radio input it holds (``#to-<oid>``), so no row markup has to change.
    Commit ids are hex digits, safe inside a selector and a string as they are.
    """
    rules = []
    for oid, count in counts.items():
        if not oid.isalnum():
            continue
        label = f"{count} comment{'s' if count != 1 else ''}"
        rules.append(f'.history-item:has(#to-{oid}) .history-actions::before{{content:"{label}"}}')
    return Markup("<style>" + "".join(rules) + "</style>") if rules else Markup("")


def init_templates(app: Any) -> None:
    """Functions the annotations partial calls from the history and version pages."""
    app.jinja_env.globals.update(
        annotation_threads=annotation_services.threads_for,
        annotation_counts=annotation_services.counts_for,
        can_edit_annotation=annotation_services.can_edit,
        can_delete_annotation=annotation_services.can_delete,
        history_counts_style=history_counts_style,
    )
