"""Documents: creating, finding, saving and administering them.

Services take the acting user first (``actor``), check domain rules through
:mod:`app.auth.permissions`, own their transaction, and never read the request.
Content goes to Git through :mod:`gitstore`; SQL keeps only the metadata.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass

from sqlalchemy import Select, bindparam, func, or_, select, union
from sqlalchemy.exc import IntegrityError

import gitstore
from app import db
from app.accounts.models import User
from app.accounts.services import get_user_by_username
from app.activity.services import record_ref_updates
from app.analytics import track
from app.auth.permissions import (
    GRANTABLE_ROLES,
    Action,
    PermissionDenied,
    Role,
    can_create_document,
    require,
)
from app.db import utcnow
from app.documents.models import VISIBILITIES, Document, Membership, SlugAlias
from app.ops import metrics
from app.storage import get_store

DEFAULT_FILE = "document.md"
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
RESERVED_SLUGS = frozenset({"new", "api", "static", "live", "admin", "settings", "login", "signup"})
MAX_TITLE = 200


class DocumentError(ValueError):
    """A user-caused problem; the message is shown as is."""


class SlugTaken(DocumentError):
    pass


def author_of(user: User) -> gitstore.Author:
    return gitstore.Author(user.name, user.email)


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].strip("-")
    return slug or "document"


def validate_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug) or slug.endswith(".git") or "--" in slug:
        raise DocumentError(
            "A slug is 1–80 lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit."
        )
    if slug in RESERVED_SLUGS:
        raise DocumentError(f"The slug {slug!r} is reserved.")
    return slug


def validate_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise DocumentError("Give the document a title.")
    if len(title) > MAX_TITLE:
        raise DocumentError(f"Titles are at most {MAX_TITLE} characters.")
    return title


def _unique_slug(base: str) -> str:
    session = db.session()
    candidate = base if base not in RESERVED_SLUGS else f"{base}-doc"
    n = 2
    while session.scalar(select(Document.id).where(Document.slug == candidate)) is not None:
        candidate = f"{base[:70]}-{n}"
        n += 1
    return candidate


def create_document(actor: User, title: str, *, visibility: str = "private") -> Document:
    """Create the metadata row and the bare repository with its first commit."""
    if not can_create_document(actor):
        raise PermissionDenied(Action.EDIT, hide=False)
    title = validate_title(title)
    if visibility not in VISIBILITIES:
        raise DocumentError("Visibility is 'private' or 'public'.")
    session = db.session()
    repo_id = secrets.token_hex(16)
    store = get_store()
    for _ in range(5):
        document = Document(
            repo_id=repo_id,
            slug=_unique_slug(slugify(title)),
            title=title,
            owner_id=actor.id,
            visibility=visibility,
            default_branch="main",
        )
        session.add(document)
        try:
            session.flush()
            break
        except IntegrityError:  # a concurrent create took the slug
            session.rollback()
    else:
        raise DocumentError("Could not find a free slug; choose another title.")
    # The repository is created before the row commits: a crash in between leaves an
    # orphan directory (harmless, never referenced) rather than a row without content.
    store.create(
        repo_id,
        author=author_of(actor),
        content=f"# {title}\n",
        filename=DEFAULT_FILE,
        message="Create document",
    )
    session.commit()
    track("document_created", {"document_id": document.id}, user=actor)
    return document


def get_document(slug: str) -> Document | None:
    return db.session().scalar(select(Document).where(Document.slug == slug))


def get_document_by_alias(old_slug: str) -> Document | None:
    """The document that used to be called ``old_slug`` (renames keep old URLs working)."""
    return db.session().scalar(
        select(Document)
        .join(SlugAlias, SlugAlias.document_id == Document.id)
        .where(SlugAlias.old_slug == old_slug)
    )


def resolve_slug(slug: str) -> Document | None:
    """A document by its current slug, else by a slug it had before a rename."""
    return get_document(slug) or get_document_by_alias(slug)


def repo(document: Document) -> gitstore.Document:
    return get_store().open(document.repo_id)


# --- listing -----------------------------------------------------------------

SCOPES = ("all", "mine", "shared", "public")
SORTS = ("updated", "title", "created")


@dataclass(frozen=True)
class DocumentListing:
    documents: list[Document]
    total: int


def _visible_to(actor: User | None) -> Select[tuple[Document]]:
    query = select(Document)
    if actor is None:
        return query.where(Document.visibility == "public")
    if actor.is_admin:
        return query
    # One named parameter: a statement built once (search keeps one per query shape)
    # can then serve every reader, given their id when it runs.
    actor_id = bindparam("actor_id", actor.id)
    member_ids = select(Membership.document_id).where(Membership.user_id == actor_id)
    return query.where(
        or_(
            Document.owner_id == actor_id,
            Document.id.in_(member_ids),
            Document.visibility == "public",
        )
    )


def _count_readable(actor: User) -> int:
    """How many documents the actor may read, counted as a UNION of three index lookups.

    Counting through ``_visible_to``'s OR makes PostgreSQL read every document (no
    index serves an OR with a subquery); the page itself is fine, as it walks the
    sort index and stops at the limit.
    """
    readable = union(
        select(Document.id).where(Document.owner_id == actor.id),
        select(Membership.document_id).where(Membership.user_id == actor.id),
        select(Document.id).where(Document.visibility == "public"),
    ).subquery()
    return db.session().scalar(select(func.count()).select_from(readable)) or 0


def list_documents(
    actor: User | None,
    *,
    scope: str = "all",
    query: str = "",
    sort: str = "updated",
    limit: int = 50,
    offset: int = 0,
) -> DocumentListing:
    stmt = _visible_to(actor)
    if scope == "mine" and actor is not None:
        stmt = stmt.where(Document.owner_id == actor.id)
    elif scope == "shared" and actor is not None:
        member_ids = select(Membership.document_id).where(Membership.user_id == actor.id)
        stmt = stmt.where(Document.id.in_(member_ids), Document.owner_id != actor.id)
    elif scope == "public":
        stmt = stmt.where(Document.visibility == "public")
    if query.strip():
        pattern = "%" + query.strip().lower().replace("%", r"\%").replace("_", r"\_") + "%"
        stmt = stmt.where(func.lower(Document.title).like(pattern, escape="\\"))
    order = {
        "title": (func.lower(Document.title), Document.id),
        "created": (Document.created_at.desc(), Document.id.desc()),
    }.get(sort, (Document.updated_at.desc(), Document.id.desc()))
    session = db.session()
    if scope == "all" and not query.strip() and actor is not None and not actor.is_admin:
        total = _count_readable(actor)
    else:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(*order).limit(limit).offset(offset))
    return DocumentListing(list(rows), total)


# --- content -------------------------------------------------------------------


def touch(document: Document) -> None:
    document.updated_at = utcnow()
    db.session().commit()


def _moved(actor: User, document: Document, branch: str, old: str, new: str, source: str) -> None:
    """Record a branch moved by a save and send ``ref_updated`` (also touches the document)."""
    record_ref_updates(document, actor, [(f"refs/heads/{branch}", old, new)], source=source)


def save_file(
    actor: User,
    document: Document,
    *,
    branch: str,
    path: str,
    content: bytes | str,
    message: str,
    parent: str,
    source: str = "web",
) -> gitstore.SaveResult:
    """Save one file from the head the user started from.

    A stale ``parent`` is merged with what moved the branch; when that conflicts
    :class:`gitstore.MergeConflict` carries both versions. Nothing is overwritten.
    """
    require(actor, Action.EDIT, document)
    message = message.strip() or f"Update {path}"
    try:
        result = repo(document).save(
            branch,
            [gitstore.Put(path, content)],
            parent=parent,
            author=author_of(actor),
            message=message,
        )
    except gitstore.MergeConflict:
        metrics.MERGE_COMPUTATIONS.labels(outcome="conflict").inc()
        raise
    if result.merged:
        metrics.MERGE_COMPUTATIONS.labels(outcome="clean").inc()
    _moved(actor, document, branch, parent, result.commit, source)
    return result


def delete_file(
    actor: User,
    document: Document,
    *,
    branch: str,
    path: str,
    parent: str,
    message: str = "",
    source: str = "web",
) -> str:
    require(actor, Action.EDIT, document)
    commit = repo(document).write(
        branch,
        [gitstore.Delete(path)],
        parent=parent,
        author=author_of(actor),
        message=message.strip() or f"Delete {path}",
    )
    _moved(actor, document, branch, parent, commit, source)
    return commit


def restore_version(
    actor: User, document: Document, *, branch: str, version: str, parent: str
) -> str:
    require(actor, Action.EDIT, document)
    commit = repo(document).restore(branch, version, parent=parent, author=author_of(actor))
    _moved(actor, document, branch, parent, commit, "web")
    return commit


def revert_commit(actor: User, document: Document, *, branch: str, commit: str, parent: str) -> str:
    require(actor, Action.EDIT, document)
    new = repo(document).revert(branch, commit, parent=parent, author=author_of(actor))
    _moved(actor, document, branch, parent, new, "web")
    return new


def create_branch(actor: User, document: Document, name: str, from_ref: str) -> str:
    require(actor, Action.CREATE_BRANCH, document)
    return repo(document).create_branch(name, from_ref)


def delete_branch(actor: User, document: Document, name: str) -> None:
    require(actor, Action.CREATE_BRANCH, document)
    if name == document.default_branch:
        raise DocumentError("The default branch cannot be deleted.")
    repo(document).delete_branch(name)


# --- settings and members -----------------------------------------------------------


def update_settings(
    actor: User, document: Document, *, title: str | None = None, slug: str | None = None
) -> Document:
    require(actor, Action.EDIT_SETTINGS, document)
    session = db.session()
    if title is not None:
        document.title = validate_title(title)
    if slug is not None and slug.strip().lower() != document.slug:
        new_slug = validate_slug(slug)
        clash = session.scalar(select(Document.id).where(Document.slug == new_slug))
        if clash is not None:
            raise SlugTaken(f"The slug {new_slug!r} is already in use.")
        # The old slug becomes an alias (old links and clone URLs keep working); the new
        # slug stops being anyone's alias: a live slug always wins.
        old_slug = document.slug
        stale = session.scalars(select(SlugAlias).where(SlugAlias.old_slug == new_slug))
        for alias in stale:
            session.delete(alias)
        session.flush()
        previous = session.scalar(select(SlugAlias).where(SlugAlias.old_slug == old_slug))
        if previous is None:
            session.add(SlugAlias(old_slug=old_slug, document_id=document.id))
        else:
            previous.document_id = document.id
        document.slug = new_slug
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise SlugTaken("That slug is already in use.") from None
    return document


def set_visibility(actor: User, document: Document, visibility: str) -> None:
    require(actor, Action.CHANGE_VISIBILITY, document)
    if visibility not in VISIBILITIES:
        raise DocumentError("Visibility is 'private' or 'public'.")
    document.visibility = visibility
    db.session().commit()


def list_members(document: Document) -> list[Membership]:
    return list(
        db.session().scalars(
            select(Membership)
            .where(Membership.document_id == document.id)
            .join(User, User.id == Membership.user_id)
            .order_by(func.lower(User.username))
        )
    )


def set_member(actor: User, document: Document, username: str, role: str) -> Membership:
    """Add a member or change their role."""
    require(actor, Action.MANAGE_MEMBERS, document)
    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise DocumentError(str(exc)) from None
    if parsed not in GRANTABLE_ROLES:
        raise DocumentError("Roles are viewer, reviewer, editor or maintainer.")
    user = get_user_by_username(username.strip().lstrip("@"))
    if user is None:
        raise DocumentError(f"No user named {username!r}.")
    if user.id == document.owner_id:
        raise DocumentError("The owner already has every right on the document.")
    session = db.session()
    membership = session.scalar(
        select(Membership).where(
            Membership.document_id == document.id, Membership.user_id == user.id
        )
    )
    if membership is None:
        membership = Membership(document_id=document.id, user_id=user.id, role=parsed.label)
        session.add(membership)
    else:
        membership.role = parsed.label
    session.commit()
    return membership


def remove_member(actor: User, document: Document, user_id: int) -> None:
    require(actor, Action.MANAGE_MEMBERS, document)
    session = db.session()
    membership = session.scalar(
        select(Membership).where(
            Membership.document_id == document.id, Membership.user_id == user_id
        )
    )
    if membership is None:
        raise DocumentError("That person is not a member.")
    session.delete(membership)
    session.commit()


def delete_document(actor: User, document: Document, *, confirm_slug: str) -> None:
    """Delete the metadata, then the repository (typed confirmation required)."""
    require(actor, Action.DELETE_DOCUMENT, document)
    if confirm_slug.strip() != document.slug:
        raise DocumentError("Type the document's slug to confirm deletion.")
    repo_id = document.repo_id
    session = db.session()
    session.delete(document)
    session.commit()
    get_store().delete(repo_id)
